"""Prometheus recording and alerting rules generated from the config (``sla-monitor rules``).

For teams that run Prometheus and Alertmanager beside the daemon: the same objectives and
the same multi-window multi-burn-rate alerts as the built-in path (``monitor.alerting.engine``),
computed by Prometheus from the daemon's counters, summed across daemon instances.

One file, ``sla-monitor.rules.yml``, holds one rule group per service: its recording rules
first, then its alerts. Rules of a group run in order at one timestamp, so an alert always
reads the SLIs recorded in the same evaluation.

Recorded series, each labelled ``service`` and ``objective``:

- ``sla:objective_target:ratio`` -- the target (0.99 for 99 %).
- ``sla:sli_ratio:rate<w>`` -- good / valid over ``w`` (latency: exchanges within the
  threshold over all attempts; availability: up minutes over up + down minutes).
- ``sla:error_ratio:rate<w>`` -- ``1 - sla:sli_ratio:rate<w>``.

for every ``w`` in ``SLI_WINDOWS``. Alerts: ``SlaErrorBudgetBurn`` (one per objective and
``alerting.burn_rate`` entry, its name in the ``rule`` label) and ``SlaServiceDown``.

Counted differently from the daemon: Prometheus's counters include results in minutes the
daemon excludes from latency objectives (outside service hours, maintenance), so the
recorded latency SLIs equal the daemon's figures only where no minute was excluded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.utils import floatToGoString

from monitor.config import (
    AvailabilityObjective,
    BurnRateAlert,
    Config,
    LatencyObjective,
    Objective,
    ServiceConfig,
)
from monitor.sla.windows import SLI_WINDOWS, prometheus_window

#: The file ``write_rules`` writes.
RULES_FILE = "sla-monitor.rules.yml"


TARGET_RECORD = "sla:objective_target:ratio"
BURN_ALERT = "SlaErrorBudgetBurn"
DOWN_ALERT = "SlaServiceDown"
#: The ``rule`` label of the service-down alert: the built-in path's rule name.
DOWN_RULE = "service-down"

DURATION_METRIC = "sla_probe_duration_seconds_bucket"
ATTEMPTS_METRIC = "sla_probe_attempts_total"
MINUTES_METRIC = "sla_availability_minutes_total"
MAINTENANCE_METRIC = "sla_maintenance_active"

#: Days a burn rate is measured against in the alert text, as in the built-in path.
_BUDGET_PERIOD_DAYS = 30
#: prometheus_client's text for a bucket bound (the library leaves it unannotated).
_float_to_go_string: Callable[[float], str] = floatToGoString
#: Characters with a meaning in RE2 that may appear in a probe name.
_REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def sli_record(window: str) -> str:
    """Name of the recorded SLI over ``window`` (one of ``SLI_WINDOWS``)."""
    return f"sla:sli_ratio:rate{window}"


def error_record(window: str) -> str:
    """Name of the recorded error ratio (1 - SLI) over ``window``."""
    return f"sla:error_ratio:rate{window}"


def le_label(threshold_s: float) -> str:
    """The ``le`` label value of a latency threshold, exactly as prometheus_client writes
    the bucket bound (1 s is ``"1.0"``, 250 ms ``"0.25"``), so the selector always matches."""
    return _float_to_go_string(float(threshold_s))


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


def _probe_matchers(
    service: ServiceConfig, objective: LatencyObjective
) -> tuple[tuple[str, str, str], ...]:
    """The service matcher, plus a probe regex when the objective names its probes."""
    matchers: tuple[tuple[str, str, str], ...] = (("service", "=", service.name),)
    if objective.probes:
        names = "|".join(_REGEX_SPECIAL.sub(r"\\\1", p) for p in service.probes_of(objective))
        matchers += (("probe", "=~", names),)
    return matchers


def latency_sli(service: ServiceConfig, objective: LatencyObjective, window: str) -> str:
    """Exchanges answered within the threshold over all attempts (failures and time-outs
    count as bad), summed over probes and daemon instances."""
    matchers = _probe_matchers(service, objective)
    good = _selector(DURATION_METRIC, *matchers, ("le", "=", le_label(objective.threshold)))
    valid = _selector(ATTEMPTS_METRIC, *matchers)
    return f"sum by (service) (rate({good}[{window}])) / sum by (service) (rate({valid}[{window}]))"


def availability_sli(service: ServiceConfig, objective: AvailabilityObjective, window: str) -> str:
    """Up minutes over up + down minutes; excluded and unmonitored minutes count as neither."""
    base = (("service", "=", service.name), ("objective", "=", objective.name))
    up = _selector(MINUTES_METRIC, *base, ("state", "=", "up"))
    eligible = _selector(MINUTES_METRIC, *base, ("state", "=~", "up|down"))
    return (
        f"sum by (service, objective) (increase({up}[{window}]))"
        f" / sum by (service, objective) (increase({eligible}[{window}]))"
    )


def _recording_rules(service: ServiceConfig, objective: Objective) -> list[dict[str, Any]]:
    labels = {"service": service.name, "objective": objective.name}
    rules: list[dict[str, Any]] = [
        {
            "record": TARGET_RECORD,
            "expr": f"vector({_number(objective.target_ratio)})",
            "labels": dict(labels),
        }
    ]
    for window in SLI_WINDOWS:
        if isinstance(objective, LatencyObjective):
            expr = latency_sli(service, objective, window)
        else:
            expr = availability_sli(service, objective, window)
        rules.append({"record": sli_record(window), "expr": expr, "labels": dict(labels)})
    for window in SLI_WINDOWS:
        own = _selector(sli_record(window), *((k, "=", v) for k, v in labels.items()))
        # Labelled though the expression keeps them: promtool's lint takes rules with the
        # same name and labels for duplicates.
        rules.append({"record": error_record(window), "expr": f"1 - {own}", "labels": dict(labels)})
    return rules


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
    rule["labels"] = {
        "severity": burn.severity,
        "service": service.name,
        "objective": objective.name,
        "rule": burn.name,
        "long_window": long_window,
        "short_window": short_window,
    }
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

    The counter gains one state per sealed minute, so its ``down`` series rising by N
    over N minutes means N down minutes in a row (exact when the scrape interval divides
    a minute). A raw difference, not ``increase()``: extrapolation would let N-1 down
    minutes pass for N. After a daemon restart the difference is negative for N minutes,
    so the alert waits rather than firing on a reset.
    """
    down = config.alerting.service_down
    minutes = down.consecutive_minutes
    series = _selector(
        MINUTES_METRIC,
        ("service", "=", service.name),
        ("objective", "=", objective.name),
        ("state", "=", "down"),
    )
    rule: dict[str, Any] = {
        "alert": DOWN_ALERT,
        "expr": (
            f"max by (service, objective) ({series} - {series} offset {minutes}m) >= {minutes}"
        ),
    }
    pending = prometheus_duration(config.alerting.pending_for)
    if pending != "0s":
        rule["for"] = pending
    rule["labels"] = {
        "severity": down.severity,
        "service": service.name,
        "objective": objective.name,
        "rule": DOWN_RULE,
    }
    rule["annotations"] = {
        "summary": f"{service.name} is down ({minutes} minutes in a row)",
        "description": (
            f"More than {objective.down_ratio:.0%} of the probes' results failed in each of "
            f"the last {minutes} sealed minutes (availability objective {objective.name})."
        ),
    }
    return rule


def build_rules(config: Config) -> dict[str, Any]:
    """The rules document: one group per service, recording rules before alerts.

    Generated whether or not the built-in alerting is enabled: a team may run these in
    Prometheus instead of it.
    """
    groups = []
    for service in config.services:
        if not service.objectives:
            continue
        rules: list[dict[str, Any]] = []
        for objective in service.objectives:
            rules.extend(_recording_rules(service, objective))
        for objective in service.objectives:
            for burn in config.alerting.burn_rate:
                rules.append(_burn_alert(config, service, objective, burn))
        if config.alerting.service_down.enabled:
            for objective in service.objectives:
                if isinstance(objective, AvailabilityObjective):
                    rules.append(_down_alert(config, service, objective))
        groups.append({"name": f"sla-monitor:{service.name}", "rules": rules})
    return {"groups": groups}


_HEADER = (
    "# Prometheus rules generated by `sla-monitor rules` from the SLA monitor's config.\n"
    "# Do not edit: change the config and generate again.\n"
)


def render_rules(config: Config) -> str:
    """The rules document as YAML text (stable: same config, same bytes)."""
    body = yaml.safe_dump(
        build_rules(config), sort_keys=False, default_flow_style=False, width=1_000_000
    )
    return _HEADER + body


def write_rules(config: Config, out_dir: Path) -> list[Path]:
    """Write the rules file into ``out_dir`` (created if missing); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RULES_FILE
    path.write_text(render_rules(config), encoding="utf-8")
    return [path]


__all__ = [
    "BURN_ALERT",
    "DOWN_ALERT",
    "DOWN_RULE",
    "RULES_FILE",
    "SLI_WINDOWS",
    "TARGET_RECORD",
    "availability_sli",
    "build_rules",
    "error_budget",
    "error_record",
    "latency_sli",
    "le_label",
    "prometheus_duration",
    "prometheus_window",
    "render_rules",
    "sli_record",
    "write_rules",
]
