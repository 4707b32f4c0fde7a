"""Notifiers: how alert events reach people and systems (webhook, Alertmanager, email,
log), and the dispatcher that retries them without ever blocking the daemon.

SKELETON — the value type and the protocol below are the interface; being implemented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

#: What happened to an alert.
EventKind = Literal["firing", "repeat", "escalated", "acknowledged", "resolved"]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One notification about one alert.

    Attributes:
        kind: firing (first notice), repeat (still firing after the repeat interval),
            escalated (an escalation step was reached), acknowledged, resolved.
        alert_id: the alert instance (fingerprint + when it started); ack uses it.
        fingerprint: stable across restarts for the same rule, service and objective.
        rule: the alert rule ("burn-14x", "month-forecast", "month-breach", "service-down").
        severity: "page", "ticket", ... (maps to an escalation policy).
        service: the service concerned.
        objective: the objective concerned, when there is one.
        summary: one line for humans.
        description: a few lines: the figures that made it fire.
        labels: identifying labels (alertname, severity, service, objective, ...).
        annotations: summary, description and links.
        started_at: UTC epoch seconds when the alert started firing.
        ended_at: UTC epoch seconds when it resolved (resolved events only).
        escalation_step: index of the escalation step this notice belongs to.
        value: the figure that crossed the threshold (burn rate, compliance), if any.
    """

    kind: EventKind
    alert_id: str
    fingerprint: str
    rule: str
    severity: str
    service: str
    objective: str | None
    summary: str
    description: str
    started_at: float
    ended_at: float | None = None
    escalation_step: int = 0
    value: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of a webhook (documented in the README)."""
        raise NotImplementedError


class Notifier(Protocol):
    """Delivers one event; raises ``monitor.errors.NotifierError`` when it cannot."""

    name: str

    async def send(self, event: AlertEvent) -> None:
        """Deliver ``event`` once (the dispatcher retries)."""
        ...

    async def aclose(self) -> None:
        """Release clients."""
        ...
