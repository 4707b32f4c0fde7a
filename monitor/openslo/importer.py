"""OpenSLO v1 objectives read into sla-monitor config (``sla-monitor import-openslo FILE``).

What maps: a ratio SLI over a latency histogram (``good`` selects one ``le`` bucket, so
the bucket bound is the threshold) or one this project exported (its ``sla-monitor/``
annotations); an availability SLO (``sla-monitor/kind: availability``, or
``Timeslices`` of one minute, a minute being down below ``timeSliceTarget``); one
objective per SLO with ``target`` or ``targetPercent``; a calendar month or a rolling 30
days; burn-rate alert policies whose look-back is one of the alert windows. Anything
else is an ``OpenSloImportError`` naming the file, the document and the field.

The result is a config fragment: the services' objectives (and burn-rate alerts), to be
given probes and merged into a config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from monitor.errors import SlaMonitorError
from monitor.openslo.export import (
    DOWN_RATIO_KEY,
    KIND_KEY,
    OBJECTIVE_KEY,
    SERVICE_KEY,
    THRESHOLD_KEY,
)
from monitor.openslo.model import SLI, SLO, AlertCondition, AlertPolicy, InlineSLI, parse_document
from monitor.sla.windows import ALERT_WINDOWS

_LE = re.compile(r'_bucket\{[^}]*\ble="([0-9.eE+-]+)"')
#: Short windows for a long look-back, as the SRE workbook pairs them (long / 12).
_SHORT = {"1h": "5m", "6h": "30m", "24h": "2h", "3d": "6h"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class OpenSloImportError(SlaMonitorError):
    """An OpenSLO document that cannot become config."""


@dataclass(frozen=True)
class _Where:
    path: Path
    index: int
    kind: str
    name: str

    def error(self, field: str, message: str) -> OpenSloImportError:
        return OpenSloImportError(
            f"{self.path}: document {self.index} ({self.kind} {self.name!r}): {field}: {message}"
        )


def _load(path: Path) -> list[tuple[_Where, BaseModel]]:
    try:
        bodies = [b for b in yaml.safe_load_all(path.read_text(encoding="utf-8")) if b is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise OpenSloImportError(f"{path}: cannot read: {exc}") from exc
    documents = []
    for index, body in enumerate(bodies, start=1):
        kind = body.get("kind", "?") if isinstance(body, dict) else "?"
        name = "?"
        if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
            name = str(body["metadata"].get("name", "?"))
        where = _Where(path, index, str(kind), name)
        try:
            documents.append((where, parse_document(body)))
        except ValidationError as exc:
            first = exc.errors()[0]
            # The location starts with the union member's name: drop it.
            field = ".".join(str(p) for p in first["loc"][2:]) or "document"
            raise where.error(field, first["msg"]) from exc
    return documents


def import_openslo(path: Path) -> dict[str, Any]:
    """The config fragment the OpenSLO documents of ``path`` describe."""
    documents = _load(path)
    slis = {d.metadata.name: d for _, d in documents if isinstance(d, SLI)}
    policies = {d.metadata.name: (w, d) for w, d in documents if isinstance(d, AlertPolicy)}
    services: dict[str, list[dict[str, Any]]] = {}
    zones: set[str] = set()
    used_policies: list[str] = []
    for where, document in documents:
        if not isinstance(document, SLO):
            continue
        service, objective, zone = _objective(where, document, slis)
        services.setdefault(service, []).append(objective)
        if zone is not None:
            zones.add(zone)
        for ref in document.spec.alertPolicies:
            name = ref.metadata.name if isinstance(ref, AlertPolicy) else ref.alertPolicyRef
            if name not in policies and not isinstance(ref, AlertPolicy):
                raise where.error("spec.alertPolicies", f"no AlertPolicy named {name!r}")
            if name not in used_policies:
                used_policies.append(name)
    if not services:
        raise OpenSloImportError(f"{path}: no SLO document")
    if len(zones) > 1:
        raise OpenSloImportError(
            f"{path}: calendar windows in several time zones ({', '.join(sorted(zones))}): "
            "sla-monitor reports in one"
        )
    fragment: dict[str, Any] = {}
    if zones:
        fragment["timezone"] = zones.pop()
    burn = [_burn_rate(*policies[name]) for name in used_policies if name in policies]
    if burn:
        fragment["alerting"] = {"burn_rate": burn}
    fragment["services"] = [
        {"name": name, "objectives": objectives} for name, objectives in services.items()
    ]
    return fragment


def _objective(
    where: _Where, slo: SLO, slis: dict[str, SLI]
) -> tuple[str, dict[str, Any], str | None]:
    spec = slo.spec
    indicator: SLI | InlineSLI | None = spec.indicator
    if indicator is None:
        if spec.indicatorRef is None:
            raise where.error("spec.indicatorRef", "give indicator or indicatorRef")
        indicator = slis.get(spec.indicatorRef)
        if indicator is None:
            raise where.error("spec.indicatorRef", f"no SLI named {spec.indicatorRef!r}")
    if len(spec.objectives) != 1:
        raise where.error("spec.objectives", "composite SLOs (several objectives) do not map")
    goal = spec.objectives[0]
    target = goal.targetPercent if goal.targetPercent is not None else (goal.target or 0) * 100
    annotations = {**(indicator.metadata.annotations or {}), **(slo.metadata.annotations or {})}
    service = annotations.get(SERVICE_KEY, spec.service)
    name = annotations.get(OBJECTIVE_KEY, slo.metadata.name.removeprefix(f"{spec.service}-"))
    for field, value in (("spec.service", service), ("metadata.name", name)):
        if not _NAME.match(value):
            raise where.error(field, f"{value!r} is not a name sla-monitor accepts")
    zone = _time_window(where, slo)
    objective: dict[str, Any] = {"name": name}
    kind = annotations.get(KIND_KEY)
    ratio = indicator.spec.ratioMetric
    if ratio is None:
        raise where.error(
            "spec.indicator",
            "a thresholdMetric SLI does not map: sla-monitor's objectives are ratios",
        )
    if kind == "availability" or (kind is None and spec.budgetingMethod == "Timeslices"):
        objective["kind"] = "availability"
        if DOWN_RATIO_KEY in annotations:
            objective["down_ratio"] = float(annotations[DOWN_RATIO_KEY])
        elif goal.timeSliceWindow not in ("1m", 1, 1.0):
            raise where.error(
                "spec.objectives[0].timeSliceWindow", "availability is decided per minute: use 1m"
            )
        else:
            if goal.timeSliceTarget is None or goal.timeSliceTarget >= 1:
                raise where.error("spec.objectives[0].timeSliceTarget", "give a target below 1")
            objective["down_ratio"] = round(1 - goal.timeSliceTarget, 12)
    elif kind == "latency" or kind is None:
        if spec.budgetingMethod != "Occurrences":
            raise where.error(
                "spec.budgetingMethod", "a latency objective counts occurrences (Occurrences)"
            )
        threshold = annotations.get(THRESHOLD_KEY) or _bucket_bound(where, ratio.good)
        objective["kind"] = "latency"
        objective["threshold"] = f"{float(threshold):g}s"
    else:
        raise where.error(f"metadata.annotations.{KIND_KEY}", f"unknown kind {kind!r}")
    objective["target"] = round(target, 9)
    return service, objective, zone


def _bucket_bound(where: _Where, good: Any) -> str:
    query = "" if good is None else str(good.metricSource.spec.get("query", ""))
    match = _LE.search(query)
    if match is None:
        raise where.error(
            "spec.indicator.ratioMetric.good",
            'cannot tell a latency threshold: select one histogram bucket (le="...") '
            "or annotate sla-monitor/kind",
        )
    return match.group(1)


def _time_window(where: _Where, slo: SLO) -> str | None:
    """The calendar's time zone; a period other than a calendar month or 30 days fails."""
    windows = slo.spec.timeWindow or []
    if not windows:
        return None
    window = windows[0]
    rolling = window.isRolling if window.isRolling is not None else window.calendar is None
    if rolling and window.duration in ("30d",):
        return None
    if not rolling and window.duration == "1M" and window.calendar is not None:
        return window.calendar.timeZone
    raise where.error(
        "spec.timeWindow[0].duration",
        f"{window.duration} ({'rolling' if rolling else 'calendar'}) does not map: "
        "sla-monitor reports per calendar month (1M) and over rolling windows up to 30d",
    )


def _burn_rate(where: _Where, policy: AlertPolicy) -> dict[str, Any]:
    condition = policy.spec.conditions[0]
    if not isinstance(condition, AlertCondition):
        raise where.error(
            "spec.conditions[0]", f"condition {condition.conditionRef!r} must be inlined"
        )
    rule = condition.spec.condition
    if rule.op not in ("gt", "gte"):
        raise where.error("spec.conditions[0].spec.condition.op", "a burn-rate alert fires above")
    long_window = {"1d": "24h"}.get(rule.lookbackWindow, rule.lookbackWindow)
    if long_window not in _SHORT:
        known = ", ".join(w for w in ALERT_WINDOWS if w in _SHORT)
        raise where.error(
            "spec.conditions[0].spec.condition.lookbackWindow",
            f"{rule.lookbackWindow} is not one of {known}",
        )
    return {
        "name": policy.metadata.name,
        "severity": condition.spec.severity,
        "factor": rule.threshold,
        "long_window": long_window,
        "short_window": _SHORT[long_window],
    }


def render_fragment(fragment: dict[str, Any], source: Path) -> str:
    """The fragment as YAML, with a header saying what is left to do."""
    header = (
        f"# Objectives imported from {source} by `sla-monitor import-openslo`.\n"
        "# Give each service its probes and merge into your config before use.\n"
    )
    return header + yaml.safe_dump(fragment, sort_keys=False, default_flow_style=False)


__all__ = ["OpenSloImportError", "import_openslo", "render_fragment"]
