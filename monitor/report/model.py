"""The monthly SLA report: its model (the documented JSON schema) and how it is computed
from the store.

Every figure is counted with ``monitor.sla`` from the same minute rollups and the same
persisted minute decisions the daemon uses, so the report cannot disagree with the
daemon's ``previous_month`` window (DESIGN decisions 1-3):

- a latency objective sums the rollups of its probes over the minutes the service counted
  (neither outside its hours nor in announced maintenance);
- an availability objective counts each minute as the daemon decided it when it sealed the
  minute (``minute_states``). A minute with no stored decision is decided now the way a
  restart of the daemon decides it: from its rollups when it has some, else *unmonitored*
  (the monitor was down) unless service hours or maintenance exclude it.

Two things may change a closed month's figures, and both are explicit: a maintenance
window registered after the fact (stored with an announcement time before its start, by
agreement) excludes the minutes it covers that had counted; a correction marks a period
in which the monitor itself was faulty as unmonitored. Both produce a new numbered version
of the archived report (``monitor.report.archive``).

Renderers (``monitor.report.render``) only format this model.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from monitor import __version__
from monitor.config import AvailabilityObjective, Config, LatencyObjective
from monitor.errors import SlaMonitorError
from monitor.results import HourSummary, ServiceMinute
from monitor.sla.counts import Rollup
from monitor.sla.eligibility import Eligibility
from monitor.sla.figures import (
    WindowFigures,
    availability_window,
    counts_by_label,
    latency_window,
)
from monitor.sla.minutes import STATE_LABELS, MinuteClassifier, MinuteCode
from monitor.sla.objectives import grace_minutes
from monitor.sla.windows import day_bounds, month_bounds
from monitor.store import MaintenanceRecord, Store
from monitor.timeparse import iso_local

#: Version of the JSON schema; bumped whenever a key changes meaning or disappears.
SCHEMA_VERSION = 1
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

Verdict = Literal["PASS", "FAIL", "NO DATA"]
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
    met: bool | None
    quantiles_s: dict[str, float | None] | None = Field(
        default=None, description="latency only: p50, p99, p99_5 estimates in seconds"
    )
    minute_states: dict[str, int] | None = Field(
        default=None, description="availability only: minutes by state"
    )
    coverage: float | None = Field(
        default=None, description="availability only: monitored / (monitored + unmonitored)"
    )


class ObjectiveReport(_Model):
    """One objective of one service over the period."""

    service: str
    objective: str
    kind: Literal["latency", "availability"]
    target: float = Field(description="as a ratio (0.99 for 99 %)")
    threshold_s: float | None = Field(description="latency only")
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
    coverage: float | None = Field(default=None, description="availability only")
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


class ServiceReport(_Model):
    """One service over the period."""

    name: str
    description: str
    verdict: Verdict
    objectives: list[ObjectiveReport]
    incidents: list[Incident]
    maintenance: list[MaintenanceEntry]
    alerts: list[AlertEntry]


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


class MethodItem(_Model):
    """One paragraph of the method section."""

    topic: str
    text: str


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

    def only(self, service: str) -> Report:
        """A copy holding one service, with the verdict recomputed for it."""
        chosen = [s for s in self.services if s.name == service]
        if not chosen:
            raise ReportError(f"the report has no service {service!r}")
        verdicts = [o.verdict for s in chosen for o in s.objectives]
        return self.model_copy(
            update={
                "services": chosen,
                "verdict": overall_verdict(verdicts),
                "counts": verdict_counts(verdicts),
            }
        )

    def objectives(self) -> list[ObjectiveReport]:
        """Every objective of every service, in report order."""
        return [o for s in self.services for o in s.objectives]


def overall_verdict(verdicts: Iterable[Verdict]) -> Verdict:
    """FAIL if any objective failed, else PASS if any passed, else NO DATA."""
    seen = set(verdicts)
    if "FAIL" in seen:
        return "FAIL"
    return "PASS" if "PASS" in seen else "NO DATA"


def verdict_counts(verdicts: Iterable[Verdict]) -> dict[str, int]:
    """Objectives by verdict, every verdict present as a key."""
    counts = Counter(verdicts)
    return {v: counts.get(v, 0) for v in ("PASS", "FAIL", "NO DATA")}


def verdict_of(achieved: float | None, target: float) -> Verdict:
    """PASS when the achieved ratio reaches the target (counts, not rounded figures)."""
    if achieved is None:
        return "NO DATA"
    return "PASS" if achieved >= target else "FAIL"


# --- computing ------------------------------------------------------------------------------

#: Called with (what, done, total) while a report is computed or rendered.
Progress = Callable[[str, int, int], None]


def _providers(config: Config, names: Iterable[str]) -> set[str]:
    """The services named and every service they depend on, transitively."""
    todo, seen = list(names), set[str]()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(config.service(name).depends_on)
    return seen


@dataclass(slots=True)
class _Minute:
    """What one minute of one service counts as in the report."""

    #: Why the minute is excluded: "" (it counts), outside_hours, maintenance, or
    #: "corrected" (a correction declared the monitor faulty then).
    exclusion: str
    states: dict[str, str]  # availability objective -> state label

    @property
    def counted(self) -> bool:
        """Whether latency objectives count the minute's results."""
        return not self.exclusion


@dataclass(slots=True)
class _ObjectiveAcc:
    """Running sums of one objective."""

    days: list[DayFigures] = field(default_factory=list)
    total: Rollup = field(default_factory=Rollup)
    states: Counter[str] = field(default_factory=Counter)
    down_minutes: list[int] = field(default_factory=list)
    failures: dict[int, dict[str, int]] = field(default_factory=dict)


def _unmonitored_minutes(
    corrections: Sequence[Correction], service: str, first: int, after: int
) -> set[int]:
    """Minutes in [first, after) a correction declared unmonitored for ``service``."""
    minutes: set[int] = set()
    for correction in corrections:
        for span in correction.unmonitored:
            if span.service is None or span.service == service:
                lo = max(first, math.ceil(span.start / 60))
                hi = min(after, math.ceil(span.end / 60))
                minutes.update(range(lo, hi))
    return minutes


def _maintenance_minutes(
    eligibility: Eligibility, service: str, lead_time_s: float, first: int, after: int
) -> set[int]:
    """Minutes in [first, after) that stored or configured maintenance excludes."""
    minutes: set[int] = set()
    for window in eligibility.windows(service):
        lo = max(first, math.ceil(window.effective_start(lead_time_s) / 60))
        hi = min(after, math.ceil(window.end / 60))
        minutes.update(range(lo, hi))
    return minutes


_DOWN_DIGIT = str(int(MinuteCode.DOWN))
_UNKNOWN_DIGIT = str(int(MinuteCode.UNKNOWN))
_ELIGIBLE_DIGIT = str(int(MinuteCode.UP))
_MAINTENANCE_DIGIT = str(int(MinuteCode.MAINTENANCE))
_LABEL_OF_DIGIT = {str(int(code)): code.label for code in MinuteCode}


class _Builder:
    """Computes the report of one period, a local day at a time (bounded memory).

    Complete hours are read from the store's compacted hour summaries (one row per
    service and hour, as the daemon's restart reads them) unless the report needs their
    minutes: an hour with a down minute (for the incident's cause), a minute a later
    maintenance window or a correction changes, or a minute the daemon never decided.
    Every other minute is read from its minute rollup and its minute decision.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        eligibility: Eligibility,
        services: list[str],
        corrections: Sequence[Correction],
    ) -> None:
        self.config = config
        self.store = store
        self.eligibility = eligibility
        self.services = services
        self.needed = _providers(config, services)
        self.corrections = corrections
        self.lead_time_s = float(config.maintenance_lead_time)
        # The one classifier, for minutes that have results but no decision.
        self.classifier = MinuteClassifier(config, eligibility.exclusion)
        self.availability = {
            s: [o.name for o in config.service(s).objectives if o.kind == "availability"]
            for s in services
        }
        self.acc: dict[tuple[str, str], _ObjectiveAcc] = {}
        self.maintenance_minutes: dict[str, set[int]] = {s: set() for s in services}
        self.has_data = False
        for name in services:
            for objective in config.service(name).objectives:
                self.acc[(name, objective.name)] = _ObjectiveAcc()

    async def day(self, date: dt.date, first: int, after: int) -> None:
        """Add the minutes [first, after) of local day ``date``."""
        overlays = {s: self._overlays(s, first, after) for s in self.services}
        summaries = await self._summaries(first, after, overlays)
        # Minutes read one by one: per service, those of hours without a usable summary.
        pending = {s: self._pending(s, first, after, summaries) for s in self.services}
        rollups, decisions = await self._read_minutes(pending, first, after)
        if rollups or decisions or summaries:
            self.has_data = True
        minutes = self._classify(pending, rollups, decisions, overlays)
        sums: dict[tuple[str, str], Rollup] = {}
        down: dict[tuple[str, int], dict[str, Rollup]] = {}
        for (service, probe, minute), rollup in rollups:
            info = minutes.get((service, minute))
            if info is None:
                continue  # a provider's, or a minute a summary covers
            if info.counted:
                day_sum = sums.get((service, probe))
                if day_sum is None:
                    sums[(service, probe)] = rollup.copy()  # `down` may hold the original
                else:
                    day_sum.merge(rollup)
            if "down" in info.states.values():  # kept for the incidents' causes
                down.setdefault((service, minute), {})[probe] = rollup
        counts: dict[tuple[str, str], Counter[str]] = {}
        for (service, hour), summary in summaries.items():
            for probe, body in summary.rollups.items():
                rollup = Rollup.from_dict(body)
                day_sum = sums.get((service, probe))
                if day_sum is None:
                    sums[(service, probe)] = rollup
                else:
                    day_sum.merge(rollup)
            for name in self.availability[service]:
                digits = summary.states.get(name) or str(int(MinuteCode.UNMONITORED)) * 60
                tally = counts.setdefault((service, name), Counter())
                for digit, n in Counter(digits).items():
                    tally[_LABEL_OF_DIGIT[digit]] += n
            if _MAINTENANCE_DIGIT in summary.exclusions:
                base = hour * 60
                self.maintenance_minutes[service].update(
                    base + i for i, d in enumerate(summary.exclusions) if d == _MAINTENANCE_DIGIT
                )
        for name in self.services:
            settings = self.config.service(name)
            for objective in settings.objectives:
                acc = self.acc[(name, objective.name)]
                probes = settings.probes_of(objective)
                if isinstance(objective, LatencyObjective):
                    acc.days.append(
                        self._latency_day(date, after - first, objective, name, probes, sums, acc)
                    )
                else:
                    tally = counts.get((name, objective.name), Counter())
                    acc.days.append(
                        self._availability_day(
                            date,
                            after - first,
                            pending[name],
                            objective,
                            name,
                            probes,
                            minutes,
                            down,
                            tally,
                            acc,
                        )
                    )
            self.maintenance_minutes[name].update(
                m for m in pending[name] if minutes[(name, m)].exclusion == "maintenance"
            )

    @staticmethod
    def _pending(
        service: str, first: int, after: int, summaries: dict[tuple[str, int], HourSummary]
    ) -> list[int]:
        """The minutes of [first, after) no usable hour summary of ``service`` covers."""
        minutes: list[int] = []
        for hour in range(first // 60, -(-after // 60)):
            if (service, hour) not in summaries:
                minutes.extend(range(max(first, hour * 60), min(after, hour * 60 + 60)))
        return minutes

    async def _read_minutes(
        self, pending: dict[str, list[int]], first: int, after: int
    ) -> tuple[list[tuple[tuple[str, str, int], Rollup]], list[ServiceMinute]]:
        """Rollups and decisions of the pending minutes (and what a minute never decided
        needs of its providers): one query over the day when most minutes are pending,
        else a query per service and run of minutes."""
        rollups: list[tuple[tuple[str, str, int], Rollup]] = []
        decisions: list[ServiceMinute] = []
        total = sum(len(m) for m in pending.values())
        if not total:
            return rollups, decisions
        if total * 2 > len(self.services) * (after - first):
            only = self.services[0] if len(self.needed) == 1 else None
            for lo, hi in _ranges(sorted({m for ms in pending.values() for m in ms})):
                rollups += await self.store.rollups(lo, hi, only)
                decisions += await self.store.minute_states(lo, hi, only)
            return rollups, decisions
        for service, minutes in pending.items():
            for lo, hi in _ranges(minutes):
                rollups += await self.store.rollups(lo, hi, service)
                decisions += await self.store.minute_states(lo, hi, service)
        decided = {(d.service, d.minute) for d in decisions}
        undecided = sorted(
            {
                m
                for (s, _, m), _ in rollups
                if (s, m) not in decided and self.config.service(s).depends_on
            }
        )
        if undecided:
            # Deciding such a minute needs its providers' results of that minute too.
            seen = {key for key, _ in rollups}
            for provider in sorted(self.needed):
                for lo, hi in _ranges(undecided):
                    for key, rollup in await self.store.rollups(lo, hi, provider):
                        if key not in seen:
                            rollups.append((key, rollup))
        return rollups, decisions

    def _overlays(self, service: str, first: int, after: int) -> dict[int, str]:
        """Minutes whose stored decision the report may override: maintenance registered
        later (-> ``maintenance``) and corrections (-> ``corrected``), corrections last."""
        overlay = dict.fromkeys(
            _maintenance_minutes(self.eligibility, service, self.lead_time_s, first, after),
            "maintenance",
        )
        for minute in _unmonitored_minutes(self.corrections, service, first, after):
            overlay.setdefault(minute, "corrected")
        return overlay

    async def _summaries(
        self, first: int, after: int, overlays: dict[str, dict[int, str]]
    ) -> dict[tuple[str, int], HourSummary]:
        """The hour summaries usable as they are, by (service, hour)."""
        lo, hi = -(-first // 60), after // 60  # hours wholly inside [first, after)
        if hi <= lo:
            return {}
        usable: dict[tuple[str, int], HourSummary] = {}
        wanted = set(self.services)
        for summary in await self.store.hours(lo, hi):
            if summary.service not in wanted or _UNKNOWN_DIGIT in summary.exclusions:
                continue
            states = [summary.states.get(o, "") for o in self.availability[summary.service]]
            if any(_DOWN_DIGIT in s or _UNKNOWN_DIGIT in s for s in states):
                continue  # read by minute: incidents need each down minute's failures
            base = summary.hour * 60
            overlay = overlays[summary.service]
            if overlay and any(
                base + i in overlay and d == _ELIGIBLE_DIGIT
                for i, d in enumerate(summary.exclusions)
            ):
                continue
            usable[(summary.service, summary.hour)] = summary
        return usable

    def _classify(
        self,
        pending: dict[str, list[int]],
        rollups: list[tuple[tuple[str, str, int], Rollup]],
        decisions: list[ServiceMinute],
        overlays: dict[str, dict[int, str]],
    ) -> dict[tuple[str, int], _Minute]:
        """What each pending minute of each reported service counts as."""
        minutes: dict[tuple[str, int], _Minute] = {}
        wanted = {(s, m) for s, ms in pending.items() for m in ms}
        for record in decisions:
            key = (record.service, record.minute)
            if key in wanted:  # not a provider's, nor a minute a summary covers
                minutes[key] = _Minute(record.exclusion or "", record.states)
        undecided = [(s, m) for s, ms in pending.items() for m in ms if (s, m) not in minutes]
        if undecided:
            with_results: dict[int, dict[tuple[str, str], Rollup]] = {}
            for (service, probe, minute), rollup in rollups:
                if service in self.needed:
                    with_results.setdefault(minute, {})[(service, probe)] = rollup
            for service, minute in undecided:
                minutes[(service, minute)] = self._decide(service, minute, with_results.get(minute))
        for name, overlay in overlays.items():
            objectives = self.availability[name]
            for minute, why in overlay.items():
                info = minutes.get((name, minute))
                if info is not None and info.counted:
                    # A maintenance window registered after the minute was decided (late,
                    # by agreement) excludes it now as it would have then; a correction
                    # declares the monitor was faulty: the minute is unmonitored.
                    state = "maintenance" if why == "maintenance" else "unmonitored"
                    minutes[(name, minute)] = _Minute(why, dict.fromkeys(objectives, state))
        return minutes

    def _decide(
        self, service: str, minute: int, rollups: dict[tuple[str, str], Rollup] | None
    ) -> _Minute:
        """A minute the daemon never decided (it was down, or killed before persisting)."""
        if rollups and any(key[0] == service for key in rollups):
            decision = self.classifier.decide(minute, rollups, only=service)
        else:
            decision = self.classifier.without_results(service, minute)
        exclusion = decision.exclusions[service]
        states = {k.objective: c.label for k, c in decision.codes.items() if k.service == service}
        return _Minute(exclusion.value if exclusion is not None else "", states)

    def _latency_day(
        self,
        date: dt.date,
        length: int,
        objective: LatencyObjective,
        service: str,
        probes: list[str],
        sums: dict[tuple[str, str], Rollup],
        acc: _ObjectiveAcc,
    ) -> DayFigures:
        day = Rollup()
        for probe in probes:
            probe_sum = sums.get((service, probe))
            if probe_sum is not None:
                day.merge(probe_sum)
        acc.total.merge(day)
        figures = latency_window(date.isoformat(), day, objective.threshold, objective.target_ratio)
        return DayFigures(
            date=date.isoformat(),
            minutes=length,
            valid=figures.valid,
            good=figures.good,
            bad=figures.bad,
            compliance=figures.compliance,
            met=figures.met,
            quantiles_s=figures.quantiles,
        )

    def _availability_day(
        self,
        date: dt.date,
        length: int,
        pending: list[int],
        objective: AvailabilityObjective,
        service: str,
        probes: list[str],
        minutes: dict[tuple[str, int], _Minute],
        down: dict[tuple[str, int], dict[str, Rollup]],
        counts: Counter[str],
        acc: _ObjectiveAcc,
    ) -> DayFigures:
        for minute in pending:
            state = minutes[(service, minute)].states.get(objective.name, "unmonitored")
            counts[state] += 1
            if state == "down":
                acc.down_minutes.append(minute)
                failures: Counter[str] = Counter()
                for probe, rollup in down.get((service, minute), {}).items():
                    if probe in probes:
                        failures.update(rollup.failures)
                acc.failures[minute] = dict(failures)
        acc.states.update(counts)
        return _availability_figures_day(date.isoformat(), length, counts, objective)


def _ranges(minutes: list[int]) -> list[tuple[int, int]]:
    """Sorted minutes as [lo, hi) runs of consecutive minutes."""
    runs: list[tuple[int, int]] = []
    for minute in minutes:
        if runs and runs[-1][1] == minute:
            runs[-1] = (runs[-1][0], minute + 1)
        else:
            runs.append((minute, minute + 1))
    return runs


def _availability_figures_day(
    date: str, length: int, counts: Counter[str], objective: AvailabilityObjective
) -> DayFigures:
    figures = availability_window(date, counts_by_label(counts), objective.target_ratio)
    return DayFigures(
        date=date,
        minutes=length,
        valid=figures.valid,
        good=figures.good,
        bad=figures.bad,
        compliance=figures.compliance,
        met=figures.met,
        minute_states=figures.minutes,
        coverage=figures.coverage,
    )


def _budget(figures: WindowFigures) -> Budget:
    consumed = figures.bad
    allowed = figures.budget_allowed
    return Budget(
        allowed=allowed,
        consumed=consumed,
        consumed_ratio=consumed / allowed if allowed else None,
        remaining=allowed - consumed,
    )


def _objective_report(
    service: str,
    objective: LatencyObjective | AvailabilityObjective,
    probes: list[str],
    acc: _ObjectiveAcc,
) -> ObjectiveReport:
    target = objective.target_ratio
    extra: dict[str, Any]
    if isinstance(objective, LatencyObjective):
        figures = latency_window("month", acc.total, objective.threshold, target)
        extra = {"quantiles_s": figures.quantiles}
        threshold: float | None = objective.threshold
    else:
        figures = availability_window("month", counts_by_label(acc.states), target)
        extra = {"minute_states": figures.minutes, "coverage": figures.coverage}
        threshold = None
    achieved = figures.compliance
    return ObjectiveReport(
        service=service,
        objective=objective.name,
        kind=objective.kind,
        target=target,
        threshold_s=threshold,
        probes=probes,
        valid=figures.valid,
        good=figures.good,
        bad=figures.bad,
        achieved=achieved,
        margin=None if achieved is None else achieved - target,
        verdict=verdict_of(achieved, target),
        budget=_budget(figures),
        days=acc.days,
        **extra,
    )


def _cause(failures: dict[str, int]) -> str:
    total = sum(failures.values())
    if not total:
        return "unknown (no failed result recorded)"
    outcome, count = max(failures.items(), key=lambda kv: (kv[1], kv[0]))
    words = CAUSES.get(outcome, outcome)
    return f"{outcome}: {words} ({count} of {total} failed results)"


def _incidents(objective: str, acc: _ObjectiveAcc, zone: ZoneInfo) -> list[Incident]:
    """Runs of consecutive down minutes."""
    incidents: list[Incident] = []
    runs: list[list[int]] = []
    for minute in acc.down_minutes:
        if runs and minute == runs[-1][-1] + 1:
            runs[-1].append(minute)
        else:
            runs.append([minute])
    for run in runs:
        failures: Counter[str] = Counter()
        for minute in run:
            failures.update(acc.failures.get(minute, {}))
        incidents.append(
            Incident(
                objective=objective,
                start=iso_local(run[0] * 60, zone),
                end=iso_local((run[-1] + 1) * 60, zone),
                duration_minutes=len(run),
                failures=dict(sorted(failures.items())),
                cause=_cause(dict(failures)),
            )
        )
    return incidents


def _maintenance_entries(
    service: str,
    eligibility: Eligibility,
    records: Sequence[MaintenanceRecord],
    excluded: set[int],
    lead_time_s: float,
    first: int,
    after: int,
    zone: ZoneInfo,
) -> list[MaintenanceEntry]:
    by_id = {r.window.id: r for r in records}
    windows = list(eligibility.windows(service))
    windows += [r.window for r in records if r.removed and r.window.service == service]
    entries = []
    for window in sorted(windows, key=lambda w: (w.start, w.id)):
        lo, hi = math.ceil(window.start / 60), math.ceil(window.end / 60)
        if hi <= first or lo >= after:
            continue
        record = by_id.get(window.id) if window.source == "store" else None
        known = math.isfinite(window.announced_at)
        effective = math.ceil(window.effective_start(lead_time_s) / 60)
        removed = record is not None and record.removed
        minutes = (
            0
            if removed
            else sum(1 for m in range(max(lo, effective, first), min(hi, after)) if m in excluded)
        )
        entries.append(
            MaintenanceEntry(
                id=window.id,
                source="config" if window.source == "config" else "store",
                start=iso_local(window.start, zone),
                end=iso_local(window.end, zone),
                reason=window.reason,
                announced_at=iso_local(window.announced_at, zone) if known else None,
                announced_late=known and window.announced_at + lead_time_s > window.start,
                minutes_excluded=minutes,
                created_by=record.created_by if record else None,
                created_at=iso_local(record.created_at, zone) if record else None,
                removed_at=(
                    iso_local(record.removed_at, zone)
                    if record is not None and record.removed_at is not None
                    else None
                ),
                removed_by=record.removed_by if record else None,
            )
        )
    return entries


def _alert_entries(
    service: str, alerts: Sequence[dict[str, Any]], start: float, end: float, zone: ZoneInfo
) -> list[AlertEntry]:
    def when(value: Any) -> str | None:
        return None if value is None else iso_local(float(value), zone)

    def minutes(a: Any, b: Any) -> float | None:
        return None if a is None or b is None else round((float(b) - float(a)) / 60, 1)

    entries = []
    for alert in sorted(alerts, key=lambda a: (float(a["pending_since"]), str(a["alert_id"]))):
        if alert.get("service") != service:
            continue
        began, ended = float(alert["pending_since"]), alert.get("ended_at")
        if began >= end or (ended is not None and float(ended) < start):
            continue
        fired = alert.get("started_at")
        entries.append(
            AlertEntry(
                alert_id=str(alert["alert_id"]),
                rule=str(alert.get("rule", "")),
                severity=str(alert.get("severity", "")),
                objective=alert.get("objective"),
                status=str(alert.get("status", "")),
                summary=str(alert.get("summary", "")),
                pending_since=iso_local(began, zone),
                started_at=when(fired),
                acknowledged_at=when(alert.get("acknowledged_at")),
                acknowledged_by=alert.get("acknowledged_by"),
                resolved_at=when(ended),
                minutes_to_acknowledge=minutes(fired, alert.get("acknowledged_at")),
                minutes_to_resolve=minutes(fired, ended),
            )
        )
    return entries


def method(config: Config) -> list[MethodItem]:
    """The method section: how each figure is computed, in plain words."""
    zone = config.timezone
    lead = float(config.maintenance_lead_time)
    items = [
        (
            "Period",
            f"The calendar month in the {zone} time zone, from local midnight on the first "
            "day to local midnight on the first day of the next month; days follow local "
            "midnight, so the day clocks go forward has 23 hours and the day they go back "
            "has 25. A month that is not over is marked provisional: its figures run to "
            "the last minute the monitor has decided.",
        ),
        (
            "Latency objectives",
            "Counted, never estimated: every probe attempt is a valid event; it is good "
            "when the exchange succeeded within the threshold. Failures and time-outs are "
            "bad. Achieved = good / valid. A result counts in the minute its exchange "
            "started. Latency is measured with a monotonic clock around the exchange only.",
        ),
        (
            "Availability objectives",
            "Each minute is decided once, when the monitor seals it: outside the service's "
            "hours or on a public holiday -> outside hours; inside planned maintenance "
            "announced in advance -> maintenance; no result at all -> unmonitored; a "
            "provider service down or in maintenance -> provider unavailable; more than the "
            "objective's down ratio of the results failed -> down; else up. Achieved = up / "
            "(up + down). Excluded and unmonitored minutes count as neither.",
        ),
        (
            "Which minutes count",
            "Minutes outside service hours and in announced maintenance are excluded from "
            "the latency objectives too: their results are stored, not counted. Maintenance "
            f"excludes minutes from its announcement (plus a lead time of {lead:g} s) to its "
            "end, so a window announced late excludes nothing before its announcement.",
        ),
        (
            "Monitoring coverage",
            "A minute in which the monitor itself produced no result (it was stopped or "
            "faulty) is unmonitored: it is never counted as available or unavailable, and "
            "lowers the coverage = monitored / (monitored + unmonitored) minutes. Minutes "
            "the monitor never decided are decided for the report the way the daemon "
            "decides them on a restart.",
        ),
        (
            "Error budget",
            "Allowed = (1 - target) x valid events (or monitored minutes); consumed = bad "
            "events (or down minutes); consumed ratio = consumed / allowed (over 100 %: the "
            "budget is overspent). PASS when achieved >= target, computed from the counts, "
            "never from rounded figures.",
        ),
        (
            "Percentiles",
            "p50, p99 and p99.5 of successful exchanges are nearest-rank quantiles "
            "estimated from log-spaced buckets (relative error <= 1 %). They are shown "
            "beside the contract's thresholds; the verdict never depends on them.",
        ),
        (
            "Incidents",
            "An incident is a run of consecutive down minutes of an availability objective; "
            "its cause is the most frequent failure class the probes reported in it.",
        ),
        (
            "Archive and corrections",
            "A closed month is archived when first reported: its figures (the JSON document) "
            "and rendered documents, each with a SHA-256 hash. A correction (a maintenance "
            "window registered late by agreement, a period in which the monitor was faulty) "
            "is recorded with who, when and why, and produces a new numbered version; "
            "earlier versions are kept unchanged.",
        ),
    ]
    return [MethodItem(topic=topic, text=text) for topic, text in items]


async def build_report(
    config: Config,
    store: Store,
    month: Month,
    *,
    now: float,
    service: str | None = None,
    corrections: Sequence[Correction] = (),
    version: int | None = None,
    progress: Progress | None = None,
) -> Report:
    """Compute the report of ``month`` (to date when it is not over at ``now``).

    Args:
        config: the validated config (services, objectives, time zone).
        store: where the rollups, minute decisions, maintenance and alerts are.
        month: the calendar month.
        now: UTC epoch seconds; decides whether the month is over.
        service: only this service (its providers are read for decisions, not reported).
        corrections: recorded corrections of the month, applied in order.
        version: the archive version this report will be, if any.
        progress: called after each day.

    Raises:
        NoDataError: the period holds neither rollups nor minute decisions.
    """
    zone = config.zone
    names = [s.name for s in config.services]
    if service is not None:
        if service not in names:
            raise ReportError(f"unknown service {service!r} (the config has: {', '.join(names)})")
        names = [service]
    first, after = month.bounds(zone)
    sealed_after = int(now // 60) - grace_minutes(config)  # minutes before it are sealed
    provisional = sealed_after < after
    end = min(after, sealed_after)
    if end <= first:
        raise NoDataError(f"no data for {month}: the month has not started yet")
    eligibility = Eligibility(config)
    eligibility.replace_stored_maintenance(await store.list_maintenance())
    builder = _Builder(config, store, eligibility, names, corrections)
    days = [d for d in month.days() if day_bounds(d, zone)[0] < end]
    for index, date in enumerate(days):
        lo, hi = day_bounds(date, zone)
        await builder.day(date, lo, min(hi, end))
        if progress is not None:
            progress("days", index + 1, len(days))
    if not builder.has_data:
        scope = f" of service {service}" if service else ""
        raise NoDataError(
            f"no data for {month}{scope}: the store holds no rollups and no minute decisions "
            "for it (rollups are kept 400 days; was the monitor running?)"
        )
    records = await store.maintenance_records(include_removed=True)
    alerts = await store.load_alerts(limit=1_000_000)
    services = []
    for name in names:
        service_config = config.service(name)
        objectives = [
            _objective_report(name, o, service_config.probes_of(o), builder.acc[(name, o.name)])
            for o in service_config.objectives
        ]
        incidents = [
            incident
            for o in service_config.objectives
            if o.kind == "availability"
            for incident in _incidents(o.name, builder.acc[(name, o.name)], zone)
        ]
        incidents.sort(key=lambda i: (i.start, i.objective))
        services.append(
            ServiceReport(
                name=name,
                description=service_config.description,
                verdict=overall_verdict(o.verdict for o in objectives),
                objectives=objectives,
                incidents=incidents,
                maintenance=_maintenance_entries(
                    name,
                    eligibility,
                    records,
                    builder.maintenance_minutes[name],
                    float(config.maintenance_lead_time),
                    first,
                    end,
                    zone,
                ),
                alerts=_alert_entries(name, alerts, first * 60.0, end * 60.0, zone),
            )
        )
    verdicts = [o.verdict for s in services for o in s.objectives]
    return Report(
        generated_at=iso_local(now, zone),
        version=version,
        period=Period(
            month=str(month),
            timezone=config.timezone,
            start=iso_local(first * 60, zone),
            end=iso_local(end * 60, zone),
            month_end=iso_local(after * 60, zone),
            provisional=provisional,
            days=len(days),
            minutes=end - first,
        ),
        verdict=overall_verdict(verdicts),
        counts=verdict_counts(verdicts),
        services=services,
        corrections=list(corrections),
        method=method(config),
    )


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


def year_report(
    config: Config,
    year: int,
    months: Sequence[tuple[Month, Report | None, MonthStatus]],
    now: float,
) -> YearReport:
    """Assemble a yearly summary from the months' reports (None: no data or not started;
    the string is that month's status)."""
    rows: dict[tuple[str, str], YearRow] = {}
    for service in config.services:
        for objective in service.objectives:
            rows[(service.name, objective.name)] = YearRow(
                service=service.name,
                objective=objective.name,
                kind=objective.kind,
                target=objective.target_ratio,
                months={},
            )
    entries = []
    for month, report, status in months:
        entries.append(
            YearMonth(
                month=str(month),
                status=status,
                version=report.version if report is not None else None,
                verdict=report.verdict if report is not None else None,
            )
        )
        for empty in rows.values():
            empty.months[str(month)] = None
        for figures in report.objectives() if report is not None else []:
            row = rows.get((figures.service, figures.objective))
            if row is not None:
                row.months[str(month)] = YearCell(
                    achieved=figures.achieved, verdict=figures.verdict, valid=figures.valid
                )
    return YearReport(
        generated_at=iso_local(now, config.zone),
        year=year,
        timezone=config.timezone,
        months=entries,
        rows=list(rows.values()),
    )


__all__ = [
    "MINUTE_STATES",
    "SCHEMA_VERSION",
    "BadMonthError",
    "Correction",
    "Month",
    "NoDataError",
    "Report",
    "ReportError",
    "UnmonitoredSpan",
    "YearReport",
    "build_report",
    "parse_year",
    "year_report",
]
