"""Alertmanager's webhook payload (``version: "4"``) for one alert event, so a receiver
written for Alertmanager (``webhook_configs``) reads the daemon's alerts unchanged.

Shape as Alertmanager 0.25 sends it: ``status``, ``receiver``, ``groupLabels``,
``commonLabels``, ``commonAnnotations``, ``externalURL``, ``groupKey``,
``truncatedAlerts`` and ``alerts`` (each with ``status``, ``labels``, ``annotations``,
``startsAt``, ``endsAt``, ``generatorURL``, ``fingerprint``). The fingerprint is
Alertmanager's own: FNV-1a 64 over the sorted label names and values.
"""

from __future__ import annotations

from typing import Any

from monitor.alerting.notifiers.base import AlertEvent, _iso

#: What Alertmanager writes for "no end yet".
_NO_END = "0001-01-01T00:00:00Z"
#: The labels a group is keyed by, as a typical route's ``group_by``.
GROUP_BY = ("alertname", "service", "objective")
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (prometheus/common model.LabelSet)."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
            value = ((value ^ _SEPARATOR) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def _group_key(group: dict[str, str]) -> str:
    """As Alertmanager's root route writes it: ``{}:{alertname="...", ...}``."""
    inner = ", ".join(f"{k}={_quoted(v)}" for k, v in sorted(group.items()))
    return f"{{}}:{{{inner}}}"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def webhook_body(event: AlertEvent, receiver: str, external_url: str = "") -> dict[str, Any]:
    """The Alertmanager webhook body for ``event`` (a group of one alert)."""
    status = "resolved" if event.kind == "resolved" else "firing"
    labels = dict(event.labels)
    annotations = {k: v for k, v in event.annotations.items() if v}
    annotations.update(summary=event.summary, description=event.description)
    # What the daemon's event was (firing, repeat, escalated, acknowledged, resolved):
    # Alertmanager has only firing and resolved.
    annotations["sla_monitor_event"] = event.kind
    if event.value is not None:
        annotations.setdefault("value", f"{event.value:g}")
    ends = _iso(event.ended_at) if status == "resolved" and event.ended_at else _NO_END
    group = {k: labels[k] for k in GROUP_BY if k in labels}
    return {
        "version": "4",
        "groupKey": _group_key(group),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": _iso(event.started_at),
                "endsAt": ends,
                "generatorURL": external_url,
                "fingerprint": fingerprint(labels),
            }
        ],
    }


__all__ = ["GROUP_BY", "fingerprint", "webhook_body"]
