"""The config's objectives as OpenSLO v1 documents (``sla-monitor rules --format openslo``).

Per service a ``Service``; per objective an ``SLI`` (a ratio of the daemon's
post-exclusion counters, so any OpenSLO tool counts what the daemon counts), an ``SLO``
over the calendar month in the config's time zone (the contract's period), and one
``AlertPolicy`` per burn-rate alert of the built-in path. What OpenSLO has no field for
(the latency threshold, how an availability minute is decided) is in annotations under
``sla-monitor/``, which ``importer`` reads back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.config import AvailabilityObjective, Config, LatencyObjective, Objective, ServiceConfig
from monitor.generate.rules import prometheus_duration, sli_series
from monitor.openslo.model import API_VERSION, parse_document

#: The file ``write_openslo`` writes.
OPENSLO_FILE = "sla-monitor.openslo.yaml"
#: Annotation keys of what OpenSLO has no field for.
KIND_KEY = "sla-monitor/kind"
SERVICE_KEY = "sla-monitor/service"
OBJECTIVE_KEY = "sla-monitor/objective"
THRESHOLD_KEY = "sla-monitor/threshold-seconds"
DOWN_RATIO_KEY = "sla-monitor/down-ratio"
#: Any start on a month's first midnight makes a calendar-month window.
_MONTH_START = "2020-01-01 00:00:00"


def document_name(*parts: str) -> str:
    """An RFC 1123 name from config names (which also allow ``_`` and ``.``)."""
    text = "-".join(parts).lower().replace("_", "-").replace(".", "-")
    return text[:63].strip("-")


def _source(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}


def _sli(service: ServiceConfig, objective: Objective) -> dict[str, Any]:
    series = sli_series(service, objective)
    annotations: dict[str, str] = {
        KIND_KEY: str(objective.kind),
        SERVICE_KEY: service.name,
        OBJECTIVE_KEY: objective.name,
    }
    if isinstance(objective, LatencyObjective):
        annotations[THRESHOLD_KEY] = repr(float(objective.threshold))
        description = f"Results within {objective.threshold:g} s over all results counted"
    else:
        assert isinstance(objective, AvailabilityObjective)
        annotations[DOWN_RATIO_KEY] = repr(objective.down_ratio)
        description = "Up time over up and down time (whole minutes)"
    return {
        "apiVersion": API_VERSION,
        "kind": "SLI",
        "metadata": {
            "name": document_name(service.name, objective.name),
            "displayName": f"{service.name} {objective.name}",
            "annotations": annotations,
        },
        "spec": {
            "description": description,
            "ratioMetric": {
                "counter": True,
                "good": _source(series.good),
                "total": _source(series.valid),
            },
        },
    }


def _policies(config: Config) -> list[dict[str, Any]]:
    policies = []
    for burn in config.alerting.burn_rate:
        after = prometheus_duration(config.alerting.pending_for)
        condition: dict[str, Any] = {
            "kind": "burnrate",
            "op": "gt",
            "threshold": burn.factor,
            "lookbackWindow": _shorthand(burn.long_window),
        }
        if after != "0s":
            condition["alertAfter"] = _shorthand(after)
        policies.append(
            {
                "apiVersion": API_VERSION,
                "kind": "AlertPolicy",
                "metadata": {"name": document_name(burn.name)},
                "spec": {
                    "description": (
                        f"Burn rate above {burn.factor:g} over {burn.long_window} and "
                        f"{burn.short_window} (sla-monitor's rule {burn.name})"
                    ),
                    "alertWhenBreaching": True,
                    "alertWhenResolved": True,
                    "conditions": [
                        {
                            "kind": "AlertCondition",
                            "metadata": {"name": document_name(burn.name, "condition")},
                            "spec": {"severity": burn.severity, "condition": condition},
                        }
                    ],
                    "notificationTargets": [],
                },
            }
        )
    return policies


def _shorthand(duration: str) -> str:
    """A Prometheus duration (``24h``, ``90s``) in OpenSLO's shorthand (minutes at least)."""
    seconds = _seconds(duration)
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{max(1, round(seconds / 60))}m"


def _seconds(duration: str) -> int:
    total, number = 0, ""
    sizes = {"d": 86_400, "h": 3600, "m": 60, "s": 1}
    for char in duration:
        if char.isdigit():
            number += char
        else:
            total += int(number) * sizes[char]
            number = ""
    return total


def build_openslo(config: Config) -> list[dict[str, Any]]:
    """Every document, validated against the OpenSLO v1 model before it is returned."""
    documents: list[dict[str, Any]] = []
    policies = _policies(config)
    documents.extend(policies)
    for service in config.services:
        if not service.objectives:
            continue
        documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "Service",
                "metadata": {"name": document_name(service.name), "displayName": service.name},
                "spec": {"description": service.description or service.name},
            }
        )
        for objective in service.objectives:
            sli = _sli(service, objective)
            documents.append(sli)
            documents.append(
                {
                    "apiVersion": API_VERSION,
                    "kind": "SLO",
                    "metadata": {
                        "name": document_name(service.name, objective.name),
                        "displayName": f"{service.name} {objective.name}",
                        "annotations": dict(sli["metadata"]["annotations"]),
                    },
                    "spec": {
                        "description": sli["spec"]["description"],
                        "service": document_name(service.name),
                        "indicatorRef": sli["metadata"]["name"],
                        "timeWindow": [
                            {
                                "duration": "1M",
                                "isRolling": False,
                                "calendar": {
                                    "startTime": _MONTH_START,
                                    "timeZone": config.timezone,
                                },
                            }
                        ],
                        "budgetingMethod": "Occurrences",
                        "objectives": [
                            {"displayName": objective.name, "targetPercent": objective.target}
                        ],
                        "alertPolicies": [
                            {"alertPolicyRef": p["metadata"]["name"]} for p in policies
                        ],
                    },
                }
            )
    for document in documents:
        parse_document(document)
    return documents


def render_openslo(config: Config) -> str:
    """The documents as multi-document YAML (stable: same config, same bytes)."""
    header = (
        "# OpenSLO v1 documents generated by `sla-monitor rules --format openslo`.\n"
        "# Do not edit: change the config and generate again.\n"
    )
    body = yaml.safe_dump_all(
        build_openslo(config), sort_keys=False, default_flow_style=False, width=1_000_000
    )
    return header + body


def write_openslo(config: Config, out_dir: Path) -> list[Path]:
    """Write the documents into ``out_dir`` (created if missing); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / OPENSLO_FILE
    path.write_text(render_openslo(config), encoding="utf-8")
    return [path]


__all__ = [
    "DOWN_RATIO_KEY",
    "KIND_KEY",
    "OBJECTIVE_KEY",
    "OPENSLO_FILE",
    "SERVICE_KEY",
    "THRESHOLD_KEY",
    "build_openslo",
    "document_name",
    "render_openslo",
    "write_openslo",
]
