"""The alert names and labels both alerting paths send, so routes, inhibitions and silences
written for one match the other, and Alertmanager takes the same breach from the daemon
and from Prometheus's generated rules for one alert.

The built-in engine (``monitor.alerting.engine``) labels its events with ``alert_labels``;
the generated rules (``monitor.generate.rules``) put the same labels on their alerts, and
the recorded series they read carry only ``service`` and ``objective``.
"""

from __future__ import annotations

from monitor.config import AlertingConfig
from monitor.sla.windows import ROLLING, prometheus_window

BURN_ALERT = "SlaErrorBudgetBurn"
DOWN_ALERT = "SlaServiceDown"
MONTH_BREACH_ALERT = "SlaMonthBreached"
MONTH_FORECAST_ALERT = "SlaMonthForecastBreach"
COVERAGE_ALERT = "SlaCoverageLow"
BATCH_AT_RISK_ALERT = "SlaBatchAtRisk"
LOCATION_FAULT_ALERT = "SlaLocationFault"
#: Prometheus only: the daemon stopped reporting an objective, or stopped sealing minutes.
DATA_MISSING_ALERT = "SlaDataMissing"

#: The built-in rule names that are not burn-rate rules, and their alert names.
DOWN_RULE = "service-down"
MONTH_BREACH_RULE = "month-breach"
MONTH_FORECAST_RULE = "month-forecast"
COVERAGE_RULE = "coverage-low"
BATCH_AT_RISK_RULE = "batch-at-risk"
LOCATION_FAULT_RULE = "location-fault"
_ALERTNAMES = {
    LOCATION_FAULT_RULE: LOCATION_FAULT_ALERT,
    BATCH_AT_RISK_RULE: BATCH_AT_RISK_ALERT,
    DOWN_RULE: DOWN_ALERT,
    COVERAGE_RULE: COVERAGE_ALERT,
    MONTH_BREACH_RULE: MONTH_BREACH_ALERT,
    MONTH_FORECAST_RULE: MONTH_FORECAST_ALERT,
}


def resolve_after_s(settings: AlertingConfig, rule: str) -> float:
    """Seconds a firing alert of ``rule`` stays clear before it resolves: a burn-rate
    rule's ``resolve_after`` (default: its short window), else ``alerting.resolve_after``."""
    for burn in settings.burn_rate:
        if burn.name == rule:
            if burn.resolve_after is not None:
                return burn.resolve_after
            return ROLLING[burn.short_window] * 60.0
    return settings.resolve_after


def alert_labels(
    alerting: AlertingConfig,
    rule: str,
    severity: str,
    service: str,
    objective: str | None,
    location: str | None = None,
) -> dict[str, str]:
    """The labels of the alert of built-in ``rule`` (a burn-rate rule's name, or one of
    the ``*_RULE`` names) for ``service`` and ``objective`` (and the monitor's
    ``location`` at fault)."""
    labels = {"alertname": _ALERTNAMES.get(rule, BURN_ALERT), "severity": severity}
    labels["service"] = service
    if objective:
        labels["objective"] = objective
    if location:
        labels["location"] = location
    labels["rule"] = rule
    for burn in alerting.burn_rate:
        if burn.name == rule:
            labels["alertname"] = BURN_ALERT
            labels["long_window"] = prometheus_window(burn.long_window)
            labels["short_window"] = prometheus_window(burn.short_window)
    return labels


__all__ = [
    "BATCH_AT_RISK_ALERT",
    "BATCH_AT_RISK_RULE",
    "BURN_ALERT",
    "COVERAGE_ALERT",
    "COVERAGE_RULE",
    "DATA_MISSING_ALERT",
    "DOWN_ALERT",
    "DOWN_RULE",
    "LOCATION_FAULT_ALERT",
    "LOCATION_FAULT_RULE",
    "MONTH_BREACH_ALERT",
    "MONTH_BREACH_RULE",
    "MONTH_FORECAST_ALERT",
    "MONTH_FORECAST_RULE",
    "alert_labels",
]
