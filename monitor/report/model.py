"""The monthly SLA report's model: the documented JSON schema (``docs/report.schema.json``),
the month, verdicts and the report's errors. ``compute`` fills it, ``render`` formats it."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from monitor import __version__
from monitor.contract import ContractConfig, Wording
from monitor.errors import SlaMonitorError
from monitor.sla.figures import Verdict as CoreVerdict
from monitor.sla.minutes import STATE_LABELS
from monitor.sla.windows import month_bounds

#: Version of the JSON schema; bumped whenever a key changes meaning or disappears.
#: 2: the "INSUFFICIENT DATA" verdict, coverage for latency objectives and every day.
#: Archived version-1 documents still read: every key added since has a default.
SCHEMA_VERSION = 2
#: Minute states of an availability objective, in report order (the SLA core's labels).
MINUTE_STATES = STATE_LABELS
#: Plain words for the failure classes probes report (``probes.base.Outcome``).
CAUSES = {
    "timeout": "no answer within the probe's timeout",
    "connect": "the target or the broker could not be reached",
    "status": "the target answered with an unexpected status",
    "body": "the answer's content failed the check",
    "protocol": "malformed answer or protocol violation",
    "error": "other error",
}

Verdict = Literal["PASS", "FAIL", "INSUFFICIENT DATA", "NO DATA"]
#: Every verdict, in the order the report counts them.
VERDICTS: tuple[Verdict, ...] = ("PASS", "FAIL", "INSUFFICIENT DATA", "NO DATA")
#: The SLA core's verdict as the report spells it.
REPORT_VERDICT: dict[CoreVerdict, Verdict] = {
    CoreVerdict.MET: "PASS",
    CoreVerdict.MISSED: "FAIL",
    CoreVerdict.INSUFFICIENT: "INSUFFICIENT DATA",
    CoreVerdict.NO_DATA: "NO DATA",
}
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class ReportError(SlaMonitorError):
    """A report cannot be produced (e.g. its month has no data)."""


class NoDataError(ReportError):
    """The month holds no data for the services asked about."""


class BadMonthError(ReportError, ValueError):
    """A month or year argument is not valid."""


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month (in the config's time zone when turned into minutes)."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``2026-10`` -> Month(2026, 10); raise BadMonthError with a message for the user."""
        match = _MONTH.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise BadMonthError(f"bad month {text!r}: use YYYY-MM, e.g. 2026-10")
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            raise BadMonthError(f"bad month {text!r}: the month must be 01 to 12")
        if not 1970 <= year <= 9998:
            raise BadMonthError(f"bad month {text!r}: the year must be 1970 to 9998")
        return cls(year, month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def bounds(self, zone: ZoneInfo) -> tuple[int, int]:
        """First epoch minute of the month and the first one after it."""
        return month_bounds(self.year, self.month, zone)

    def days(self) -> list[dt.date]:
        """The local dates of the month."""
        first = dt.date(self.year, self.month, 1)
        after = dt.date(self.year + self.month // 12, self.month % 12 + 1, 1)
        return [first + dt.timedelta(days=k) for k in range((after - first).days)]


def parse_year(text: str) -> int:
    """``2026`` -> 2026; raise BadMonthError with a message for the user."""
    if not re.fullmatch(r"\d{4}", text.strip()):
        raise BadMonthError(f"bad year {text!r}: use YYYY, e.g. 2026")
    year = int(text)
    if not 1970 <= year <= 9998:
        raise BadMonthError(f"bad year {text!r}: the year must be 1970 to 9998")
    return year


# --- the model (the JSON schema) ------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budget(_Model):
    """The error budget of an objective over the period."""

    allowed: float = Field(description="bad events (or minutes) the target allows")
    consumed: int = Field(description="bad events (or down minutes)")
    consumed_ratio: float | None = Field(description="consumed / allowed (over 1: overspent)")
    remaining: float = Field(description="allowed - consumed")


class DayFigures(_Model):
    """One objective over one local day."""

    date: str = Field(description="local date, YYYY-MM-DD")
    minutes: int = Field(description="minutes of the day in the period (1380/1500 at DST)")
    valid: int = Field(description="events, or monitored eligible minutes (up + down)")
    good: int
    bad: int
    compliance: float | None = Field(description="good / valid; null with no data")
    met: bool | None = Field(description="null: no data, or coverage below the floor")
    verdict: str | None = Field(
        default=None,
        description="met, missed, insufficient_data or no_data (null in schema 1 documents)",
    )
    quantiles_s: dict[str, float | None] | None = Field(
        default=None, description="latency only: p50, p99, p99_5 estimates in seconds"
    )
    minute_states: dict[str, int] | None = Field(
        default=None, description="availability only: minutes by state"
    )
    coverage: float | None = Field(
        default=None,
        description="availability: monitored / (monitored + unmonitored) minutes; latency: "
        "results / expected probe runs in the eligible minutes",
    )


class ObjectiveReport(_Model):
    """One objective of one service over the period."""

    service: str
    objective: str
    kind: Literal["latency", "availability"]
    target: float = Field(description="as a ratio (0.99 for 99 %)")
    threshold_s: float | None = Field(description="latency only")
    source: Literal["probes", "traffic", "both"] = Field(
        default="probes",
        description="where its results come from: the probes, events of the real traffic, "
        "or both (absent before it existed: probes)",
    )
    location: str | None = Field(
        default=None,
        description="latency only: the one location whose results it counts (its probes"
        " are then named probe@location); null: every location's results pooled",
    )
    probes: list[str]
    valid: int = Field(description="events, or monitored eligible minutes (up + down)")
    good: int
    bad: int
    achieved: float | None = Field(description="good / valid as a ratio; null with no data")
    margin: float | None = Field(description="achieved - target (ratio points)")
    verdict: Verdict
    budget: Budget
    quantiles_s: dict[str, float | None] | None = Field(
        default=None, description="latency only: p50, p99, p99_5 estimates in seconds"
    )
    minute_states: dict[str, int] | None = Field(
        default=None, description="availability only: minutes by state"
    )
    coverage: float | None = Field(
        default=None,
        description="availability: monitored / (monitored + unmonitored) minutes; latency: "
        "results / expected probe runs in the eligible minutes (schema 1: availability only)",
    )
    coverage_floor: float | None = Field(
        default=None,
        description="below this coverage the verdict is INSUFFICIENT DATA (null in schema 1)",
    )
    wording: Wording | None = Field(
        default=None,
        description="the contract's wording of the objective (one text, or per language)",
    )
    days: list[DayFigures]


class Incident(_Model):
    """A run of consecutive down minutes of an availability objective."""

    objective: str
    start: str = Field(description="local ISO time the first down minute began")
    end: str = Field(description="local ISO time the last down minute ended")
    duration_minutes: int
    failures: dict[str, int] = Field(description="failed probe results by class")
    cause: str = Field(description="the dominant failure class, in plain words")


class MaintenanceEntry(_Model):
    """A planned-maintenance window that overlaps the period."""

    id: str
    source: Literal["config", "store"]
    start: str
    end: str
    reason: str
    announced_at: str | None = Field(description="null: announced long before (config)")
    announced_late: bool = Field(description="announced (plus lead time) after its start")
    minutes_excluded: int = Field(description="minutes of the period it excluded")
    created_by: str | None = None
    created_at: str | None = None
    removed_at: str | None = None
    removed_by: str | None = None
    correction: str | None = Field(
        default=None,
        description="why its announcement is dated before it was recorded (created_at)",
    )
    origin: str | None = Field(
        default=None,
        description="where it was announced from, as authenticated (api token NAME from "
        "ADDRESS, cli USER@HOST, config file); null when stored before it was recorded",
    )


class AlertEntry(_Model):
    """An alert of the service that was pending or firing during the period."""

    alert_id: str
    rule: str
    severity: str
    objective: str | None
    status: str
    summary: str
    pending_since: str
    started_at: str | None = Field(description="when it started firing")
    acknowledged_at: str | None
    acknowledged_by: str | None
    resolved_at: str | None
    minutes_to_acknowledge: float | None = Field(description="from firing to acknowledgement")
    minutes_to_resolve: float | None = Field(description="from firing to resolution")


class LocationFaultEntry(_Model):
    """Minutes a location alone (or too few to make the quorum) saw an objective down:
    the monitor's own path from there, counted up for the service."""

    objective: str
    location: str
    minutes: int


class BatchDayReport(_Model):
    """One submission day of a batch objective."""

    date: str = Field(description="local date the batches were handed in, YYYY-MM-DD")
    state: Literal["final", "pending"] = Field(
        description="pending until the day's deadline has passed or all of it is processed"
    )
    submitted: int = Field(description="records (or batches) handed in that day")
    in_time: int = Field(description="of them, processed within the deadline")
    unprocessed: int = Field(description="not processed yet")
    compliance: float | None = Field(description="in_time / submitted")


class BatchObjectiveReport(_Model):
    """A batch objective over the period: its final days, and the pending ones beside."""

    service: str
    objective: str
    target: float = Field(description="as a ratio (0.99 for 99 %)")
    deadline_s: float
    measure: Literal["records", "batches"]
    valid: int = Field(description="records (or batches) handed in on the final days")
    good: int = Field(description="of them, processed within the deadline")
    bad: int
    achieved: float | None = Field(description="good / valid over the final days")
    margin: float | None = Field(description="achieved - target (ratio points)")
    verdict: Verdict = Field(description="over the final days")
    pending_days: int = Field(description="days of the period still pending")
    pending_submitted: int = Field(description="records (or batches) of the pending days")
    wording: Wording | None = Field(default=None, description="the contract's words for it")
    days: list[BatchDayReport]


class ServiceReport(_Model):
    """One service over the period."""

    name: str
    description: str
    verdict: Verdict
    measured_from: str | None = Field(
        default=None,
        description="local ISO time of the service's first measured result, when the "
        "period began before it; null otherwise",
    )
    objectives: list[ObjectiveReport]
    batches: list[BatchObjectiveReport] = Field(
        default_factory=list, description="batch objectives (absent before they existed)"
    )
    incidents: list[Incident]
    maintenance: list[MaintenanceEntry]
    alerts: list[AlertEntry]
    location_faults: list[LocationFaultEntry] = Field(
        default_factory=list,
        description="per objective and location, the minutes that were the location's fault "
        "(several locations only; absent before they existed)",
    )

    def verdicts(self) -> list[Verdict]:
        """The verdict of every objective, batch ones included."""
        return [o.verdict for o in self.objectives] + [b.verdict for b in self.batches]


class UnmonitoredSpan(_Model):
    """A period declared unmonitored by a correction (the monitor itself was faulty)."""

    service: str | None = Field(description="null: every service")
    start: float = Field(description="UTC epoch seconds")
    end: float = Field(description="UTC epoch seconds (exclusive)")


class Correction(_Model):
    """A recorded correction of a closed month: who, when, why, and what it changes."""

    number: int
    version: int = Field(description="the report version that first included it")
    recorded_at: str
    by: str
    reason: str
    unmonitored: list[UnmonitoredSpan] = Field(default_factory=list)


class Period(_Model):
    """The period covered."""

    month: str = Field(description="YYYY-MM")
    timezone: str
    start: str = Field(description="local ISO time, inclusive")
    end: str = Field(description="local ISO time, exclusive (to date when provisional)")
    month_end: str = Field(description="local ISO time the calendar month ends")
    provisional: bool = Field(description="the month is not over: figures to date")
    days: int
    minutes: int = Field(description="minutes in the period (DST days have 1380/1500)")
    measured_from: str | None = Field(
        default=None,
        description="local ISO time of the first measured result of the services reported, "
        "when the period began before it (the monitor was installed during the month); "
        "null otherwise",
    )


class MethodItem(_Model):
    """One paragraph of the method section."""

    topic: str
    text: str


class EvidenceHead(_Model):
    """Where the daily digests' hash chain stood for the month when the report was made."""

    date: str = Field(description="the newest local date digested, up to the month's last day")
    chain: str = Field(description="its link (SHA-256): every raw result up to that day")
    days: int = Field(description="days of the month digested")


class Report(_Model):
    """The monthly SLA report: the machine-readable twin of the document."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["sla-monthly-report"] = "sla-monthly-report"
    generator: str = f"sla-monitor {__version__}"
    generated_at: str
    version: int | None = Field(description="archive version; null when not archived")
    period: Period
    verdict: Verdict
    counts: dict[str, int] = Field(description="objectives by verdict")
    services: list[ServiceReport]
    corrections: list[Correction]
    method: list[MethodItem]
    contract: ContractConfig | None = Field(
        default=None, description="the config's contract section: what the report is signed against"
    )
    evidence: EvidenceHead | None = Field(
        default=None, description="the digests' chain for the month (null: no day digested)"
    )

    def only(self, service: str) -> Report:
        """A copy holding one service, with the verdict recomputed for it."""
        chosen = [s for s in self.services if s.name == service]
        if not chosen:
            raise ReportError(f"the report has no service {service!r}")
        verdicts = [v for s in chosen for v in s.verdicts()]
        period = self.period.model_copy(update={"measured_from": chosen[0].measured_from})
        return self.model_copy(
            update={
                "period": period,
                "services": chosen,
                "verdict": overall_verdict(verdicts),
                "counts": verdict_counts(verdicts),
            }
        )

    def objectives(self) -> list[ObjectiveReport]:
        """Every objective of every service, in report order."""
        return [o for s in self.services for o in s.objectives]


def overall_verdict(verdicts: Iterable[Verdict]) -> Verdict:
    """FAIL if any objective failed; else INSUFFICIENT DATA if any was measured too little
    (no PASS for a document whose figures rest on too few results); else PASS if any
    passed; else NO DATA."""
    seen = set(verdicts)
    for verdict in ("FAIL", "INSUFFICIENT DATA", "PASS"):
        if verdict in seen:
            return verdict
    return "NO DATA"


def verdict_counts(verdicts: Iterable[Verdict]) -> dict[str, int]:
    """Objectives by verdict, every verdict present as a key."""
    counts = Counter(verdicts)
    return {v: counts.get(v, 0) for v in VERDICTS}


class YearCell(_Model):
    """One objective in one month of a yearly summary."""

    achieved: float | None
    verdict: Verdict
    valid: int


class YearRow(_Model):
    """One objective across the months of a year."""

    service: str
    objective: str
    kind: Literal["latency", "availability"]
    target: float
    months: dict[str, YearCell | None] = Field(description="YYYY-MM -> figures; null: no data")


MonthStatus = Literal["final", "provisional", "no data", "not started"]


class YearMonth(_Model):
    """What a yearly summary knows of one month."""

    month: str
    status: MonthStatus
    version: int | None = Field(description="archive version the figures come from")
    verdict: Verdict | None


class YearReport(_Model):
    """Each month of a year side by side."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["sla-yearly-summary"] = "sla-yearly-summary"
    generator: str = f"sla-monitor {__version__}"
    generated_at: str
    year: int
    timezone: str
    months: list[YearMonth]
    rows: list[YearRow]


#: Called with (what, done, total) while a report is computed or rendered.
Progress = Callable[[str, int, int], None]

__all__ = [
    "MINUTE_STATES",
    "SCHEMA_VERSION",
    "VERDICTS",
    "BadMonthError",
    "Correction",
    "Month",
    "NoDataError",
    "Progress",
    "Report",
    "ReportError",
    "UnmonitoredSpan",
    "YearReport",
    "parse_year",
]
