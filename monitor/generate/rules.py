"""Prometheus recording and alerting rules generated from the config (``sla-monitor rules``).

For teams that run Prometheus and Alertmanager beside the daemon: the same objectives and
the same multi-window multi-burn-rate alerts as the built-in path (``monitor.alerting.engine``),
computed by Prometheus from the daemon's post-exclusion counters, summed across daemon
instances. The counters hold exactly what the daemon's figures count (maintenance,
outside-hours and provider-unavailable time left out), so the recorded SLIs equal
``/api/sla``'s for the same window, maintenance or not.

One file, ``sla-monitor.rules.yml``, holds one rule group per service (evaluated every
``interval``): its recording rules first, then its alerts. Rules of a group run in order at
one timestamp, so an alert always reads the SLIs recorded in the same evaluation.

Recorded series, each labelled ``service`` and ``objective``:

- ``sla:objective_target:ratio`` -- the target (0.99 for 99 %).
- ``sla:sli_good:rate5m`` and ``sla:sli_valid:rate5m`` -- good and valid events (latency:
  results; availability: seconds) per second over 5 minutes, the base of the long windows.
- ``sla:sli_ratio:rate<w>`` -- good / valid over ``w``. Up to 6 h straight from the
  counters; 1 d, 3 d and 30 d from the recorded 5-minute rates (as Sloth does), so no rule
  reads 30 days of raw samples: a ratio of averages, weighted by volume as the daemon is.
- ``sla:error_ratio:rate<w>`` -- ``1 - sla:sli_ratio:rate<w>``.

for every ``w`` in ``SLI_WINDOWS``. Alerts: ``SlaErrorBudgetBurn`` (one per objective and
``alerting.burn_rate`` entry, its name in the ``rule`` label), ``SlaServiceDown``, with the
labels the built-in path sends (``monitor.alerting.labels``), and ``SlaDataMissing`` when
an objective's data is absent or no minute has been sealed for too long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monitor.alerting.labels import (
    BATCH_AT_RISK_ALERT,
    BATCH_AT_RISK_RULE,
    BURN_ALERT,
    COVERAGE_ALERT,
    COVERAGE_RULE,
    DATA_MISSING_ALERT,
    DOWN_ALERT,
    DOWN_RULE,
    LOCATION_FAULT_ALERT,
    LOCATION_FAULT_RULE,
    alert_labels,
)
from monitor.config import (
    AvailabilityObjective,
    BatchObjective,
    BurnRateAlert,
    Config,
    LatencyObjective,
    Objective,
    ServiceConfig,
)
from monitor.sla.batch import span_text
from monitor.sla.objectives import grace_minutes
from monitor.sla.windows import SLI_WINDOWS, prometheus_window

#: The file ``write_rules`` writes.
RULES_FILE = "sla-monitor.rules.yml"
#: How often Prometheus evaluates the groups unless told otherwise.
DEFAULT_INTERVAL = "30s"

TARGET_RECORD = "sla:objective_target:ratio"
GOOD_RECORD = "sla:sli_good:rate5m"
VALID_RECORD = "sla:sli_valid:rate5m"
#: The window of the recorded rates the long windows are averaged from.
BASE_WINDOW = "5m"
#: Windows computed from the recorded 5-minute rates rather than from the counters.
LONG_WINDOWS: tuple[str, ...] = ("1d", "3d", "30d")

EVENTS_METRIC = "sla_objective_events_total"
SECONDS_METRIC = "sla_availability_seconds_total"
#: Sealed minutes counted up although one location saw them down, per location.
FAULT_METRIC = "sla_location_fault_seconds_total"
SEALED_METRIC = "sla_objective_sealed_timestamp_seconds"
MAINTENANCE_METRIC = "sla_maintenance_active"
COVERAGE_METRIC = "sla_monitoring_coverage_ratio"
COVERAGE_FLOOR_METRIC = "sla_objective_coverage_floor_ratio"
BATCH_AT_RISK_METRIC = "sla_batch_at_risk"

#: Days a burn rate is measured against in the alert text, as in the built-in path.
_BUDGET_PERIOD_DAYS = 30
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")


def sli_record(window: str) -> str:
    """Name of the recorded SLI over ``window`` (one of ``SLI_WINDOWS``)."""
    return f"sla:sli_ratio:rate{window}"


def error_record(window: str) -> str:
    """Name of the recorded error ratio (1 - SLI) over ``window``."""
    return f"sla:error_ratio:rate{window}"


def prometheus_duration(seconds: float) -> str:
    """A Prometheus duration such as ``1h30m`` or ``1500ms`` (milliseconds at most)."""
    remaining = round(seconds * 1000)
    if remaining <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    if remaining:
        parts.append(f"{remaining}ms")
    return "".join(parts)


def error_budget(objective: Objective) -> float:
    """The allowed bad ratio, ``1 - target`` (rounded: 99 % gives 0.01, not 0.01000...09)."""
    return round((100.0 - objective.target) / 100.0, 12)


def _quote(value: str) -> str:
    """A PromQL double-quoted string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _selector(metric: str, *matchers: tuple[str, str, str]) -> str:
    """``metric{name="value",...}`` from (name, operator, value) triples."""
    inner = ",".join(f"{name}{op}{_quote(value)}" for name, op, value in matchers)
    return f"{metric}{{{inner}}}"


def _number(value: float) -> str:
    """A float as PromQL reads it back unchanged (``repr`` is the shortest exact text)."""
    return repr(float(value))


@dataclass(frozen=True, slots=True)
class SliSeries:
    """The post-exclusion counter selectors of one objective: what is good, bad and valid
    (latency: results within the threshold, the others, all of them; availability: up,
    down, and up + down seconds). The Prometheus rules, Sloth's spec and OpenSLO's SLI
    all read these."""

    good: str
    bad: str
    valid: str


def sli_series(service: ServiceConfig, objective: Objective) -> SliSeries:
    """The selectors of ``objective`` of ``service``."""
    own = f"service={_quote(service.name)},objective={_quote(objective.name)}"
    if isinstance(objective, LatencyObjective):
        metric = EVENTS_METRIC
        good, bad, valid = 'result="good"', 'result="bad"', ""
    else:
        metric = SECONDS_METRIC
        good, bad, valid = 'state="up"', 'state="down"', 'state=~"up|down"'
    return SliSeries(
        *(f"{metric}{{{own},{m}}}" if m else f"{metric}{{{own}}}" for m in (good, bad, valid))
    )


def _sum_rate(series: str, window: str) -> str:
    return f"sum by (service, objective) (rate({series}[{window}]))"


def sli_expr(service: ServiceConfig, objective: Objective, window: str) -> str:
    """good / valid over ``window`` straight from the post-exclusion counters, summed over
    daemon instances (what ``sla:sli_ratio:rate<window>`` records up to 6 h)."""
    series = sli_series(service, objective)
    return f"{_sum_rate(series.good, window)} / {_sum_rate(series.valid, window)}"


def _own(service: ServiceConfig, objective: Objective) -> tuple[tuple[str, str, str], ...]:
    return (("service", "=", service.name), ("objective", "=", objective.name))


def _recording_rules(service: ServiceConfig, objective: Objective) -> list[dict[str, Any]]:
    labels = {"service": service.name, "objective": objective.name}
    own = _own(service, objective)
    series = sli_series(service, objective)
    rules: list[dict[str, Any]] = [
        {
            "record": TARGET_RECORD,
            "expr": f"vector({_number(objective.target_ratio)})",
            "labels": dict(labels),
        },
        {
            "record": GOOD_RECORD,
            "expr": _sum_rate(series.good, BASE_WINDOW),
            "labels": dict(labels),
        },
        {
            "record": VALID_RECORD,
            "expr": _sum_rate(series.valid, BASE_WINDOW),
            "labels": dict(labels),
        },
    ]
    for window in SLI_WINDOWS:
        if window in LONG_WINDOWS:
            # A ratio of the two averages: each 5-minute rate weighs by its volume, as
            # every event does in the daemon (an average of ratios would not).
            expr = (
                f"sum_over_time({_selector(GOOD_RECORD, *own)}[{window}])"
                f" / sum_over_time({_selector(VALID_RECORD, *own)}[{window}])"
            )
        elif window == BASE_WINDOW:
            expr = f"{_selector(GOOD_RECORD, *own)} / {_selector(VALID_RECORD, *own)}"
        else:
            expr = sli_expr(service, objective, window)
        rules.append({"record": sli_record(window), "expr": expr, "labels": dict(labels)})
    for window in SLI_WINDOWS:
        own_sli = _selector(sli_record(window), *own)
        # Labelled though the expression keeps them: promtool's lint takes rules with the
        # same name and labels for duplicates.
        rules.append(
            {"record": error_record(window), "expr": f"1 - {own_sli}", "labels": dict(labels)}
        )
    return rules


def _data_missing_alert(
    config: Config, service: ServiceConfig, objective: Objective
) -> dict[str, Any]:
    """No sealed minute reported for the objective for too long (the daemon stopped, cannot
    be scraped, or stopped sealing), or the series is absent altogether. Minutes are sealed
    ``grace`` minutes late, so the limit allows for that plus two minutes."""
    series = _selector(SEALED_METRIC, *_own(service, objective))
    limit_s = (grace_minutes(config) + 3) * 60
    expr = f"(time() - max by (service, objective) ({series}) > {limit_s}) or absent({series})"
    return {
        "alert": DATA_MISSING_ALERT,
        "expr": expr,
        "for": "5m",
        "labels": {
            "severity": config.alerting.service_down.severity,
            "service": service.name,
            "objective": objective.name,
        },
        "annotations": {
            "summary": f"{service.name} {objective.name}: no SLA data from sla-monitor",
            "description": (
                f"No minute of {objective.name} has been sealed for more than {limit_s} s, "
                "or no daemon exports it: the SLO figures in Prometheus are stale. Check "
                "that the daemon runs and that Prometheus scrapes it."
            ),
        },
    }


def _coverage_alert(config: Config, service: ServiceConfig, objective: Objective) -> dict[str, Any]:
    """The month's coverage of the objective is below its floor: the daemon's own gauges
    (coverage needs the probes' intervals and the minute decisions, which only the daemon
    has), so Prometheus and the built-in path fire on the same figure."""
    own = _own(service, objective)
    coverage = _selector(COVERAGE_METRIC, *own, ("window", "=", "month"))
    floor = _selector(COVERAGE_FLOOR_METRIC, *own)
    low = config.alerting.coverage
    labels = alert_labels(
        config.alerting, COVERAGE_RULE, low.severity, service.name, objective.name
    )
    del labels["alertname"]
    rule: dict[str, Any] = {
        "alert": COVERAGE_ALERT,
        "expr": (
            f"max by (service, objective) ({coverage})"
            f" < on (service, objective) max by (service, objective) ({floor})"
        ),
        "labels": labels,
        "annotations": {
            "summary": (
                f"{service.name} {objective.name}: monitored only "
                "{{ $value | humanizePercentage }} of this month: insufficient data"
            ),
            "description": (
                "The monitor saw less of this month than the objective's coverage floor, "
                "so the month gets no verdict. Check that the daemon runs and its probes "
                "keep their intervals."
            ),
        },
    }
    pending = prometheus_duration(config.alerting.pending_for)
    if pending != "0s":
        rule["for"] = pending  # as the built-in path waits
    return rule


def _burn_alert(
    config: Config, service: ServiceConfig, objective: Objective, burn: BurnRateAlert
) -> dict[str, Any]:
    """Fire when the error ratio exceeds ``factor`` times the budget over both windows
    (SRE workbook multi-window multi-burn-rate); ``$value`` is the long window's burn rate.
    Silent while the service is in announced maintenance, as the built-in path is."""
    own = (("service", "=", service.name), ("objective", "=", objective.name))
    budget = _number(error_budget(objective))
    factor = _number(burn.factor)
    long_window = prometheus_window(burn.long_window)
    short_window = prometheus_window(burn.short_window)
    long_burn = f"{_selector(error_record(long_window), *own)} / {budget}"
    short_burn = f"{_selector(error_record(short_window), *own)} / {budget}"
    maintenance = _selector(MAINTENANCE_METRIC, ("service", "=", service.name))
    expr = (
        f"({long_burn} > {factor} and {short_burn} > {factor})"
        f" unless on (service) (max by (service) ({maintenance}) == 1)"
    )
    rule: dict[str, Any] = {"alert": BURN_ALERT, "expr": expr}
    pending = prometheus_duration(config.alerting.pending_for)
    if pending != "0s":
        rule["for"] = pending
    labels = alert_labels(config.alerting, burn.name, burn.severity, service.name, objective.name)
    del labels["alertname"]
    rule["labels"] = labels
    days = _BUDGET_PERIOD_DAYS / burn.factor
    rule["annotations"] = {
        "summary": (
            f"{service.name} {objective.name}: error budget burning "
            f'{{{{ $value | printf "%.1f" }}}}x (threshold {burn.factor:g}x)'
        ),
        "description": (
            f'Burn rate {{{{ $value | printf "%.2f" }}}} over {long_window}, and above '
            f"{burn.factor:g} over {short_window}; target {objective.target:g} %. At "
            f"{burn.factor:g}x the budget of a {_BUDGET_PERIOD_DAYS}-day period is gone in "
            f"{days:.1f} days."
        ),
    }
    return rule


def _down_alert(
    config: Config, service: ServiceConfig, objective: AvailabilityObjective
) -> dict[str, Any]:
    """The last N sealed minutes of an availability objective were all down.

    The counter gains 60 s of one state per sealed minute, so its ``down`` series rising
    by N minutes over N minutes means N down minutes in a row (exact when the scrape
    interval divides a minute). A raw difference, not ``increase()``: extrapolation would
    let N-1 down minutes pass for N. After a daemon restart the difference is negative for
    N minutes, so the alert waits rather than firing on a reset.
    """
    down = config.alerting.service_down
    minutes = down.consecutive_minutes
    series = _selector(
        SECONDS_METRIC,
        ("service", "=", service.name),
        ("objective", "=", objective.name),
        ("state", "=", "down"),
    )
    rule: dict[str, Any] = {
        "alert": DOWN_ALERT,
        "expr": (
            f"max by (service, objective) ({series} - {series} offset {minutes}m) >= {minutes * 60}"
        ),
    }
    pending = prometheus_duration(config.alerting.pending_for)
    if pending != "0s":
        rule["for"] = pending
    labels = alert_labels(config.alerting, DOWN_RULE, down.severity, service.name, objective.name)
    del labels["alertname"]
    rule["labels"] = labels
    rule["annotations"] = {
        "summary": f"{service.name} is down ({minutes} minutes in a row)",
        "description": (
            f"More than {objective.down_ratio:.0%} of the probes' results failed in each of "
            f"the last {minutes} sealed minutes (availability objective {objective.name})."
        ),
    }
    return rule


def _location_fault_alert(config: Config, service: ServiceConfig) -> dict[str, Any]:
    """A location was at fault in each of the last N decided minutes of one availability
    objective of the service (as the built-in path decides it): the same raw difference as
    the down alert, on the fault counter, per location. Every daemon counts every decided
    minute, so ``max`` over daemons and objectives, never a sum."""
    setting = config.alerting.location_fault
    minutes = setting.consecutive_minutes
    series = _selector(FAULT_METRIC, ("service", "=", service.name))
    rule: dict[str, Any] = {
        "alert": LOCATION_FAULT_ALERT,
        "expr": (
            f"max by (service, location) ({series} - {series} offset {minutes}m) >= {minutes * 60}"
        ),
    }
    pending = prometheus_duration(config.alerting.pending_for)
    if pending != "0s":
        rule["for"] = pending
    labels = alert_labels(
        config.alerting, LOCATION_FAULT_RULE, setting.severity, service.name, None
    )
    del labels["alertname"]
    rule["labels"] = labels  # the location label comes from the expression
    rule["annotations"] = {
        "summary": (
            f"location {{{{ $labels.location }}}} cannot reach {service.name}: the monitor's"
            f" path ({minutes} minutes in a row)"
        ),
        "description": (
            f"Only {{{{ $labels.location }}}} saw {service.name} down in each of the last"
            f" {minutes} decided minutes; the other locations saw it up. Not counted against"
            " the service: check the monitor's network there."
        ),
    }
    return rule


def _batch_at_risk_alert(
    config: Config, service: ServiceConfig, objective: BatchObjective
) -> dict[str, Any]:
    """Volume unprocessed close to its deadline: the daemon's own gauge (only it has the
    batch events), so Prometheus and the built-in path fire on the same figure."""
    setting = config.alerting.batch_at_risk
    labels = alert_labels(
        config.alerting, BATCH_AT_RISK_RULE, setting.severity, service.name, objective.name
    )
    del labels["alertname"]
    own = (("service", "=", service.name), ("objective", "=", objective.name))
    return {
        "alert": BATCH_AT_RISK_ALERT,
        "expr": f"max by (service, objective) ({_selector(BATCH_AT_RISK_METRIC, *own)}) > 0",
        "labels": labels,
        "annotations": {
            "summary": (
                f"{service.name} {objective.name}: {{{{ $value }}}} still unprocessed close "
                f"to its deadline ({span_text(objective.deadline)})"
            ),
            "description": (
                "Records (or batches) handed in are not processed yet and their deadline is "
                "within the objective's margin: process them now or they count against "
                "the target."
            ),
        },
    }


def build_rules(config: Config, interval: str = DEFAULT_INTERVAL) -> dict[str, Any]:
    """The rules document: one group per service evaluated every ``interval``, recording
    rules before alerts.

    Generated whether or not the built-in alerting is enabled: a team may run these in
    Prometheus instead of it.
    """
    if not _DURATION.match(interval):
        raise ValueError(f"interval {interval!r} is not a Prometheus duration such as 30s")
    groups = []
    for service in config.services:
        if not service.all_objectives:
            continue
        rules: list[dict[str, Any]] = []
        if config.alerting.batch_at_risk.enabled:
            for batch in service.batch_objectives:
                rules.append(_batch_at_risk_alert(config, service, batch))
        for objective in service.objectives:
            rules.extend(_recording_rules(service, objective))
        for objective in service.objectives:
            for burn in config.alerting.burn_rate:
                rules.append(_burn_alert(config, service, objective, burn))
        if config.alerting.service_down.enabled:
            for objective in service.objectives:
                if isinstance(objective, AvailabilityObjective):
                    rules.append(_down_alert(config, service, objective))
        located = config.shared_minutes and config.alerting.location_fault.enabled
        if located and any(isinstance(o, AvailabilityObjective) for o in service.objectives):
            rules.append(_location_fault_alert(config, service))
        for objective in service.objectives:
            rules.append(_data_missing_alert(config, service, objective))
        if config.alerting.coverage.enabled:
            for objective in service.objectives:
                rules.append(_coverage_alert(config, service, objective))
        groups.append({"name": f"sla-monitor:{service.name}", "interval": interval, "rules": rules})
    return {"groups": groups}


_HEADER = (
    "# Prometheus rules generated by `sla-monitor rules` from the SLA monitor's config.\n"
    "# Do not edit: change the config and generate again.\n"
)


def render_rules(config: Config, interval: str = DEFAULT_INTERVAL) -> str:
    """The rules document as YAML text (stable: same config, same bytes)."""
    body = yaml.safe_dump(
        build_rules(config, interval), sort_keys=False, default_flow_style=False, width=1_000_000
    )
    return _HEADER + body


def write_rules(config: Config, out_dir: Path, interval: str = DEFAULT_INTERVAL) -> list[Path]:
    """Write the rules file into ``out_dir`` (created if missing); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RULES_FILE
    path.write_text(render_rules(config, interval), encoding="utf-8")
    return [path]


__all__ = [
    "BURN_ALERT",
    "DATA_MISSING_ALERT",
    "DEFAULT_INTERVAL",
    "DOWN_ALERT",
    "DOWN_RULE",
    "GOOD_RECORD",
    "LONG_WINDOWS",
    "RULES_FILE",
    "SLI_WINDOWS",
    "TARGET_RECORD",
    "VALID_RECORD",
    "build_rules",
    "error_budget",
    "error_record",
    "prometheus_duration",
    "prometheus_window",
    "render_rules",
    "sli_expr",
    "sli_record",
    "sli_series",
    "write_rules",
]
