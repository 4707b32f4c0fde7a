"""Config models of every probe kind (validated by pydantic, unknown keys rejected).

They live beside the probes, not in ``monitor``, because a probe is built from its own
settings and ``probes`` never imports ``monitor``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from probes.base import Duration, ProbeSettings
from probes.tls import TlsSettings

_TOPIC = r"^[^#+\x00]+$"  # a concrete topic: no wildcards


class MqttBrokerSettings(BaseModel):
    """One MQTT broker; all MQTT probes on it share one long-lived connection."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    #: Names of environment variables holding the credentials (never the secrets).
    username_env: str | None = None
    password_env: str | None = None
    keepalive: int = Field(default=30, ge=5, le=3600)
    #: Client id prefix; a random suffix keeps two daemons from kicking each other off.
    client_id_prefix: str = "sla-monitor"
    #: First and longest pause between reconnect attempts (exponential backoff).
    reconnect_min: Duration = 0.5
    reconnect_max: Duration = 10.0
    #: TLS to the broker (``port`` is then its TLS listener, usually 8883).
    tls: TlsSettings | None = None
    #: MQTT protocol version: "3.1.1", or "5" (its CONNACK reason codes say why a login
    #: was refused; credentials travel in CONNECT either way).
    protocol: Literal["3.1.1", "5"] = "3.1.1"


class MqttTarget(BaseModel):
    """Where a simulated online message goes and how its reply comes back."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    broker: str = "default"
    request_topic: str = Field(pattern=_TOPIC)
    #: Reply topic; by default one per connection, ``<prefix>/<client id>/reply``.
    reply_topic: str | None = Field(default=None, pattern=_TOPIC)
    qos: Literal[0, 1, 2] = 1
    #: Extra payload bytes, to time messages of a realistic size.
    payload_bytes: int = Field(default=0, ge=0, le=1_000_000)


class HttpTarget(BaseModel):
    """One HTTP call of an integrated service."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    #: Headers whose values are secrets: header -> environment variable holding it.
    headers_env: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    #: When set, the answer's body must contain this text.
    expect_body: str | None = None
    #: Header carrying the correlation id, so the target can log it.
    request_id_header: str = "X-Request-Id"
    #: A custom CA bundle, a client certificate (https URLs).
    tls: TlsSettings | None = None

    @field_validator("expect_status")
    @classmethod
    def _statuses_are_http(cls, value: list[int]) -> list[int]:
        for status in value:
            if not 100 <= status <= 599:
                raise ValueError(f"{status} is not an HTTP status code")
        return value


class MqttProbeSettings(ProbeSettings, MqttTarget):
    """An online message: request on one topic, reply matched by correlation id."""

    kind: Literal["mqtt"]


class HttpProbeSettings(ProbeSettings, HttpTarget):
    """An integrated-service call over HTTP."""

    kind: Literal["http"]


class HttpStep(HttpTarget):
    """An HTTP step of an integrated probe."""

    kind: Literal["http"]
    name: str | None = None


class MqttStep(MqttTarget):
    """An MQTT step of an integrated probe."""

    kind: Literal["mqtt"]
    name: str | None = None


Step = Annotated[HttpStep | MqttStep, Field(discriminator="kind")]


class IntegratedProbeSettings(ProbeSettings):
    """Several steps timed as one answer, as a service calling several providers."""

    kind: Literal["integrated"]
    mode: Literal["sequential", "parallel"] = "sequential"
    steps: list[Step] = Field(min_length=1)


class TrafficFeedSettings(ProbeSettings):
    """Not a probe: a feed of real traffic's exchange events (``POST /api/ingest``),
    counted like a probe's results under its name. The scheduler never runs it.

    ``interval`` is the gap the feed is expected to keep between events at most on
    average: coverage counts its events against 60 / interval per minute. ``timeout``
    is the longest exchange it reports: its events are in by then, before the minute is
    sealed.
    """

    kind: Literal["traffic"]


ProbeConfig = Annotated[
    MqttProbeSettings | HttpProbeSettings | IntegratedProbeSettings | TrafficFeedSettings,
    Field(discriminator="kind"),
]
