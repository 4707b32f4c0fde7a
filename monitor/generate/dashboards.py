"""Grafana dashboards generated from the config (``sla-monitor dashboards``).

One source of truth: the dashboards are built here with grafana-foundation-sdk (the build
for Grafana 11.6, dashboard schemaVersion 41) from the validated config, so every
threshold drawn is a configured SLA value and the dashboards change with the config. The
JSON under ``dashboards/`` is this module's output for ``config/demo.yaml``.

Three dashboards, each with a ``datasource`` variable (every panel and query uses it)
and ``service`` / ``objective`` variables (multi-value, every query filters on them):

- *SLA overview* (``sla-overview``): month-to-date compliance coloured by the remaining
  error budget, remaining budget, burn rate, availability, p99 / p99.5, a pass/fail table
  of every objective, the alerts firing in Prometheus.
- *Service detail* (``sla-service-detail``): latency heatmap, quantiles with the SLA
  thresholds as lines, compliance per window, availability timeline, attempts by
  outcome, error budget burn-down.
- *Monitor health* (``sla-monitor-health``): scheduler lag, queue depths, store writes,
  notifier failures, broker connections, scrape state.

Maintenance windows (``sla_maintenance_active``) and the alerts of the generated
Prometheus rules (``ALERTS``) are annotations on all three.

Per-series thresholds: one panel shows every objective, so each objective's target is a
field override matched on the series name the legend gives it (``<service> <objective>``).

One piece (~950 lines): three dashboards built from the same small panel builders and
threshold helpers, so they share one look; the queries as Grafana sends them and the
preview are ``monitor.generate.preview``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    bargauge,
    heatmap,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prom_model

from monitor.config import AvailabilityObjective, Config, LatencyObjective, ServiceConfig
from monitor.errors import SlaMonitorError
from monitor.generate.rules import sli_record
from monitor.sla.windows import DASHBOARD_WINDOWS

#: The Grafana version the JSON targets (the grafana-foundation-sdk build pinned).
GRAFANA_VERSION = "11.6"
#: Job name Prometheus scrapes the daemon under (deploy/prometheus/prometheus.yml).
SCRAPE_JOB = "sla-monitor"
#: Dashboard files written, by uid.
FILES = {
    "sla-overview": "sla-overview.json",
    "sla-service-detail": "sla-service-detail.json",
    "sla-monitor-health": "sla-monitor-health.json",
}
#: Below this share of error budget left, a met objective turns amber.
AMBER_BUDGET = 0.25

#: Values Grafana gives its built-in variables; tests and the preview substitute these.
GRAFANA_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

_DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
_SERVICE = 'service=~"$service"'
_OBJECTIVE = 'objective=~"$objective"'
_BOTH = f"{_SERVICE},{_OBJECTIVE}"
_TAGS = ["sla-monitor"]


class DashboardError(SlaMonitorError):
    """A dashboard could not be written or previewed."""


# --- thresholds -----------------------------------------------------------------------------


def _steps(base: str, *steps: tuple[float, str]) -> model.ThresholdsConfig:
    return model.ThresholdsConfig(
        mode=model.ThresholdsMode.ABSOLUTE,
        steps=[model.Threshold(value=None, color=base)]
        + [model.Threshold(value=value, color=color) for value, color in steps],
    )


def compliance_steps(target_ratio: float) -> model.ThresholdsConfig:
    """Red below the target (budget spent), amber while less than ``AMBER_BUDGET`` of the
    budget is left, green above: remaining = 1 - (1 - c) / (1 - target)."""
    amber_until = round(1 - (1 - AMBER_BUDGET) * (1 - target_ratio), 12)
    return _steps("red", (round(target_ratio, 12), "orange"), (amber_until, "green"))


def _budget_steps() -> model.ThresholdsConfig:
    return _steps("red", (0.0, "orange"), (AMBER_BUDGET, "green"))


def _burn_steps(config: Config) -> model.ThresholdsConfig:
    """Green below 1 (on budget), amber from 1, red from the fastest configured burn."""
    factors = sorted({b.factor for b in config.alerting.burn_rate} | {1.0})
    return _steps("green", (1.0, "orange"), *((f, "red") for f in factors[-1:] if f > 1))


def _latency_steps(thresholds_s: Sequence[float]) -> model.ThresholdsConfig:
    return _steps("green", *((t, "red") for t in sorted(set(thresholds_s))))


def _override_thresholds(steps: model.ThresholdsConfig) -> list[model.DynamicConfigValue]:
    return [model.DynamicConfigValue(id_val="thresholds", value=steps)]


def _line_thresholds(steps: model.ThresholdsConfig) -> list[model.DynamicConfigValue]:
    """Thresholds drawn as dashed lines on a time series (per matched series)."""
    return [
        *_override_thresholds(steps),
        model.DynamicConfigValue(
            id_val="custom.thresholdsStyle",
            value=common.GraphThresholdsStyleConfig(mode=common.GraphThresholdsStyleMode.DASHED),
        ),
    ]


def _series(service: str, objective: str) -> str:
    """The display name the legend ``{{service}} {{objective}}`` gives a series."""
    return f"{service} {objective}"


#: Characters with a meaning in a regex that may appear in a service or objective name.
_REGEX_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}])")


def promql_regex(text: str) -> str:
    """``text`` matched literally by a PromQL regex matcher (its backslash doubled inside the
    double-quoted string), as Grafana escapes variable values."""
    return _REGEX_SPECIAL.sub(r"\\\\\1", text)


def _regex_prefix(text: str) -> str:
    """A Grafana (JavaScript) regex matching series names that start with ``text ``."""
    return "^" + _REGEX_SPECIAL.sub(r"\\\1", text) + " "


def objectives_of(
    config: Config,
) -> Iterator[tuple[ServiceConfig, LatencyObjective | AvailabilityObjective]]:
    """Every (service, objective) of the config, in config order."""
    for service in config.services:
        for objective in service.objectives:
            yield service, objective


def _latency_thresholds(service: ServiceConfig) -> list[float]:
    return [float(o.threshold) for o in service.objectives if isinstance(o, LatencyObjective)]


def _availability_names(config: Config) -> str:
    names = sorted(
        {o.name for _, o in objectives_of(config) if isinstance(o, AvailabilityObjective)}
    )
    return "|".join(promql_regex(n) for n in names) or "^$"


# --- small builders -------------------------------------------------------------------------


def _query(
    expr: str, legend: str = "", *, ref: str = "A", instant: bool = False, fmt: str = ""
) -> prom.Dataquery:
    query = prom.Dataquery().expr(expr).ref_id(ref).datasource(_DATASOURCE)
    query = query.legend_format(legend or "__auto")
    query = query.instant() if instant else query.range()
    if fmt:
        query = query.format(prom_model.PromQueryFormat(fmt))
    return query


def _stat(title: str, description: str, unit: str, width: int, height: int = 7) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(_DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def _timeseries(
    title: str, description: str, unit: str, width: int = 12, height: int = 8
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(_DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
    )


def _row(title: str) -> builder.Row:
    return builder.Row(title)


def _variables(board: builder.Dashboard) -> builder.Dashboard:
    """``datasource``, then ``service`` and ``objective`` (both multi-value, All default)."""
    all_selected = model.VariableOption(selected=True, text="All", value="$__all")
    return (
        board.with_variable(
            builder.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(
            builder.QueryVariable("service")
            .label("Service")
            .datasource(_DATASOURCE)
            .query("label_values(sla_objective_target_ratio, service)")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .current(all_selected)
        )
        .with_variable(
            builder.QueryVariable("objective")
            .label("Objective")
            .datasource(_DATASOURCE)
            .query(f"label_values(sla_objective_target_ratio{{{_SERVICE}}}, objective)")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .current(all_selected)
        )
    )


#: Annotations: (name, expression, title format, tag keys, colour). Prometheus annotation
#: fields the SDK does not model are added to the JSON by ``_finish``.
_ANNOTATIONS = (
    (
        "Maintenance",
        f"max by (service) (sla_maintenance_active{{{_SERVICE}}}) == 1",
        "Maintenance: {{service}}",
        "service",
        "blue",
    ),
    (
        "SLA alerts",
        f'ALERTS{{alertstate="firing",{_SERVICE}}}',
        "{{alertname}}: {{service}} {{objective}}",
        "severity,rule,objective",
        "red",
    ),
)


def _dashboard(uid: str, title: str, description: str) -> builder.Dashboard:
    board = (
        builder.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(_TAGS)
        .editable()
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(
            builder.DashboardLink("SLA dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(_TAGS)
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    board = _variables(board)
    for name, expr, _, _, color in _ANNOTATIONS:
        board = board.annotation(
            builder.AnnotationQuery()
            .name(name)
            .datasource(_DATASOURCE)
            .enable(True)
            .icon_color(color)
            .expr(expr)
        )
    return board


# --- SLA overview ---------------------------------------------------------------------------


def _overview(config: Config) -> builder.Dashboard:
    board = _dashboard(
        "sla-overview",
        "SLA overview",
        "Every objective against its contract target this calendar month, with the "
        "remaining error budget, burn rate, availability, tail latency and firing alerts. "
        "Generated by `sla-monitor dashboards` from the config.",
    )
    compliance = _stat(
        "Compliance, month to date",
        "Share of valid events (latency) or eligible minutes (availability) that met the "
        "objective since the 1st. Red: below target (budget spent); amber: less than "
        f"{AMBER_BUDGET:.0%} of the error budget left; green otherwise.",
        "percentunit",
        12,
        8,
    ).with_target(
        _query(
            f'sla_objective_compliance_ratio{{{_BOTH},window="month"}}',
            "{{service}} {{objective}}",
            instant=True,
        )
    )
    compliance = compliance.decimals(3).thresholds(_wrap(_steps("text")))
    for service, objective in objectives_of(config):
        compliance = compliance.override_by_name(
            _series(service.name, objective.name),
            _override_thresholds(compliance_steps(objective.target_ratio)),
        )
    budget = (
        _stat(
            "Error budget remaining, month",
            "1 - bad / allowed this month: 100 % untouched, 0 % spent, negative overspent.",
            "percentunit",
            6,
            8,
        )
        .with_target(
            _query(
                f'sla_error_budget_remaining_ratio{{{_BOTH},window="month"}}',
                "{{service}} {{objective}}",
                instant=True,
            )
        )
        .decimals(1)
        .thresholds(_wrap(_budget_steps()))
    )
    burn = (
        _stat(
            "Burn rate, last hour",
            "Bad ratio over the allowed bad ratio in the last hour: 1 spends the budget "
            "exactly by the end of the period; red from the fastest configured burn alert.",
            "suffix:x",
            6,
            8,
        )
        .with_target(
            _query(
                f'sla_error_budget_burn_rate{{{_BOTH},window="1h"}}',
                "{{service}} {{objective}}",
                instant=True,
            )
        )
        .decimals(2)
        .thresholds(_wrap(_burn_steps(config)))
    )
    availability = _stat(
        "Availability, last hour",
        "Up minutes over up + down minutes of each availability objective (minutes outside "
        "service hours, in maintenance or unmonitored count as neither).",
        "percentunit",
        8,
    ).with_target(
        _query(
            f'sla_objective_compliance_ratio{{{_BOTH},objective=~"{_availability_names(config)}",'
            'window="1h"}',
            "{{service}} {{objective}}",
            instant=True,
        )
    )
    availability = availability.decimals(3).thresholds(_wrap(_steps("text")))
    for service, objective in objectives_of(config):
        if isinstance(objective, AvailabilityObjective):
            availability = availability.override_by_name(
                _series(service.name, objective.name),
                _override_thresholds(compliance_steps(objective.target_ratio)),
            )
    latency = (
        _stat(
            "Latency p99 / p99.5, last hour",
            "Estimated from log-spaced buckets (relative error <= 1 %); red at or above the "
            "service's contractual thresholds.",
            "s",
            10,
        )
        .with_target(
            _query(
                f'sla_latency_quantile_seconds{{{_SERVICE},percentile=~"99|99.5",window="1h"}}',
                "{{service}} p{{percentile}}",
                instant=True,
            )
        )
        .thresholds(_wrap(_steps("green")))
    )
    for service in config.services:
        if thresholds := _latency_thresholds(service):
            latency = latency.override_by_regexp(
                _regex_prefix(service.name), _override_thresholds(_latency_steps(thresholds))
            )
    probes_up = (
        _stat(
            "Probes up now",
            "1 when the probe's last exchange succeeded.",
            "none",
            6,
        )
        .with_target(_query(f"sla_probe_up{{{_SERVICE}}}", "{{service}} {{probe}}", instant=True))
        .thresholds(_wrap(_steps("red", (1.0, "green"))))
        .mappings(_mappings({"0": ("down", "red"), "1": ("up", "green")}))
    )
    board = board.with_row(_row("Month to date"))
    board = board.with_panel(compliance).with_panel(budget).with_panel(burn)
    board = board.with_row(_row("Now"))
    board = board.with_panel(availability).with_panel(latency).with_panel(probes_up)
    board = board.with_row(_row("Objectives and alerts"))
    return board.with_panel(_objectives_table()).with_panel(_alerts_table())


def _objectives_table() -> table.Panel:
    """One row per objective: target, month compliance, budget, burn rate, pass/fail."""

    def by(metric: str, window: str | None = None) -> str:
        where = _BOTH + (f',window="{window}"' if window else "")
        return f"max by (service, objective) ({metric}{{{where}}})"

    compliance = by("sla_objective_compliance_ratio", "month")
    queries = [
        ("A", by("sla_objective_target_ratio"), "Target", "percentunit"),
        ("B", compliance, "Compliance (month)", "percentunit"),
        ("C", by("sla_error_budget_remaining_ratio", "month"), "Budget left", "percentunit"),
        ("D", by("sla_error_budget_burn_rate", "1h"), "Burn rate (1h)", "suffix:x"),
        ("E", f"{compliance} >= bool {by('sla_objective_target_ratio')}", "Met", "none"),
    ]
    panel = (
        table.Panel()
        .title("Objectives: pass / fail this month")
        .description(
            "Every objective of the selected services; Met compares the month's "
            "compliance with the target."
        )
        .datasource(_DATASOURCE)
        .unit("none")
        .span(14)
        .height(9)
        .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            model.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "indexByName": {"service": 0, "objective": 1},
                    "renameByName": {f"Value #{ref}": label for ref, _, label, _ in queries},
                },
            )
        )
    )
    for ref, expr, _, unit in queries:
        panel = panel.with_target(_query(expr, ref=ref, instant=True, fmt="table"))
        properties = [model.DynamicConfigValue(id_val="unit", value=unit)]
        if ref == "E":
            properties += [
                model.DynamicConfigValue(
                    id_val="mappings",
                    value=_mappings({"0": ("FAIL", "red"), "1": ("PASS", "green")}),
                ),
                model.DynamicConfigValue(
                    id_val="custom.cellOptions",
                    value={"type": common.TableCellDisplayMode.COLOR_BACKGROUND.value},
                ),
            ]
        panel = panel.override_by_name(f"Value #{ref}", properties)
    return panel


def _alerts_table() -> table.Panel:
    return (
        table.Panel()
        .title("Firing alerts (Prometheus rules)")
        .description(
            "Alerts of `sla-monitor rules` that Prometheus has firing now; "
            "Alertmanager routes them."
        )
        .datasource(_DATASOURCE)
        .unit("none")
        .span(10)
        .height(9)
        .with_target(_query(f'ALERTS{{alertstate="firing",{_SERVICE}}}', instant=True, fmt="table"))
        .with_transformation(
            model.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {
                        "Time": True,
                        "Value": True,
                        "__name__": True,
                        "alertstate": True,
                    },
                    "indexByName": {
                        "alertname": 0,
                        "severity": 1,
                        "service": 2,
                        "objective": 3,
                        "rule": 4,
                    },
                },
            )
        )
    )


def _mappings(values: Mapping[str, tuple[str, str]]) -> list[model.ValueMapping]:
    return [
        model.ValueMap(
            options={
                value: model.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, (text, color)) in enumerate(values.items())
            }
        )
    ]


def _wrap(value: model.ThresholdsConfig) -> builder.ThresholdsConfig:
    """The SDK's builder for prepared thresholds (panels take builders)."""
    return builder.ThresholdsConfig().mode(value.mode).steps(value.steps)


# --- Service detail -------------------------------------------------------------------------


def _service_detail(config: Config) -> builder.Dashboard:
    board = _dashboard(
        "sla-service-detail",
        "SLA service detail",
        "Latency distribution and quantiles against the contract's thresholds, compliance "
        "per window, availability timeline, attempts by outcome and the month's error "
        "budget burn-down for the selected services and objectives.",
    )
    heat = (
        heatmap.Panel()
        .title("Latency heatmap")
        .description(
            "Successful exchanges per latency bucket (the histogram's buckets; "
            "every contractual threshold is a bucket bound)."
        )
        .datasource(_DATASOURCE)
        .unit("s")
        .span(12)
        .height(9)
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit("s"))
        .cell_values(heatmap.CellValues().unit("short"))
        .with_target(
            _query(
                "sum by (le) (increase(sla_probe_duration_seconds_bucket"
                f"{{{_SERVICE}}}[$__rate_interval]))",
                "{{le}}",
                fmt="heatmap",
            )
        )
    )
    quantiles = (
        _timeseries(
            "Latency p50 / p99 / p99.5 (5 min windows)",
            "The daemon's estimates (relative error <= 1 %); dashed lines: the service's "
            "SLA thresholds.",
            "s",
            12,
            9,
        )
        .with_target(
            _query(
                f'sla_latency_quantile_seconds{{{_SERVICE},percentile=~"50|99|99.5",window="5m"}}',
                "{{service}} p{{percentile}}",
            )
        )
        .thresholds(_wrap(_steps("green")))
    )
    for service in config.services:
        if thresholds := _latency_thresholds(service):
            quantiles = quantiles.override_by_regexp(
                _regex_prefix(service.name), _line_thresholds(_latency_steps(thresholds))
            )
    windows = "|".join(DASHBOARD_WINDOWS)
    per_window = (
        bargauge.Panel()
        .title("Compliance per window")
        .description(
            "The daemon's exact figures over each window; red below the target, "
            f"amber with less than {AMBER_BUDGET:.0%} of the budget left."
        )
        .datasource(_DATASOURCE)
        .unit("percentunit")
        .decimals(3)
        .min(_lowest_scale(config))
        .max(1)
        .span(12)
        .height(9)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .orientation(common.VizOrientation.HORIZONTAL)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .with_target(
            _query(
                f'sla_objective_compliance_ratio{{{_BOTH},window=~"{windows}"}}',
                "{{service}} {{objective}} {{window}}",
                instant=True,
            )
        )
        .thresholds(_wrap(_steps("text")))
    )
    recorded = (
        _timeseries(
            "Compliance over time (Prometheus, 1 h)",
            f"`{sli_record('1h')}` from the generated recording rules: good / valid over "
            "the last hour, computed by Prometheus from the daemon's counters. Dashed: "
            "the target.",
            "percentunit",
            12,
            9,
        )
        .with_target(_query(f"{sli_record('1h')}{{{_BOTH}}}", "{{service}} {{objective}}"))
        .thresholds(_wrap(_steps("text")))
    )
    for service, objective in objectives_of(config):
        name = _series(service.name, objective.name)
        steps = compliance_steps(objective.target_ratio)
        per_window = per_window.override_by_regexp(_regex_prefix(name), _override_thresholds(steps))
        recorded = recorded.override_by_name(name, _line_thresholds(steps))
    timeline = (
        statetimeline.Panel()
        .title("Availability timeline")
        .description(
            "Per service: up (last exchange of every probe succeeded), down, "
            "maintenance (announced window open); gaps are unmonitored (no scrape)."
        )
        .datasource(_DATASOURCE)
        .unit("none")
        .span(12)
        .height(7)
        .show_value(common.VisibilityMode.NEVER)
        .thresholds(_wrap(_steps("text")))
        .mappings(
            [
                *_mappings(
                    {"0": ("down", "red"), "1": ("up", "green"), "2": ("maintenance", "blue")}
                ),
                model.SpecialValueMap(
                    options=model.DashboardSpecialValueMapOptions(
                        match=model.SpecialValueMatch.NULL,
                        result=model.ValueMappingResult(text="unmonitored", color="#808080"),
                    )
                ),
            ]
        )
        .with_target(
            _query(
                f"max by (service) (sla_maintenance_active{{{_SERVICE}}}) * 2"
                f" + (1 - max by (service) (sla_maintenance_active{{{_SERVICE}}}))"
                f" * min by (service) (sla_probe_up{{{_SERVICE}}})",
                "{{service}}",
            )
        )
    )
    minutes = (
        bargauge.Panel()
        .title("Availability time by state, last 24 h")
        .description(
            "Sealed minutes of each availability objective by what they counted "
            "as: up, down, unmonitored, outside_hours, maintenance, "
            "provider_unavailable."
        )
        .datasource(_DATASOURCE)
        .unit("s")
        .span(12)
        .height(7)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .orientation(common.VizOrientation.HORIZONTAL)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(_wrap(_steps("blue")))
        .with_target(
            _query(
                f'sla_availability_window_seconds{{{_BOTH},window="24h"}} > 0',
                "{{service}} {{objective}} {{state}}",
                instant=True,
            )
        )
    )
    attempts = (
        _timeseries(
            "Attempts by outcome",
            "Probe exchanges per second by outcome; every attempt is a valid SLA event.",
            "reqps",
        )
        .stacking(common_builder.StackingConfig().mode(common.StackingMode.NORMAL))
        .with_target(
            _query(
                "sum by (service, outcome) (rate(sla_probe_attempts_total"
                f"{{{_SERVICE}}}[$__rate_interval]))",
                "{{service}} {{outcome}}",
            )
        )
        .with_target(
            _query(
                "sum by (service, error) (rate(sla_probe_failures_total"
                f"{{{_SERVICE}}}[$__rate_interval]))",
                "{{service}} failed: {{error}}",
                ref="B",
            )
        )
    )
    burndown = (
        _timeseries(
            "Error budget burn-down, this month",
            "Budget left for the calendar month (1 untouched, 0 spent); dashed: 0 and the "
            f"{AMBER_BUDGET:.0%} warning level.",
            "percentunit",
        )
        .with_target(
            _query(
                f'sla_error_budget_remaining_ratio{{{_BOTH},window="month"}}',
                "{{service}} {{objective}}",
            )
        )
        .thresholds(_wrap(_budget_steps()))
        .thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    )
    burn = (
        _timeseries(
            "Burn rate (1 h and 6 h)",
            "Bad ratio over the allowed bad ratio; dashed lines: 1 and the fastest "
            "configured burn-rate alert factor.",
            "suffix:x",
        )
        .with_target(
            _query(
                f'sla_error_budget_burn_rate{{{_BOTH},window=~"1h|6h"}}',
                "{{service}} {{objective}} {{window}}",
            )
        )
        .thresholds(_wrap(_burn_steps(config)))
        .thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    )
    board = board.with_row(_row("Latency"))
    board = board.with_panel(heat).with_panel(quantiles)
    board = board.with_row(_row("Compliance"))
    board = board.with_panel(per_window).with_panel(recorded)
    board = board.with_row(_row("Availability"))
    board = board.with_panel(timeline).with_panel(minutes)
    board = board.with_row(_row("Traffic and error budget"))
    return board.with_panel(attempts).with_panel(burndown).with_panel(burn)


def _lowest_scale(config: Config) -> float:
    """Bar gauges start where ten times the loosest budget is gone (0.9 for 99 %)."""
    targets = [o.target_ratio for _, o in objectives_of(config)] or [0.99]
    return max(0.0, round(1 - 10 * (1 - min(targets)), 6))


# --- Monitor health -------------------------------------------------------------------------


def _monitor_health(config: Config) -> builder.Dashboard:
    board = _dashboard(
        "sla-monitor-health",
        "SLA monitor health",
        "The monitor itself: schedule lateness, queues, store writes, notifiers, broker "
        "connections. A monitor that is down leaves minutes unmonitored, never counted.",
    )

    def quantiles(metric: str, extra: str = "") -> list[prom.Dataquery]:
        return [
            _query(
                f"histogram_quantile({q}, sum by (le, instance) "
                f"(rate({metric}_bucket{extra}[$__rate_interval])))",
                f"p{q * 100:g} {{{{instance}}}}",
                ref=ref,
            )
            for ref, q in (("A", 0.5), ("B", 0.99))
        ]

    lag = _timeseries(
        "Probe lag (schedule lateness)",
        "How late probe runs start against their schedule; a late run still counts, "
        "but lateness above the interval means the monitor is overloaded.",
        "s",
    )
    for query in quantiles("sla_scheduler_lag_seconds"):
        lag = lag.with_target(query)
    lag = lag.with_target(
        _query(
            "sum by (service, probe) (rate(sla_scheduler_skipped_runs_total"
            f"{{{_SERVICE}}}[$__rate_interval])) or vector(0)",
            "skipped runs/s {{service}} {{probe}}",
            ref="C",
        )
    )
    queue = (
        _timeseries(
            "Queue depth",
            "Results waiting for the collector, and events waiting for each notifier.",
            "short",
        )
        .with_target(_query("sla_collector_queue_depth", "collector {{instance}}"))
        .with_target(_query("sla_notifier_queue_depth", "notifier {{notifier}}", ref="B"))
    )
    store = _timeseries(
        "Store write latency",
        "Duration of one store transaction (a batch of results and its rollups).",
        "s",
    )
    for query in quantiles("sla_store_write_seconds"):
        store = store.with_target(query)
    throughput = (
        _timeseries(
            "Results and store writes",
            "Results taken by the collector and committed to SQLite per second; store "
            "errors (the batch is kept and retried).",
            "ops",
        )
        .with_target(
            _query("rate(sla_collector_results_total[$__rate_interval])", "collected {{instance}}")
        )
        .with_target(
            _query(
                "rate(sla_store_written_results_total[$__rate_interval])",
                "written {{instance}}",
                ref="B",
            )
        )
        .with_target(
            _query("rate(sla_store_errors_total[$__rate_interval])", "errors {{instance}}", ref="C")
        )
    )
    notifiers = (
        _timeseries(
            "Notifier failures",
            "Failed delivery attempts (each retry counts) and events given up on, per "
            "notifier of the built-in alerting.",
            "short",
        )
        .with_target(
            _query(
                "sum by (notifier) (increase(sla_notifier_failures_total[$__rate_interval]))",
                "failed attempts {{notifier}}",
            )
        )
        .with_target(
            _query(
                "sum by (notifier) (increase(sla_notifier_dropped_total[$__rate_interval]))",
                "dropped {{notifier}}",
                ref="B",
            )
        )
        .thresholds(_wrap(_steps("green", (1.0, "red"))))
    )
    brokers = (
        statetimeline.Panel()
        .title("Broker connections")
        .description("1 while the MQTT connection to the broker is up.")
        .datasource(_DATASOURCE)
        .unit("none")
        .span(12)
        .height(6)
        .show_value(common.VisibilityMode.NEVER)
        .thresholds(_wrap(_steps("red", (1.0, "green"))))
        .mappings(_mappings({"0": ("disconnected", "red"), "1": ("connected", "green")}))
        .with_target(_query("sla_broker_connected", "{{broker}} {{instance}}"))
    )
    scrape = (
        statetimeline.Panel()
        .title("Monitor scraped by Prometheus")
        .description(
            f"Prometheus's `up` for job {SCRAPE_JOB!r}: while it is 0 or missing, "
            "minutes are unmonitored."
        )
        .datasource(_DATASOURCE)
        .unit("none")
        .span(12)
        .height(6)
        .show_value(common.VisibilityMode.NEVER)
        .thresholds(_wrap(_steps("red", (1.0, "green"))))
        .mappings(_mappings({"0": ("down", "red"), "1": ("up", "green")}))
        .with_target(_query(f'up{{job="{SCRAPE_JOB}"}}', "{{instance}}"))
    )
    board = board.with_row(_row("Probing"))
    board = board.with_panel(lag).with_panel(queue)
    board = board.with_row(_row("Store"))
    board = board.with_panel(store).with_panel(throughput)
    board = board.with_row(_row("Alerting and connections"))
    return board.with_panel(notifiers).with_panel(brokers).with_panel(scrape)


# --- output ---------------------------------------------------------------------------------


def _finish(board: builder.Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON data, with panel ids and Prometheus annotation fields."""
    data: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    for number, panel in enumerate(data["panels"], start=1):
        panel["id"] = number
    by_name = {name: (title, tags) for name, _, title, tags, _ in _ANNOTATIONS}
    for annotation in data["annotations"]["list"]:
        title, tags = by_name[annotation["name"]]
        # Grafana's Prometheus annotation fields (not modelled by the SDK).
        annotation.update(
            step="60s", titleFormat=title, textFormat="", tagKeys=tags, useValueForTime=False
        )
    return data


def build_dashboards(config: Config) -> dict[str, dict[str, Any]]:
    """The three dashboards as JSON data, by uid."""
    boards = (_overview(config), _service_detail(config), _monitor_health(config))
    built = [_finish(board) for board in boards]
    return {data["uid"]: data for data in built}


def render_dashboard(data: Mapping[str, Any]) -> str:
    """Stable JSON text (same config, same bytes)."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_dashboards(config: Config, out_dir: Path) -> list[Path]:
    """Write the three dashboards into ``out_dir`` (created if missing); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for uid, data in build_dashboards(config).items():
        path = out_dir / FILES[uid]
        path.write_text(render_dashboard(data), encoding="utf-8")
        paths.append(path)
    return paths


__all__ = [
    "FILES",
    "GRAFANA_BUILTINS",
    "GRAFANA_VERSION",
    "SCRAPE_JOB",
    "DashboardError",
    "build_dashboards",
    "compliance_steps",
    "objectives_of",
    "promql_regex",
    "render_dashboard",
    "write_dashboards",
]
