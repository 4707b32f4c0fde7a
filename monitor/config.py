"""Config: YAML validated at load; every error names the file, the line and the key.

Secrets are never read from the file: the config names environment variables instead.

One piece (~1,450 lines) on purpose: it is the one schema of the config file, read top to
bottom as its reference; each section is a small pydantic model, and splitting them would
scatter what an operator looks up in one place (the contract the report is signed against
has its own module, ``monitor/contract.py``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.contract import ContractConfig
from monitor.errors import ConfigError
from monitor.sla.windows import ALERT_WINDOWS
from probes.base import Duration, parse_duration
from probes.settings import (
    IntegratedProbeSettings,
    MqttBrokerSettings,
    MqttProbeSettings,
    ProbeConfig,
)
from simulator.settings import SimulatorSettings

_NAME = r"^[A-Za-z0-9_.:-]+$"


def _parse_percent(value: Any) -> Any:
    """Accept ``99.5`` or ``"99.5%"``; a target is a percentage."""
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage (e.g. 99.5)") from None
    return value


#: A duration in seconds that may be zero.
NonNegativeDuration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]

#: A target in percent: at least 50 (a fraction such as 0.99 is a mistake), below 100
#: (a 100 % target leaves no error budget to compute burn rates against).
Percent = Annotated[float, BeforeValidator(_parse_percent), Field(ge=50, lt=100)]
#: A coverage floor in percent: the share of an objective's window the monitor must have
#: seen before it gives a verdict (0 turns the check off).
CoverageFloor = Annotated[float, BeforeValidator(_parse_percent), Field(ge=0, le=100)]


#: Where an objective's results come from.
Source = Literal["probes", "traffic", "both"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LatencyObjective(_Strict):
    """``target`` % of the probes' exchanges must succeed within ``threshold`` seconds."""

    kind: Literal["latency"]
    name: str = Field(pattern=_NAME)
    threshold: Duration
    target: Percent
    #: Probes counted by this objective; default all of its ``source``.
    probes: list[str] | None = None
    #: Where its results come from: the service's probes, its traffic feeds (events of
    #: real exchanges, ``kind: traffic``), or both.
    source: Source = "probes"
    #: Overrides the config's ``coverage_floor`` for this objective.
    coverage_floor: CoverageFloor | None = None
    #: Count only the results measured from this location (one of ``locations.names``);
    #: unset, the results of every location are pooled. One objective per location
    #: judges each location on its own.
    location: str | None = Field(default=None, pattern=_NAME, max_length=63)

    @property
    def target_ratio(self) -> float:
        """The target as a ratio (0.99 for 99 %)."""
        return self.target / 100.0


class AvailabilityObjective(_Strict):
    """The service is available ``target`` % of the eligible minutes."""

    kind: Literal["availability"]
    name: str = Field(pattern=_NAME)
    target: Percent
    probes: list[str] | None = None
    source: Source = "probes"
    #: A minute is down when more than this share of its results failed (and at least one).
    down_ratio: float = Field(default=0.5, gt=0, lt=1)
    #: Overrides the config's ``coverage_floor`` for this objective.
    coverage_floor: CoverageFloor | None = None

    @property
    def target_ratio(self) -> float:
        """The target as a ratio (0.99 for 99 %)."""
        return self.target / 100.0


class BatchCanary(_Strict):
    """A synthetic batch, for when the batch system reports no events: a small canary
    handed in at ``submit_url`` every ``interval``, then its status polled until done or
    past the deadline. ``{id}`` in the URLs and the body is the canary's id."""

    submit_url: str = Field(pattern=r"^https?://")
    method: Literal["POST", "PUT"] = "POST"
    body: str = '{"id": "{id}", "canary": true}'
    #: Where its state is read, e.g. http://batch.internal/batches/{id}.
    status_url: str = Field(pattern=r"^https?://")
    #: Done when the status answers one of these codes, with this text in its body.
    done_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    done_body: str | None = None
    interval: Duration = 3600.0
    poll_every: Duration = 60.0
    #: The canary's volume in records.
    records: int = Field(default=1, ge=1)
    #: Header values that are secrets: header -> environment variable.
    headers_env: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = 10.0


class BatchObjective(_Strict):
    """``target`` % of the volume submitted on a day (config time zone) is processed within
    ``deadline`` (events of kind batch, docs/events.md)."""

    kind: Literal["batch"]
    name: str = Field(pattern=_NAME)
    deadline: Duration
    target: Percent
    #: What is counted: records (the volume), or whole batches (all of one in time).
    measure: Literal["records", "batches"] = "records"
    #: A batch is at risk (alerted) once it is this close to its deadline unprocessed.
    margin: Duration = 86_400.0
    #: Measure with synthetic batches (when no event feed exists).
    canary: BatchCanary | None = None

    @model_validator(mode="after")
    def _margin_inside(self) -> BatchObjective:
        if self.margin >= self.deadline:
            raise _LocatedValueError("margin must be shorter than the deadline", ("margin",))
        return self

    @property
    def target_ratio(self) -> float:
        """The target as a ratio (0.99 for 99 %)."""
        return self.target / 100.0


#: The objectives counted from results (probes and traffic feeds).
Objective = Annotated[LatencyObjective | AvailabilityObjective, Field(discriminator="kind")]
#: Every objective a service may declare.
AnyObjective = Annotated[
    LatencyObjective | AvailabilityObjective | BatchObjective, Field(discriminator="kind")
]


# --- service hours and maintenance --------------------------------------------------------

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
_DAYS_HINT = "use mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri"
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def _weekday_index(name: Any) -> int:
    text = name.strip().lower() if isinstance(name, str) else name
    if text not in WEEKDAYS:
        raise ValueError(f"unknown weekday {name!r} ({_DAYS_HINT})")
    return WEEKDAYS.index(text)


def _parse_days(value: Any) -> Any:
    """Accept ``mon-fri`` (a range, wrapping past Sunday), ``mon`` or a list of names."""
    if isinstance(value, str):
        first, sep, last = value.partition("-")
        if not sep:
            return [WEEKDAYS[_weekday_index(value)]]
        begin, end = _weekday_index(first), _weekday_index(last)
        return [WEEKDAYS[(begin + k) % 7] for k in range((end - begin) % 7 + 1)]
    if isinstance(value, list):
        if not value:
            raise ValueError(f"name at least one day ({_DAYS_HINT})")
        indexes = sorted({_weekday_index(name) for name in value})
        return [WEEKDAYS[i] for i in indexes]
    return value


def _parse_clock(value: Any) -> Any:
    """Accept "HH:MM" from 00:00 to 24:00; normalise to two-digit hours."""
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is not None:
        hours, minutes = int(match.group(1)), int(match.group(2))
        if (hours < 24 and minutes < 60) or (hours, minutes) == (24, 0):
            return f"{hours:02d}:{minutes:02d}"
    raise ValueError("not a time of day: use HH:MM from 00:00 to 24:00")


#: A wall-clock time "HH:MM" in the config's time zone; "24:00" is the end of the day.
ClockTime = Annotated[str, BeforeValidator(_parse_clock)]


def _clock_minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    return int(hours) * 60 + int(minutes)


class HoursRule(_Strict):
    """Open from ``start`` to ``end`` on ``days``; an end at or before the start runs into
    the next day (22:00-06:00 on mon is Monday 22:00 to Tuesday 06:00)."""

    days: Annotated[list[Weekday], BeforeValidator(_parse_days)]
    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self) -> HoursRule:
        if self.start == "24:00":
            raise _LocatedValueError("a start of 24:00 is the next day's 00:00", ("start",))
        if self.start == self.end:
            raise _LocatedValueError(
                f"start and end are both {self.start}: write 00:00 to 24:00 for a whole day",
                ("end",),
            )
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        """The days as ``date.weekday()`` numbers (Monday is 0)."""
        return frozenset(WEEKDAYS.index(day) for day in self.days)

    @property
    def start_minute(self) -> int:
        """Minutes from local midnight to the start."""
        return _clock_minutes(self.start)

    @property
    def end_minute(self) -> int:
        """Minutes from the start day's local midnight to the end (over 1440 when the
        range crosses midnight)."""
        end = _clock_minutes(self.end)
        return end if end > self.start_minute else end + 1440


def _supported_countries() -> dict[str, list[str]]:
    # Imported here: the holidays package is large and only configs with holidays need it.
    import holidays

    return holidays.list_supported_countries()


class HolidaySettings(_Strict):
    """Public holidays (a whole local day each) are outside service hours."""

    #: ISO 3166-1 alpha-2 code of a country the ``holidays`` package knows (e.g. BE).
    country: str | None = None
    #: A subdivision of that country, as the ``holidays`` package names it.
    subdivision: str | None = None
    extra_dates: list[dt.date] = Field(default_factory=list)

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is not None and value not in _supported_countries():
            raise ValueError(
                "unknown holiday country: use an ISO 3166-1 alpha-2 code the holidays "
                "package supports, e.g. BE"
            )
        return value

    @model_validator(mode="after")
    def _known_subdivision(self) -> HolidaySettings:
        if self.subdivision is None:
            return self
        if self.country is None:
            raise _LocatedValueError("a subdivision needs a country", ("subdivision",))
        known = _supported_countries()[self.country]
        if self.subdivision not in known:
            raise _LocatedValueError(
                f"unknown subdivision {self.subdivision!r} of {self.country} "
                f"(known: {', '.join(known) or 'none'})",
                ("subdivision",),
            )
        return self


class ScheduleConfig(_Strict):
    """Service hours in the config's time zone: weekly rules minus public holidays."""

    #: None: open around the clock (24x7).
    hours: list[HoursRule] | None = Field(default=None, min_length=1)
    holidays: HolidaySettings | None = None


class MaintenanceConfig(_Strict):
    """A planned maintenance window; naive times are in the config's time zone."""

    start: dt.datetime
    end: dt.datetime
    reason: str = Field(min_length=1)
    #: When users were told; None: long before, so the whole window counts.
    announced_at: dt.datetime | None = None

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give the reason users are told")
        return value

    @field_validator("start", "end", "announced_at")
    @classmethod
    def _in_range(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and not 1970 <= value.year < 2200:
            raise ValueError("must lie between 1970 and 2200")
        return value

    @model_validator(mode="after")
    def _end_after_start(self) -> MaintenanceConfig:
        # Naive times get the config's zone later; comparing a naive with an aware time
        # here would need that zone, so the two must be written alike.
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise _LocatedValueError(
                "give start and end both with a UTC offset or both without one", ("end",)
            )
        if self.end <= self.start:
            raise _LocatedValueError("end must be after start", ("end",))
        return self


class ServiceConfig(_Strict):
    """A monitored service: its probes and the objectives its contract sets."""

    # ``objectives`` in the file is ``all_objectives`` here: the ``objectives`` property
    # gives the ones counted from results, ``batch_objectives`` the others.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    name: str = Field(pattern=_NAME)
    description: str = ""
    #: Probes and traffic feeds; none only for a service measured by batch events alone.
    probes: list[ProbeConfig] = Field(default_factory=list)
    all_objectives: list[AnyObjective] = Field(default_factory=list, alias="objectives")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    maintenance: list[MaintenanceConfig] = Field(default_factory=list)
    #: Provider services: their down or maintenance minutes may be excluded for this one.
    depends_on: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_resolve(self) -> ServiceConfig:
        probe_names = [p.name for p in self.probes]
        _no_duplicates(probe_names, "probe", ("probes",))
        _no_duplicates([o.name for o in self.all_objectives], "objective", ("objectives",))
        if not self.probes and any(o.kind != "batch" for o in self.all_objectives):
            raise _LocatedValueError(
                "give the probes or traffic feeds its objectives count (only a service "
                "with batch objectives alone needs none)",
                ("probes",),
            )
        if not self.probes and not self.all_objectives:
            raise _LocatedValueError("give at least one probe", ("probes",))
        kinds = {p.name: p.kind for p in self.probes}
        for i, objective in enumerate(self.all_objectives):
            if objective.kind == "batch":
                continue
            for k, name in enumerate(objective.probes or []):
                if name not in probe_names:
                    raise ValueError(f"objective {objective.name!r} names unknown probe {name!r}")
                if not _of_source(kinds[name], objective.source):
                    raise _LocatedValueError(
                        f"{name!r} is {'a traffic feed' if kinds[name] == 'traffic' else 'a probe'}"
                        f", not of source {objective.source!r}",
                        ("objectives", i, "probes", k),
                    )
            if not self.probes_of(objective):
                wanted = "kind: traffic feed" if objective.source == "traffic" else "probe"
                raise _LocatedValueError(
                    f"objective {objective.name!r} has source {objective.source!r} but the "
                    f"service has no {wanted} to count",
                    ("objectives", i, "source"),
                )
        return self

    def probes_of(self, objective: LatencyObjective | AvailabilityObjective) -> list[str]:
        """Names of the probes (and traffic feeds) an objective counts."""
        if objective.probes:
            return list(objective.probes)
        return [p.name for p in self.probes if _of_source(p.kind, objective.source)]

    def series_of(self, objective: LatencyObjective | AvailabilityObjective) -> list[str]:
        """Names of the rollup series an objective sums: its probes, or for a latency
        objective of one location ``probe@location`` each (that probe's results from
        that location alone; ``@`` is never in a probe's name)."""
        names = self.probes_of(objective)
        location = getattr(objective, "location", None)
        if location is None:
            return names
        return [series_name(name, location) for name in names]

    @cached_property
    def objectives(self) -> list[LatencyObjective | AvailabilityObjective]:
        """The objectives counted from results (probes, traffic feeds)."""
        return [o for o in self.all_objectives if not isinstance(o, BatchObjective)]

    @cached_property
    def batch_objectives(self) -> list[BatchObjective]:
        """The objectives counted from batch events."""
        return [o for o in self.all_objectives if isinstance(o, BatchObjective)]

    @property
    def active_probes(self) -> list[ProbeConfig]:
        """The probes the scheduler runs (not the traffic feeds)."""
        return [p for p in self.probes if p.kind != "traffic"]


#: What a token may do: read (private reads, reports), maintenance, incidents, alerts
#: (acknowledge), ingest (post events), or admin (all of them).
Scope = Literal["read", "maintenance", "incidents", "alerts", "ingest", "admin"]


class TokenConfig(_Strict):
    """A named bearer token and what it may do, e.g. an institution's gateway that may
    announce maintenance but not open incidents."""

    env: str = Field(min_length=1)
    scopes: list[Scope] = Field(min_length=1)


class ServerTls(_Strict):
    """HTTPS for the daemon's own server (or put it behind a reverse proxy: deploy/)."""

    #: The server's certificate chain and key (PEM).
    cert_file: str
    key_file: str
    #: When set, clients must present a certificate signed by this CA (mutual TLS), e.g.
    #: Prometheus with ``tls_config.cert_file``.
    client_ca_file: str | None = None
    min_version: Literal["1.2", "1.3"] = "1.2"

    @model_validator(mode="after")
    def _files(self) -> ServerTls:
        for name in ("cert_file", "key_file", "client_ca_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise ValueError(f"{name}: no file at {value}")
        return self


class ServerConfig(_Strict):
    """The HTTP server for /metrics, /healthz and the JSON API."""

    listen: str = "127.0.0.1:9177"
    #: Environment variable holding the admin bearer token (every scope); with no token
    #: configured at all, write endpoints answer 403.
    api_token_env: str | None = None
    #: More tokens, each limited to its scopes: name -> {env, scopes}.
    tokens: dict[Annotated[str, Field(pattern=_NAME)], TokenConfig] = Field(default_factory=dict)
    #: Whether the status page, its feed and the JSON API's reads are open to anyone;
    #: when false they need the bearer token too (/metrics and /healthz stay open).
    public_reads: bool = True
    #: HTTPS instead of HTTP (None: plain HTTP, fine on 127.0.0.1 or behind a proxy).
    tls: ServerTls | None = None
    #: One log line per request (``sla-monitor.access``): "api" (all but /metrics),
    #: "all", or "off".
    access_log: Literal["api", "all", "off"] = "api"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is not HOST:PORT")
        return value

    @property
    def host(self) -> str:
        """The listen address without the port (IPv6 brackets removed)."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The listen port (0 picks a free one)."""
        return int(self.listen.rpartition(":")[2])


class StorageConfig(_Strict):
    """The store: a SQLite file, or a PostgreSQL database several daemons share."""

    path: str = "data/sla-monitor.sqlite3"
    #: A PostgreSQL database instead of the file, as libpq's URL
    #: (``postgresql://USER@HOST:PORT/DB?sslmode=...``). Its password comes from the
    #: environment (``PGPASSWORD``) or ``~/.pgpass``, never from the config.
    url: str | None = None
    #: Raw results older than this are pruned; minute rollups are kept for 400 days.
    raw_retention_days: int = Field(default=90, ge=1)
    #: Results are written in transactions of at most this many rows ...
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    #: ... or at least this often.
    flush_interval: Duration = 1.0
    #: Results the store could not take go here (default: the store's path + ".spool");
    #: put it on another volume to survive a full disk under the store.
    spool_path: str | None = None
    #: The spool's bound: beyond it, results are lost (counted and said).
    spool_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    #: Results kept in memory while the store fails before they are spilled to the spool.
    max_staged: int = Field(default=50_000, ge=100)

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        if not value.startswith(("postgresql://", "postgres://")):
            # Not echoed: a URL may hold a password.
            raise ValueError("not a postgresql:// URL (postgresql://USER@HOST:PORT/DATABASE)")
        try:
            parts = conninfo_to_dict(value)
        except ProgrammingError as exc:
            raise ValueError(f"not a valid PostgreSQL URL: {exc}") from None
        if parts.get("password"):
            raise ValueError(
                "holds a password: put it in the environment (PGPASSWORD) or ~/.pgpass,"
                " not in the config"
            )
        return value

    @property
    def location(self) -> str:
        """Where the store is, as ``open_store`` takes it: the database URL or the file."""
        return self.url or self.path


def _host_name() -> str:
    """The host's name as an instance name (its first label, in the name's characters)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname().split(".")[0])
    return name[:_INSTANCE_LEN] or "sla-monitor"


_INSTANCE_LEN = 63


class InstanceConfig(_Strict):
    """Who this daemon is among the daemons sharing one store (``storage.url``)."""

    #: Unique among them; results, instances and leadership are told apart by it.
    name: str = Field(default_factory=_host_name, pattern=_NAME, max_length=_INSTANCE_LEN)
    #: Where it probes from: daemons in one location share its network path.
    location: str = Field(default="default", pattern=_NAME, max_length=_INSTANCE_LEN)
    #: With several daemons on one database, one leads (alerts, incidents, the monthly
    #: report, digests, retention); when it stops or dies another takes over within this.
    leader_timeout: Duration = Field(default=30.0, ge=3.0, le=3600.0)


class LocationsConfig(_Strict):
    """The locations probing the same services into one store, and how many must agree
    before a minute is down (DESIGN decision 9)."""

    #: Every location that probes; empty: this daemon's location alone.
    names: list[Annotated[str, Field(pattern=_NAME, max_length=_INSTANCE_LEN)]] = Field(
        default_factory=list, max_length=32
    )
    #: A minute is down only when at least this many of the locations that measured it saw
    #: it down, and unmonitored when fewer than this many measured it. Default: a majority.
    quorum: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _quorum_fits(self) -> LocationsConfig:
        for i, name in enumerate(self.names):
            if name in self.names[:i]:
                raise _LocatedValueError(f"location {name!r} is named twice", ("names", i))
        if self.quorum is not None and self.names and self.quorum > len(self.names):
            raise _LocatedValueError(
                f"quorum {self.quorum} is larger than the {len(self.names)} locations named"
                " under locations.names",
                ("quorum",),
            )
        return self

    def of(self, location: str) -> list[str]:
        """The locations, this daemon's ``location`` when none are named."""
        return list(self.names) or [location]

    def quorum_of(self, location: str) -> int:
        """The quorum in force: the configured one, else a majority of the locations."""
        return self.quorum if self.quorum is not None else len(self.of(location)) // 2 + 1


class SchedulerConfig(_Strict):
    """Global limits of the probe scheduler."""

    #: Probe runs in flight at once, across all probes.
    max_concurrency: int = Field(default=1000, ge=1)
    #: Results waiting for the collector; when full, probes wait (nothing is dropped).
    queue_size: int = Field(default=100_000, ge=1)


# --- alerting -----------------------------------------------------------------------------


def _alert_window(value: Any) -> Any:
    if value == "1d":
        return "24h"
    if isinstance(value, str) and value not in ALERT_WINDOWS:
        raise ValueError(f"{value!r} is not one of {', '.join(ALERT_WINDOWS)} (or 1d)")
    return value


AlertWindow = Annotated[str, BeforeValidator(_alert_window)]
Severity = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]


class BurnRateAlert(_Strict):
    """Fire when the budget burns ``factor`` times too fast over both windows (SRE
    workbook multi-window multi-burn-rate alert)."""

    name: str = Field(pattern=_NAME)
    severity: Severity
    factor: float = Field(gt=0)
    long_window: AlertWindow
    short_window: AlertWindow
    #: A firing alert resolves only after staying clear this long (None: the short
    #: window), so a burn hovering at the threshold pages once, not at every crossing.
    resolve_after: NonNegativeDuration | None = None


def _default_burn_rates() -> list[BurnRateAlert]:
    return [
        BurnRateAlert(
            name="burn-14x", severity="page", factor=14.4, long_window="1h", short_window="5m"
        ),
        BurnRateAlert(
            name="burn-6x", severity="page", factor=6, long_window="6h", short_window="30m"
        ),
        BurnRateAlert(
            name="burn-3x", severity="ticket", factor=3, long_window="24h", short_window="2h"
        ),
        BurnRateAlert(
            name="burn-1x", severity="ticket", factor=1, long_window="3d", short_window="6h"
        ),
    ]


class MonthForecastAlert(_Strict):
    """At the recent burn rate, the objective will miss its target for the month."""

    enabled: bool = True
    severity: Severity = "ticket"
    #: The recent window whose burn rate is projected to the month's end.
    burn_window: AlertWindow = "6h"
    #: No forecast before this many events (or minutes) this month.
    min_events: int = Field(default=100, ge=1)


class MonthBreachAlert(_Strict):
    """Month-to-date compliance is below target (once enough events exist)."""

    enabled: bool = True
    severity: Severity = "page"
    min_events: int = Field(default=100, ge=1)


class CoverageAlert(_Strict):
    """The month's coverage of an objective is below its floor: the monitor saw too little
    of the month to give it a verdict (the monitor is failing the contract's method)."""

    enabled: bool = True
    severity: Severity = "ticket"


class BatchAtRiskAlert(_Strict):
    """Volume of a batch objective still unprocessed within its margin of the deadline."""

    enabled: bool = True
    severity: Severity = "page"


class ServiceDownAlert(_Strict):
    """N consecutive down minutes of an availability objective."""

    enabled: bool = True
    severity: Severity = "page"
    consecutive_minutes: int = Field(default=3, ge=1)


class LocationFaultAlert(_Strict):
    """N consecutive decided minutes in which one location alone (or too few to make a
    quorum) saw a service down: the monitor's own network path from there, not the
    service. Only with several locations."""

    enabled: bool = True
    severity: Severity = "ticket"
    consecutive_minutes: int = Field(default=3, ge=1)


class WebhookNotifierConfig(_Strict):
    """POST a JSON body (documented in the README) to a URL, optionally HMAC-signed."""

    kind: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    #: Environment variable holding the HMAC-SHA256 key; signature in X-SLA-Signature.
    secret_env: str | None = None
    timeout: Duration = 10.0
    #: ``sla-monitor``: this project's body; ``alertmanager``: Alertmanager's webhook
    #: payload (version "4"), so receivers built for Alertmanager work unchanged.
    format: Literal["sla-monitor", "alertmanager"] = "sla-monitor"


class AlertmanagerNotifierConfig(_Strict):
    """POST /api/v2/alerts to an Alertmanager so it routes and groups them."""

    kind: Literal["alertmanager"]
    url: str = Field(pattern=r"^https?://")
    timeout: Duration = 10.0


class EmailNotifierConfig(_Strict):
    """Mail over SMTP (STARTTLS by default; credentials from the environment)."""

    kind: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username_env: str | None = None
    password_env: str | None = None
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    timeout: Duration = 10.0


class LogNotifierConfig(_Strict):
    """Write the event to the daemon's log."""

    kind: Literal["log"]


NotifierConfig = Annotated[
    WebhookNotifierConfig | AlertmanagerNotifierConfig | EmailNotifierConfig | LogNotifierConfig,
    Field(discriminator="kind"),
]


class EscalationStep(_Strict):
    """Notify these notifiers once the alert has been firing (unacknowledged) ``after``."""

    notifiers: list[str] = Field(min_length=1)
    after: NonNegativeDuration = 0.0


def _default_notifiers() -> dict[str, NotifierConfig]:
    return {"log": LogNotifierConfig(kind="log")}


def _default_escalation() -> dict[str, list[EscalationStep]]:
    return {
        "page": [EscalationStep(notifiers=["log"])],
        "ticket": [EscalationStep(notifiers=["log"])],
    }


class AlertingConfig(_Strict):
    """The built-in alerting: which alerts, who is told, and when to escalate."""

    enabled: bool = True
    burn_rate: list[BurnRateAlert] = Field(default_factory=_default_burn_rates)
    month_forecast: MonthForecastAlert = Field(default_factory=MonthForecastAlert)
    month_breach: MonthBreachAlert = Field(default_factory=MonthBreachAlert)
    service_down: ServiceDownAlert = Field(default_factory=ServiceDownAlert)
    location_fault: LocationFaultAlert = Field(default_factory=LocationFaultAlert)
    coverage: CoverageAlert = Field(default_factory=CoverageAlert)
    batch_at_risk: BatchAtRiskAlert = Field(default_factory=BatchAtRiskAlert)
    #: A condition must hold this long before its alert fires (pending until then).
    pending_for: NonNegativeDuration = 0.0
    #: A firing alert is notified again this often while it lasts (not acknowledged).
    repeat_interval: Duration = 4 * 3600.0
    #: How long the month and service-down alerts stay clear before they resolve (each
    #: burn-rate alert has its own ``resolve_after``, by default its short window).
    resolve_after: NonNegativeDuration = 0.0
    #: How often the conditions are evaluated.
    evaluation_interval: Duration = 15.0
    notifiers: dict[str, NotifierConfig] = Field(default_factory=_default_notifiers)
    #: Per severity, the ordered escalation steps.
    escalation: dict[str, list[EscalationStep]] = Field(default_factory=_default_escalation)

    @model_validator(mode="after")
    def _escalation_resolves(self) -> AlertingConfig:
        severities = {a.severity for a in self.burn_rate} | {
            self.month_forecast.severity,
            self.month_breach.severity,
            self.service_down.severity,
            self.location_fault.severity,
            self.coverage.severity,
        }
        for severity in sorted(severities):
            if severity not in self.escalation:
                raise _LocatedValueError(
                    f"severity {severity!r} has no escalation policy", ("escalation",)
                )
        for severity, steps in self.escalation.items():
            if not steps:
                raise _LocatedValueError(
                    f"escalation {severity!r} has no step", ("escalation", severity)
                )
            for i, step in enumerate(steps):
                for k, name in enumerate(step.notifiers):
                    if name not in self.notifiers:
                        raise _LocatedValueError(
                            f"escalation step uses unknown notifier {name!r}",
                            ("escalation", severity, i, "notifiers", k),
                        )
        return self


class StatusSubscriber(_Strict):
    """Tell a service's users (not ops) about maintenance and incidents via a notifier."""

    service: str
    #: A name under ``alerting.notifiers`` (webhook, email or log).
    notifier: str


class StatusConfig(_Strict):
    """The public status page, incident detection and user notifications."""

    #: Title of the status page and its feed: one for every language, or one per
    #: language ({en: ..., fr: ..., nl: ...}); not set: "Service status" in each language.
    title: (
        Annotated[str, Field(min_length=1, max_length=200)]
        | dict[Literal["en", "fr", "nl"], Annotated[str, Field(min_length=1, max_length=200)]]
        | None
    ) = None

    def title_in(self, lang: str) -> str | None:
        """The title for ``lang`` (None: not configured; the page translates its own)."""
        if self.title is None or isinstance(self.title, str):
            return self.title
        titles: dict[str, str] = {str(k): v for k, v in self.title.items()}
        return titles.get(lang) or titles.get("en") or next(iter(titles.values()))

    #: A detected incident opens after this many consecutive down minutes...
    open_after_minutes: int = Field(default=1, ge=1, le=60)
    #: ...and resolves after this many consecutive up minutes.
    resolve_after_minutes: int = Field(default=5, ge=1, le=1440)
    #: How often the page's live updates (server-sent events) are pushed.
    refresh_interval: Duration = 5.0
    #: Days of daily availability shown per service.
    history_days: int = Field(default=90, ge=1, le=366)
    subscribers: list[StatusSubscriber] = Field(default_factory=list)


ReportFormat = Literal["html", "pdf", "md", "json", "csv"]


def _all_report_formats() -> list[ReportFormat]:
    return ["json", "html", "pdf", "md", "csv"]


class MqttIngestConfig(_Strict):
    """Events gateways publish on MQTT (docs/events.md): the same format as the API."""

    broker: str = "default"
    #: A topic filter (wildcards allowed), e.g. ``crossroads/events/#``.
    topic: str = Field(min_length=1, pattern=r"^[^\x00]+$")
    #: A fixed client id: the broker keeps its session (subscription and the QoS 1
    #: messages not yet acknowledged) while the daemon is down.
    client_id: str = Field(default="sla-monitor-events", min_length=1, max_length=64)
    qos: Literal[1, 2] = 1


class IngestConfig(_Strict):
    """Events of real traffic posted to ``POST /api/ingest`` or published on MQTT
    (docs/events.md)."""

    #: Subscribe to events on a broker as well (None: the API only).
    mqtt: MqttIngestConfig | None = None

    #: Largest request body in bytes (413 above it).
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    #: Most events in one request (413 above it).
    max_events: int = Field(default=10_000, ge=1, le=100_000)
    #: An event whose start is older than this is refused as too late: its minute is
    #: closed (counted in ``sla_events_total{result="late"}``; a correction changes it).
    max_age: Duration = 6 * 3600.0
    #: An event may start at most this far after the daemon's clock (clock skew).
    max_ahead: NonNegativeDuration = 60.0
    #: Processes that parse and check event bodies beside the event loop, so ingest
    #: uses another core (0: on the loop). Started only when some service takes events.
    workers: int = Field(default=1, ge=0, le=32)


class ReportsConfig(_Strict):
    """The monthly report: where closed months are archived and what the daemon writes."""

    #: The daemon writes the previous month's report shortly after the month ends.
    enabled: bool = True
    #: Archive of frozen monthly reports (relative paths: from the config file's folder;
    #: not set: ``reports`` beside the store).
    directory: str = "data/reports"
    #: Documents archived with each version (the JSON figures are always archived).
    formats: list[ReportFormat] = Field(default_factory=_all_report_formats, min_length=1)
    #: How long after the month's end the daemon waits, so every minute is sealed.
    delay: Duration = 600.0
    #: Report requests (GET /api/reports/...) that may wait while one is made; more get
    #: 429 (each one is a child process, and Chromium for a PDF).
    max_waiting: int = Field(default=2, ge=0, le=100)
    #: Whether GET /api/reports/... is open to anyone; by default it needs a token with
    #: the read scope, as each request may start a child process (and Chromium).
    public: bool = False


class Config(_Strict):
    """The whole configuration of one daemon."""

    #: Time zone of calendar windows and reports.
    timezone: str = "Europe/Brussels"
    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    instance: InstanceConfig = Field(default_factory=InstanceConfig)
    locations: LocationsConfig = Field(default_factory=LocationsConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    brokers: dict[str, MqttBrokerSettings] = Field(default_factory=dict)
    services: list[ServiceConfig] = Field(min_length=1)
    simulator: SimulatorSettings | None = None
    #: A maintenance window excludes minutes only from its announcement plus this much.
    maintenance_lead_time: NonNegativeDuration = 0.0
    #: Below this coverage (percent of a window the monitor saw) a verdict is
    #: "insufficient data", never met; objectives may set their own.
    coverage_floor: CoverageFloor = 90.0
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    status: StatusConfig = Field(default_factory=StatusConfig)
    reports: ReportsConfig = Field(default_factory=ReportsConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    #: The contract the monthly report is signed against (its first page names it).
    contract: ContractConfig | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> Config:
        _no_duplicates([s.name for s in self.services], "service", ("services",))
        for i, service in enumerate(self.services):
            for j, probe in enumerate(service.probes):
                for loc, broker in _brokers_used(probe):
                    if broker not in self.brokers:
                        raise _LocatedValueError(
                            f"service {service.name!r} probe {probe.name!r} uses broker "
                            f"{broker!r}, which is not defined under brokers",
                            ("services", i, "probes", j, *loc),
                        )
        events = self.ingest.mqtt
        if events is not None and events.broker not in self.brokers:
            raise _LocatedValueError(
                f"ingest.mqtt uses broker {events.broker!r}, which is not defined under brokers",
                ("ingest", "mqtt", "broker"),
            )
        if self.simulator is not None:
            for k, responder in enumerate(self.simulator.mqtt):
                if responder.broker not in self.brokers:
                    raise _LocatedValueError(
                        f"simulator responder on {responder.request_topic!r} uses broker "
                        f"{responder.broker!r}, which is not defined under brokers",
                        ("simulator", "mqtt", k, "broker"),
                    )
        return self

    @model_validator(mode="after")
    def _locations_resolve(self) -> Config:
        names = self.locations.names
        if not names:
            if self.locations.quorum is not None and self.locations.quorum > 1:
                raise _LocatedValueError(
                    f"quorum {self.locations.quorum} is larger than the 1 location"
                    " (name the locations under locations.names)",
                    ("locations", "quorum"),
                )
            return self
        # Unset, it may come from ``run --location`` (one config for every location).
        given = "location" in self.instance.model_fields_set
        if given and self.instance.location not in names:
            raise _LocatedValueError(
                f"location {self.instance.location!r} is not one of locations.names"
                f" ({', '.join(names)})",
                ("instance", "location"),
            )
        if len(names) > 1 and self.storage.url is None:
            raise _LocatedValueError(
                "several locations decide minutes together through one PostgreSQL store:"
                " set storage.url",
                ("locations", "names"),
            )
        return self

    @model_validator(mode="after")
    def _objective_locations_resolve(self) -> Config:
        known = self.locations.of(self.instance.location)
        for i, service in enumerate(self.services):
            for j, objective in enumerate(service.all_objectives):
                location = getattr(objective, "location", None)
                if location is None or isinstance(objective, BatchObjective):
                    continue
                where = ("services", i, "objectives", j, "location")
                if objective.source != "probes":
                    raise _LocatedValueError(
                        "only probes are measured from a location: an objective with a "
                        "location has source 'probes'",
                        where,
                    )
                if location not in known:
                    raise _LocatedValueError(
                        f"location {location!r} is not one of the locations"
                        f" ({', '.join(known)}; name them under locations.names)",
                        where,
                    )
        return self

    @property
    def shared_minutes(self) -> bool:
        """Whether minutes are decided by a quorum of several locations (from what every
        location stored) rather than by this daemon's own results."""
        return len(self.locations.of(self.instance.location)) > 1

    @model_validator(mode="after")
    def _contract_resolves(self) -> Config:
        if self.contract is None:
            return self
        objectives = {s.name: {o.name for o in s.objectives} for s in self.services}
        seen: set[tuple[str, str]] = set()
        for i, item in enumerate(self.contract.objectives):
            where: tuple[str | int, ...] = ("contract", "objectives", i)
            if item.service not in objectives:
                raise _LocatedValueError(
                    f"the contract words an objective of unknown service {item.service!r}",
                    (*where, "service"),
                )
            if item.objective not in objectives[item.service]:
                raise _LocatedValueError(
                    f"service {item.service!r} has no objective {item.objective!r}",
                    (*where, "objective"),
                )
            if (item.service, item.objective) in seen:
                raise _LocatedValueError(
                    f"the contract words {item.service}/{item.objective} twice", where
                )
            seen.add((item.service, item.objective))
        return self

    @model_validator(mode="after")
    def _dependencies_resolve(self) -> Config:
        index = {s.name: i for i, s in enumerate(self.services)}
        for i, service in enumerate(self.services):
            for k, provider in enumerate(service.depends_on):
                loc: tuple[str | int, ...] = ("services", i, "depends_on", k)
                if provider == service.name:
                    raise _LocatedValueError(
                        f"service {service.name!r} cannot depend on itself", loc
                    )
                if provider not in index:
                    raise _LocatedValueError(
                        f"service {service.name!r} depends on unknown service {provider!r}", loc
                    )
        for i, service in enumerate(self.services):
            cycle = _cycle_from(service.name, self)
            if cycle is not None:
                k = service.depends_on.index(cycle[1])
                raise _LocatedValueError(
                    f"dependency cycle: {' -> '.join(cycle)}", ("services", i, "depends_on", k)
                )
        return self

    @model_validator(mode="after")
    def _subscribers_resolve(self) -> Config:
        services = {s.name for s in self.services}
        for i, subscriber in enumerate(self.status.subscribers):
            loc: tuple[str | int, ...] = ("status", "subscribers", i)
            if subscriber.service not in services:
                raise _LocatedValueError(
                    f"status subscriber of unknown service {subscriber.service!r}",
                    (*loc, "service"),
                )
            notifier = self.alerting.notifiers.get(subscriber.notifier)
            if notifier is None:
                raise _LocatedValueError(
                    f"status subscriber uses unknown notifier {subscriber.notifier!r}",
                    (*loc, "notifier"),
                )
            if isinstance(notifier, AlertmanagerNotifierConfig):
                # Alertmanager keeps an alert active until resolved: fit for ops, not users.
                raise _LocatedValueError(
                    "status subscribers cannot use an alertmanager notifier",
                    (*loc, "notifier"),
                )
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)

    def service(self, name: str) -> ServiceConfig:
        """The service called ``name`` (a dict lookup: a late result asks per result)."""
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, ServiceConfig]:
        return {service.name: service for service in self.services}


def config_warnings(config: Config) -> list[str]:
    """What is valid but probably not meant, naming the keys: a latency threshold at or
    above a counted probe's timeout can never be met as written (the probe gives up
    first, so every slow answer is a time-out)."""
    warnings = []
    for i, service in enumerate(config.services):
        probes = {p.name: (k, p) for k, p in enumerate(service.probes)}
        for j, objective in enumerate(service.all_objectives):
            if not isinstance(objective, LatencyObjective):
                continue
            for name in service.probes_of(objective):
                k, probe = probes[name]
                if objective.threshold >= probe.timeout:
                    warnings.append(
                        f"services[{i}].objectives[{j}].threshold ({objective.threshold:g} s) "
                        f"is not below services[{i}].probes[{k}].timeout "
                        f"({probe.timeout:g} s, probe {name!r}): answers slower than the "
                        "timeout count as time-outs, so the threshold is never what decides"
                    )
    return warnings


#: The shortest API token accepted: a guessable token is no protection.
MIN_TOKEN_LENGTH = 16


def token_problem(variable: str, value: str | None) -> str | None:
    """Why the API token in ``variable`` cannot protect writes (None when it can)."""
    if value is None:
        return f"environment variable {variable} is not set"
    if len(value.strip()) < MIN_TOKEN_LENGTH:
        return (
            f"environment variable {variable} holds {len(value.strip())} characters: an API "
            f"token needs at least {MIN_TOKEN_LENGTH} (e.g. `openssl rand -hex 32`)"
        )
    return None


def missing_secrets(config: Config) -> list[str]:
    """Errors for environment variables the config names but the environment lacks, and
    for an API token too short to protect anything (empty included)."""
    errors = []
    if config.server.api_token_env is not None:
        token_env = config.server.api_token_env
        problem = token_problem(token_env, os.environ.get(token_env))
        if problem is not None:
            errors.append(f"server.api_token_env: {problem}")
    for name, token in config.server.tokens.items():
        problem = token_problem(token.env, os.environ.get(token.env))
        if problem is not None:
            errors.append(f"server.tokens.{name}.env: {problem}")
    named: list[tuple[str, str | None]] = []
    for name, notifier in config.alerting.notifiers.items():
        for key in ("secret_env", "username_env", "password_env"):
            named.append((f"alerting.notifiers.{name}.{key}", getattr(notifier, key, None)))
    for where, variable in named:
        if variable is not None and variable not in os.environ:
            errors.append(f"{where}: environment variable {variable} is not set")
    for i, service in enumerate(config.services):
        for k, probe in enumerate(service.probes):
            targets: list[tuple[str, Any]] = [(f"services[{i}].probes[{k}]", probe)]
            if isinstance(probe, IntegratedProbeSettings):
                targets = [
                    (f"services[{i}].probes[{k}].steps[{n}]", step)
                    for n, step in enumerate(probe.steps)
                ]
            for where, target in targets:
                for header, variable in getattr(target, "headers_env", {}).items():
                    if variable not in os.environ:
                        errors.append(
                            f"{where}.headers_env.{header}: environment variable {variable} "
                            "is not set"
                        )
    for name, broker in config.brokers.items():
        for key in ("username_env", "password_env"):
            variable = getattr(broker, key)
            if variable is not None and variable not in os.environ:
                errors.append(f"brokers.{name}.{key}: environment variable {variable} is not set")
    return errors


def series_name(probe: str, location: str) -> str:
    """The rollup series of ``probe``'s results measured from ``location`` alone."""
    return f"{probe}@{location}"


def _of_source(kind: str, source: str) -> bool:
    """Whether a probe of ``kind`` feeds an objective with ``source``."""
    return source == "both" or (kind == "traffic") == (source == "traffic")


def _cycle_from(start: str, config: Config) -> list[str] | None:
    """A dependency path from ``start`` back to itself, if there is one."""
    providers = {s.name: s.depends_on for s in config.services}
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for provider in providers[name]:
            if provider == start:
                return [*path, provider]
            if provider not in seen:
                seen.add(provider)
                stack.append((provider, [*path, provider]))
    return None


def _brokers_used(probe: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """The brokers a probe uses, each with its key's location inside the probe."""
    if isinstance(probe, MqttProbeSettings):
        yield ("broker",), probe.broker
    elif isinstance(probe, IntegratedProbeSettings):
        for k, step in enumerate(probe.steps):
            if step.kind == "mqtt":
                yield ("steps", k, "broker"), step.broker


class _LocatedValueError(ValueError):
    """A cross-field error that knows which key it is about, below the validator's own
    location: a model validator's errors are otherwise reported at the model itself (for
    the whole config, line 1 and no key)."""

    def __init__(self, message: str, loc: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.loc = loc


def _no_duplicates(names: list[str], what: str, loc: tuple[str | int, ...] = ()) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise _LocatedValueError(f"{what} name {name!r} is used twice", (*loc, i, "name"))
        seen.add(name)


# --- loading with line numbers ------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping key and sequence item."""


# YAML 1.1 reads an unquoted 22:00 as the base-60 integer 1320 (06:00 stays text, as it
# starts with 0). Service hours are written that way, so H:MM and HH:MM stay text here,
# as in YAML 1.2. Inserted first: the first matching resolver wins.
_LineLoader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _digit in "0123456789":
    _LineLoader.yaml_implicit_resolvers.setdefault(_digit, []).insert(
        0, ("tag:yaml.org,2002:str", re.compile(r"^[0-9]{1,2}:[0-9]{2}$"))
    )


def _build(
    node: yaml.Node,
    path: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    loader: _LineLoader,
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: key {key!r} appears twice")
            child = (*path, key)
            result[key] = _build(value_node, child, lines, loader)
            lines[child] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _dotted(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _resolve(loc: tuple[str | int, ...], data: Any) -> tuple[tuple[str | int, ...], bool]:
    """Map a pydantic error location onto the document: drop union tags such as
    ``mqtt`` that are not keys, keep the deepest path that exists. Returns the path and
    whether the full location exists in the document."""
    path: list[str | int] = []
    node = data
    exists = True
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and part == node.get("kind"):
            continue  # a discriminated union's tag (e.g. 'mqtt'), not a key
        else:
            exists = False
            path.append(part)
            break
    return tuple(path), exists


def _format_errors(
    source: str, error: ValidationError, data: Any, lines: dict[tuple[str | int, ...], int]
) -> str:
    messages = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, _LocatedValueError):
            loc = (*loc, *cause.loc)
        path, exists = _resolve(loc, data)
        probe = path if exists else path[:-1]
        while probe not in lines and probe:
            probe = probe[:-1]
        line = lines.get(probe, 1)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and its place in the file)"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif "input" in item and item["type"] not in ("model_type",):
            shown = repr(item["input"])
            # "@": a URL with a user may hold a password, never echoed.
            if len(shown) <= 40 and "@" not in shown and not isinstance(item["input"], dict | list):
                message = f"{message} (got {shown})"
        messages.append(f"{source}:{line}: {_dotted(path)}: {message}")
    return "\n".join(messages)


def parse_config(text: str, source: str = "<config>", base_dir: Path | None = None) -> Config:
    """Validate a YAML document; raise ``ConfigError`` naming file, line and key.
    With ``base_dir``, relative paths in it point under that folder."""
    loader = _LineLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{source}:{line}: not valid YAML: {exc.problem}") from None
    finally:
        loader.dispose()
    if root is None:
        raise ConfigError(f"{source}:1: the file is empty")
    lines: dict[tuple[str | int, ...], int] = {}
    try:
        data = _build(root, (), lines, _LineLoader(""))
    except ConfigError as exc:
        raise ConfigError(f"{source}:{str(exc).removeprefix('line ')}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{source}:{line}: not valid YAML: {exc.problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the top level must be a mapping of sections")
    if base_dir is not None:
        from monitor.config_paths import anchor_files

        anchor_files(data, base_dir)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc, data, lines)) from None
    if base_dir is None:
        return config
    from monitor.config_paths import anchor_config

    return anchor_config(config, base_dir)


def load_config(path: str | Path, base_dir: Path | None = None) -> Config:
    """Read and validate a config file; its relative paths point under its own folder
    (or ``base_dir``), never under the current directory."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{file}: is a directory, not a config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    return parse_config(text, str(file), base_dir or file.resolve().parent)


__all__ = [
    "WEEKDAYS",
    "AvailabilityObjective",
    "ClockTime",
    "Config",
    "HolidaySettings",
    "HoursRule",
    "LatencyObjective",
    "MaintenanceConfig",
    "NonNegativeDuration",
    "Objective",
    "ScheduleConfig",
    "ServiceConfig",
    "Weekday",
    "load_config",
    "parse_config",
    "parse_duration",
]
