"""Figures: counts turned into what every consumer shows — compliance, met, error budget,
burn rate, coverage, quantiles — for one objective over one window, or one day.

The gauges and ``/api/sla``, the alerts, the status page and the monthly report all take
their figures from here, so they cannot disagree for the same counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from monitor.sla.batch import BatchBook, BatchDay, at_risk, batch_days
from monitor.sla.counts import Rollup, availability, compliance, error_budget, estimate_quantile
from monitor.sla.minutes import MinuteCode, ObjectiveKey
from monitor.sla.objectives import coverage_floor, runs_per_minute
from monitor.sla.windows import WINDOWS

if TYPE_CHECKING:
    from monitor.config import AvailabilityObjective, Config, LatencyObjective

#: Quantiles shown beside the contract's thresholds, with their one key spelling.
QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p99", 0.99), ("p99_5", 0.995))

#: The coverage below which no verdict is given, unless the config sets another.
DEFAULT_COVERAGE_FLOOR = 0.9


class Verdict(StrEnum):
    """What an objective's figure over a window says (DESIGN decision 11: below the
    coverage floor it is "insufficient data", never "met")."""

    MET = "met"
    MISSED = "missed"
    INSUFFICIENT = "insufficient_data"  # measured, but too little of the window
    NO_DATA = "no_data"  # nothing counted at all


def verdict_of(
    compliance: float | None, target_ratio: float, coverage: float | None, floor: float
) -> Verdict:
    """The verdict of a figure: none without data; "insufficient data" when the monitor
    saw less than ``floor`` of the window (or it is not known how much it saw)."""
    if compliance is None:
        return Verdict.NO_DATA
    if coverage is None or coverage < floor:
        return Verdict.INSUFFICIENT
    return Verdict.MET if compliance >= target_ratio else Verdict.MISSED


@dataclass(frozen=True, slots=True)
class CoverageBasis:
    """What a latency objective's coverage is computed from, over the sealed minutes of a
    window: the results its probes produced in the eligible minutes, and how many minutes
    were eligible (counted ones, and those a correction declared unmonitored)."""

    attempts: int
    eligible_minutes: int


def latency_coverage(basis: CoverageBasis, runs_per_minute: float) -> float | None:
    """The share of expected probe runs that produced a result: ``runs_per_minute`` is
    the sum over the objective's probes of 60 / interval. None with no eligible minute."""
    expected = basis.eligible_minutes * runs_per_minute
    if expected <= 0:
        return None
    return min(1.0, basis.attempts / expected)


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """One objective over one window (or one report day)."""

    window: str
    compliance: float | None
    valid: int
    good: int
    budget_allowed: float
    budget_remaining_ratio: float | None
    burn_rate: float | None
    #: True/False only when the verdict is met/missed (None below the coverage floor).
    met: bool | None
    quantiles: dict[str, float | None] = field(default_factory=dict)
    #: Availability only: minutes by state label.
    minutes: dict[str, int] = field(default_factory=dict)
    #: Availability: monitored / (monitored + unmonitored) minutes; latency: results /
    #: expected probe runs in the eligible sealed minutes.
    coverage: float | None = None
    coverage_floor: float = DEFAULT_COVERAGE_FLOOR
    verdict: Verdict = Verdict.NO_DATA
    #: Batch only: each submission day of the window (pending ones are not in the counts).
    days: tuple[BatchDay, ...] = ()

    @property
    def bad(self) -> int:
        """Events (or minutes) that missed the objective."""
        return self.valid - self.good

    @property
    def budget_remaining(self) -> float:
        """Bad events (or minutes) still allowed; negative once overspent. Rounded: the
        allowed budget is a decimal (0.48), the difference must not show float noise."""
        return round(self.budget_allowed - self.bad, 9)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        body: dict[str, Any] = {
            "compliance": self.compliance,
            "valid": self.valid,
            "good": self.good,
            "bad": self.bad,
            "met": self.met,
            "verdict": self.verdict.value,
            "coverage": self.coverage,
            "coverage_floor": self.coverage_floor,
            "error_budget": {
                "allowed": self.budget_allowed,
                "consumed": self.bad,
                "remaining": self.budget_remaining,
                "remaining_ratio": self.budget_remaining_ratio,
            },
            "burn_rate": self.burn_rate,
        }
        if self.quantiles:
            body["latency_quantiles_s"] = self.quantiles
        if self.minutes:
            body["minutes"] = self.minutes
        if self.days:
            pending = [d for d in self.days if not d.final]
            body["pending"] = {
                "days": len(pending),
                "submitted": sum(d.submitted for d in pending),
                "unprocessed": sum(d.unprocessed for d in pending),
            }
            body["days"] = [
                {
                    "date": d.date.isoformat(),
                    "state": "final" if d.final else "pending",
                    "submitted": d.submitted,
                    "in_time": d.in_time,
                    "unprocessed": d.unprocessed,
                    "compliance": d.compliance,
                }
                for d in self.days
            ]
        return body


@dataclass(frozen=True, slots=True)
class ObjectiveFigures:
    """One objective over every window."""

    service: str
    objective: str
    kind: str
    target_ratio: float
    threshold_s: float | None
    probes: tuple[str, ...]
    windows: dict[str, WindowFigures]
    #: Where its results come from: probes, traffic (events of real exchanges), or both.
    source: str = "probes"
    #: Batch only: records (or batches) unprocessed within the margin of their deadline.
    at_risk: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "service": self.service,
            "objective": self.objective,
            "kind": self.kind,
            "target": self.target_ratio,
            "threshold_s": self.threshold_s,
            "source": self.source,
            "probes": list(self.probes),
            "windows": {name: w.to_dict() for name, w in self.windows.items()},
            **({"at_risk": self.at_risk} if self.kind == "batch" else {}),
        }


def quantiles(rollup: Rollup) -> dict[str, float | None]:
    """The shown quantiles of a rollup's successful latencies (relative error <= 1 %)."""
    return {key: estimate_quantile(rollup.buckets, q) for key, q in QUANTILES}


def latency_window(
    window: str,
    rollup: Rollup,
    threshold_s: float,
    target_ratio: float,
    coverage: float | None = None,
    floor: float = DEFAULT_COVERAGE_FLOOR,
) -> WindowFigures:
    """A latency objective over ``rollup``: exact threshold compliance of every attempt,
    with the verdict its ``coverage`` allows."""
    good = rollup.good_within(threshold_s)
    ratio = compliance(rollup, threshold_s)
    budget = error_budget(rollup.attempts, good, target_ratio)
    verdict = verdict_of(ratio, target_ratio, coverage, floor)
    return WindowFigures(
        window=window,
        compliance=ratio,
        valid=rollup.attempts,
        good=good,
        budget_allowed=budget.allowed,
        budget_remaining_ratio=budget.remaining_ratio,
        burn_rate=budget.burn_rate,
        met=_met(verdict),
        quantiles=quantiles(rollup),
        coverage=coverage,
        coverage_floor=floor,
        verdict=verdict,
    )


def _met(verdict: Verdict) -> bool | None:
    return {Verdict.MET: True, Verdict.MISSED: False}.get(verdict)


def coverage(monitored: int, unmonitored: int) -> float | None:
    """Monitored minutes over monitored and unmonitored ones (None with neither)."""
    total = monitored + unmonitored
    return monitored / total if total else None


def availability_window(
    window: str,
    counts: Mapping[MinuteCode, int],
    target_ratio: float,
    floor: float = DEFAULT_COVERAGE_FLOOR,
) -> WindowFigures:
    """An availability objective over minute counts: up / (up + down)."""
    up, down = counts.get(MinuteCode.UP, 0), counts.get(MinuteCode.DOWN, 0)
    ratio = availability(up, down)
    budget = error_budget(up + down, up, target_ratio)
    share = coverage(up + down, counts.get(MinuteCode.UNMONITORED, 0))
    verdict = verdict_of(ratio, target_ratio, share, floor)
    return WindowFigures(
        window=window,
        compliance=ratio,
        valid=up + down,
        good=up,
        budget_allowed=budget.allowed,
        budget_remaining_ratio=budget.remaining_ratio,
        burn_rate=budget.burn_rate,
        met=_met(verdict),
        minutes={code.label: counts.get(code, 0) for code in MinuteCode if code.value},
        coverage=share,
        coverage_floor=floor,
        verdict=verdict,
    )


def projected_compliance(
    month: WindowFigures,
    burn_rate: float | None,
    target_ratio: float,
    *,
    elapsed_minutes: int,
    remaining_minutes: int,
) -> float | None:
    """Month-end compliance if the rest of the month runs at ``burn_rate`` and at the
    month's event rate so far (None before any event or without a burn rate)."""
    if month.valid == 0 or burn_rate is None:
        return None
    rest = month.valid / elapsed_minutes * remaining_minutes
    bad = month.bad + burn_rate * (1 - target_ratio) * rest
    return 1 - bad / (month.valid + rest)


def counts_by_label(counts: Mapping[str, int]) -> dict[MinuteCode, int]:
    """Minute counts keyed by label (as stored and reported) keyed by code instead."""
    return {MinuteCode.from_label(label): n for label, n in counts.items()}


class WindowSource(Protocol):
    """What the figures of "now" are read from (the ledger)."""

    def window_rollup(
        self, service: str, probes: tuple[str, ...], window: str, now: float
    ) -> Rollup:
        """The eligible rollup of ``probes`` over ``window`` at ``now``."""
        ...

    def coverage_basis(
        self, service: str, probes: tuple[str, ...], window: str, now: float
    ) -> CoverageBasis:
        """Results of ``probes`` and eligible minutes over the sealed part of ``window``."""
        ...

    def minute_counts(self, key: ObjectiveKey, window: str, now: float) -> dict[MinuteCode, int]:
        """Minute counts of an availability objective over ``window`` at ``now``."""
        ...


def latency_figures(
    source: WindowSource,
    service: str,
    objective: LatencyObjective,
    probes: tuple[str, ...],
    now: float,
    *,
    runs_per_minute: float,
    floor: float = DEFAULT_COVERAGE_FLOOR,
) -> ObjectiveFigures:
    """Threshold compliance (exact counts), coverage and percentile estimates per window."""
    windows = {
        window: latency_window(
            window,
            source.window_rollup(service, probes, window, now),
            objective.threshold,
            objective.target_ratio,
            latency_coverage(source.coverage_basis(service, probes, window, now), runs_per_minute),
            floor,
        )
        for window in WINDOWS
    }
    return ObjectiveFigures(
        service,
        objective.name,
        "latency",
        objective.target_ratio,
        objective.threshold,
        probes,
        windows,
        objective.source,
    )


def availability_figures(
    source: WindowSource,
    service: str,
    objective: AvailabilityObjective,
    probes: tuple[str, ...],
    now: float,
    *,
    floor: float = DEFAULT_COVERAGE_FLOOR,
) -> ObjectiveFigures:
    """Minute-based availability per window: up / (up + down)."""
    key = ObjectiveKey(service, objective.name)
    windows = {
        window: availability_window(
            window, source.minute_counts(key, window, now), objective.target_ratio, floor
        )
        for window in WINDOWS
    }
    return ObjectiveFigures(
        service,
        objective.name,
        "availability",
        objective.target_ratio,
        None,
        probes,
        windows,
        objective.source,
    )


def all_figures(config: Config, source: WindowSource, now: float) -> list[ObjectiveFigures]:
    """Figures of every objective of every service."""
    figures = []
    for service in config.services:
        for objective in service.objectives:
            probes = tuple(service.series_of(objective))
            floor = coverage_floor(config, objective)
            if objective.kind == "latency":
                runs = runs_per_minute(config, service.name, probes)
                figures.append(
                    latency_figures(
                        source,
                        service.name,
                        objective,
                        probes,
                        now,
                        runs_per_minute=runs,
                        floor=floor,
                    )
                )
            else:
                figures.append(
                    availability_figures(source, service.name, objective, probes, now, floor=floor)
                )
    return figures


def batch_window(
    window: str, days: list[BatchDay], target_ratio: float, first: dt.date, end: dt.date
) -> WindowFigures:
    """A batch objective over the submission days in ``[first, end)``: compliance over the
    final days; the pending ones listed beside it."""
    inside = tuple(d for d in days if first <= d.date < end)
    final = [d for d in inside if d.final]
    valid = sum(d.submitted for d in final)
    good = sum(d.in_time for d in final)
    ratio = good / valid if valid else None
    budget = error_budget(valid, good, target_ratio)
    # Coverage is not a batch notion: what was handed in is what is counted.
    verdict = verdict_of(ratio, target_ratio, 1.0, 0.0)
    return WindowFigures(
        window=window,
        compliance=ratio,
        valid=valid,
        good=good,
        budget_allowed=budget.allowed,
        budget_remaining_ratio=budget.remaining_ratio,
        burn_rate=None,
        met=_met(verdict),
        coverage=None,
        coverage_floor=0.0,
        verdict=verdict,
        days=inside,
    )


def batch_figures(config: Config, book: BatchBook, now: float) -> list[ObjectiveFigures]:
    """Figures of every batch objective: the month to date and the previous month (the
    rolling windows are empty: a batch day is judged days after it)."""
    zone = ZoneInfo(config.timezone)
    today = dt.datetime.fromtimestamp(now, zone).date()
    month_start = today.replace(day=1)
    previous_start = (month_start - dt.timedelta(days=1)).replace(day=1)
    after = (month_start + dt.timedelta(days=32)).replace(day=1)
    figures = []
    for service in config.services:
        for objective in service.batch_objectives:
            days = batch_days(
                book.of(service.name), objective.deadline, objective.measure, zone, now
            )
            windows = {
                w: batch_window(w, [], objective.target_ratio, today, today) for w in WINDOWS
            }
            windows["month"] = batch_window(
                "month", days, objective.target_ratio, month_start, after
            )
            windows["previous_month"] = batch_window(
                "previous_month", days, objective.target_ratio, previous_start, month_start
            )
            figures.append(
                ObjectiveFigures(
                    service.name,
                    objective.name,
                    "batch",
                    objective.target_ratio,
                    objective.deadline,
                    (),
                    windows,
                    "batch",
                    at_risk(
                        book.of(service.name),
                        objective.deadline,
                        objective.margin,
                        objective.measure,
                        now,
                    ),
                )
            )
    return figures
