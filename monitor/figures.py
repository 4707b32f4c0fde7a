"""The SLA figures of every objective over every window, as ``/api/sla`` and the
``sla_objective_*`` gauges show them. Pure reading of the ledger, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.config import AvailabilityObjective, Config, LatencyObjective
from monitor.ledger import WINDOWS, Ledger, MinuteCode, ObjectiveKey
from monitor.sla import availability, compliance, error_budget, estimate_quantile

#: Quantiles shown beside the contract's thresholds.
QUANTILES = (0.5, 0.99, 0.995)


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """One objective over one window."""

    window: str
    compliance: float | None
    valid: int
    good: int
    budget_allowed: float
    budget_remaining_ratio: float | None
    burn_rate: float | None
    met: bool | None
    quantiles: dict[str, float | None] = field(default_factory=dict)
    minutes: dict[str, int] = field(default_factory=dict)
    #: Availability only: monitored minutes / eligible minutes (unmonitored are neither).
    coverage: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        body: dict[str, Any] = {
            "compliance": self.compliance,
            "valid": self.valid,
            "good": self.good,
            "bad": self.valid - self.good,
            "met": self.met,
            "error_budget": {
                "allowed": self.budget_allowed,
                "consumed": self.valid - self.good,
                "remaining": self.budget_allowed - (self.valid - self.good),
                "remaining_ratio": self.budget_remaining_ratio,
            },
            "burn_rate": self.burn_rate,
        }
        if self.quantiles:
            body["latency_quantiles_s"] = self.quantiles
        if self.minutes:
            body["minutes"] = self.minutes
            body["coverage"] = self.coverage
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "service": self.service,
            "objective": self.objective,
            "kind": self.kind,
            "target": self.target_ratio,
            "threshold_s": self.threshold_s,
            "probes": list(self.probes),
            "windows": {name: w.to_dict() for name, w in self.windows.items()},
        }


def _quantile_key(q: float) -> str:
    return f"p{q * 100:g}"


def latency_figures(
    ledger: Ledger, service: str, objective: LatencyObjective, probes: tuple[str, ...], now: float
) -> ObjectiveFigures:
    """Threshold compliance (exact counts) and percentile estimates per window."""
    windows = {}
    for window in WINDOWS:
        rollup = ledger.window_rollup(service, probes, window, now)
        ratio = compliance(rollup, objective.threshold)
        good = rollup.good_within(objective.threshold)
        budget = error_budget(rollup.attempts, good, objective.target_ratio)
        windows[window] = WindowFigures(
            window=window,
            compliance=ratio,
            valid=rollup.attempts,
            good=good,
            budget_allowed=budget.allowed,
            budget_remaining_ratio=budget.remaining_ratio,
            burn_rate=budget.burn_rate,
            met=None if ratio is None else ratio >= objective.target_ratio,
            quantiles={_quantile_key(q): estimate_quantile(rollup.buckets, q) for q in QUANTILES},
        )
    return ObjectiveFigures(
        service,
        objective.name,
        "latency",
        objective.target_ratio,
        objective.threshold,
        probes,
        windows,
    )


def availability_figures(
    ledger: Ledger,
    service: str,
    objective: AvailabilityObjective,
    probes: tuple[str, ...],
    now: float,
) -> ObjectiveFigures:
    """Minute-based availability per window: up / (up + down)."""
    windows = {}
    key = ObjectiveKey(service, objective.name)
    for window in WINDOWS:
        counts = ledger.minute_counts(key, window, now)
        up, down = counts.get(MinuteCode.UP, 0), counts.get(MinuteCode.DOWN, 0)
        unmonitored = counts.get(MinuteCode.UNMONITORED, 0)
        ratio = availability(up, down)
        budget = error_budget(up + down, up, objective.target_ratio)
        minutes = {code.label: counts.get(code, 0) for code in MinuteCode if code.value}
        monitored = up + down
        windows[window] = WindowFigures(
            window=window,
            compliance=ratio,
            valid=monitored,
            good=up,
            budget_allowed=budget.allowed,
            budget_remaining_ratio=budget.remaining_ratio,
            burn_rate=budget.burn_rate,
            met=None if ratio is None else ratio >= objective.target_ratio,
            minutes=minutes,
            coverage=monitored / (monitored + unmonitored) if monitored + unmonitored else None,
        )
    return ObjectiveFigures(
        service, objective.name, "availability", objective.target_ratio, None, probes, windows
    )


def all_figures(config: Config, ledger: Ledger, now: float) -> list[ObjectiveFigures]:
    """Figures of every objective of every service."""
    figures = []
    for service in config.services:
        for objective in service.objectives:
            probes = tuple(service.probes_of(objective))
            if isinstance(objective, LatencyObjective):
                figures.append(latency_figures(ledger, service.name, objective, probes, now))
            else:
                figures.append(availability_figures(ledger, service.name, objective, probes, now))
    return figures
