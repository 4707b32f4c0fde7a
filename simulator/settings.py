"""Config models of the simulator (the ``simulator:`` section of a config file)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from probes.base import Duration, parse_duration

#: A duration that may be zero (``0s``: none).
NonNegativeDuration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LatencySettings(_Strict):
    """Handling delay: a lognormal body, plus a slow tail drawn uniformly from [min, max]."""

    distribution: Literal["lognormal", "constant"] = "lognormal"
    #: Median of the lognormal (or the constant delay), in seconds.
    median: Duration = 0.1
    #: Shape of the lognormal (standard deviation of log(delay)).
    sigma: float = Field(default=0.5, ge=0, le=5)
    #: Share of requests taking a slow path, and its range in seconds.
    tail_probability: float = Field(default=0.0, ge=0, le=1)
    tail_min: float = Field(default=1.0, ge=0)
    tail_max: float = Field(default=3.0, ge=0)
    #: Cap applied to every drawn delay, in seconds.
    max: Duration = 60.0

    @model_validator(mode="after")
    def _tail_ordered(self) -> LatencySettings:
        if self.tail_max < self.tail_min:
            raise ValueError("tail_max must not be below tail_min")
        return self


class OutageSettings(_Strict):
    """A recurring outage: ``duration`` down every ``every``, starting ``offset`` into each
    period (counted from the Unix epoch, so every process agrees on when it happens)."""

    every: Duration
    duration: Duration
    offset: float = Field(default=0.0, ge=0)
    #: ``drop``: no answer at all (the probe times out); ``error``: an error answer.
    mode: Literal["drop", "error"] = "drop"


class ProfileSettings(_Strict):
    """How a simulated endpoint behaves."""

    latency: LatencySettings = Field(default_factory=LatencySettings)
    #: Share of requests answered with an error (HTTP 503, or an MQTT error reply).
    error_rate: float = Field(default=0.0, ge=0, le=1)
    outages: list[OutageSettings] = Field(default_factory=list)


class MqttResponderSettings(_Strict):
    """Answers requests on one topic (the reply goes to the request's ``reply_to``)."""

    broker: str = "default"
    request_topic: str = Field(pattern=r"^[^#+\x00]+$")
    profile: str


class HttpRouteSettings(_Strict):
    """One simulated integrated-service endpoint."""

    path: str = Field(pattern=r"^/[A-Za-z0-9_./-]*$")
    profile: str


class HttpServerSettings(_Strict):
    """The simulator's HTTP server (loopback by default)."""

    listen: str = "127.0.0.1:8181"
    routes: list[HttpRouteSettings] = Field(default_factory=list)


class TrafficSettings(_Strict):
    """Real traffic the simulated network handles, reported to the monitor as exchange
    events (``POST /api/ingest``) the way a gateway would: each exchange once it has ended,
    in batches, retried with the same ids until the monitor takes them."""

    service: str
    #: The service's traffic feed (needed when it has several).
    feed: str | None = None
    profile: str
    #: Exchanges a second (simulated time).
    rate: float = Field(gt=0, le=100_000)
    #: The monitor's ingest endpoint, e.g. http://127.0.0.1:9177/api/ingest.
    ingest_url: str = Field(pattern=r"^https?://")
    #: Environment variable holding a token with the ``ingest`` scope.
    token_env: str = Field(min_length=1)
    #: How often a batch is sent (real time).
    send_every: Duration = 1.0
    #: How long a dropped exchange runs before the sender gives up (its duration).
    timeout: Duration = 5.0
    #: Share of batches held back (a gateway's backlog) for ``backlog_delay`` (simulated).
    backlog_probability: float = Field(default=0.0, ge=0, le=1)
    backlog_delay: Duration = 120.0


class BatchServiceSettings(_Strict):
    """A deferred-processing service: batches handed in at random (simulated) times with
    seeded volumes, processed in one to ``parts_max`` steps after a seeded delay (a share
    of them beyond ``deadline``), each step reported as a batch event when it happens."""

    service: str
    #: Batches handed in a day (simulated time), Poisson arrivals.
    per_day: float = Field(gt=0, le=100_000)
    records_min: int = Field(default=100, ge=1)
    records_max: int = Field(default=10_000, ge=1)
    #: Median of the (lognormal) processing delay, and its shape.
    delay_median: Duration = 86_400.0
    delay_sigma: float = Field(default=0.6, ge=0, le=5)
    #: The contract's deadline, and the share of batches finished after it.
    deadline: Duration = 4 * 86_400.0
    late_probability: float = Field(default=0.02, ge=0, le=1)
    #: A batch is processed in 1 to this many steps.
    parts_max: int = Field(default=3, ge=1, le=20)
    ingest_url: str = Field(pattern=r"^https?://")
    token_env: str = Field(min_length=1)
    send_every: Duration = 1.0
    #: At start the service has already been running this long: the batches handed in
    #: over it and the steps done by now are reported at once, so a monitor started
    #: with it (the demo) has final and pending days from its first minute. The monitor
    #: takes batch events up to its batch deadline + ``ingest.max_age`` old.
    history: NonNegativeDuration = Field(default=0.0, le=90 * 86_400.0)

    @model_validator(mode="after")
    def _range(self) -> BatchServiceSettings:
        if self.records_max < self.records_min:
            raise ValueError("records_max must not be below records_min")
        return self


class SimulatorSettings(_Strict):
    """The simulated network."""

    seed: int = 1
    profiles: dict[str, ProfileSettings] = Field(default_factory=dict)
    mqtt: list[MqttResponderSettings] = Field(default_factory=list)
    http: HttpServerSettings | None = None
    #: Real traffic reported to the monitor as events.
    traffic: list[TrafficSettings] = Field(default_factory=list)
    #: Deferred-processing services reporting batch events.
    batches: list[BatchServiceSettings] = Field(default_factory=list)
    #: Optional CSV file where every served request is appended (the truth log).
    truth_log: str | None = None

    @model_validator(mode="after")
    def _profiles_exist(self) -> SimulatorSettings:
        routes = self.http.routes if self.http else []
        used = [r.profile for r in self.mqtt] + [r.profile for r in routes]
        used += [t.profile for t in self.traffic]
        for name in used:
            if name not in self.profiles:
                raise ValueError(f"profile {name!r} is not defined under simulator.profiles")
        return self
