"""What every notifier shares: the alert event (the webhook body documented in
``monitor.alerting.notifiers``), the ``Notifier`` protocol, secrets from the environment,
the HMAC signature and the JSON POST."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from monitor.errors import NotifierError

logger = logging.getLogger(__name__)

#: Version of the webhook JSON body; bump only on an incompatible change.
SCHEMA_VERSION = 1

#: What happened to an alert.
EventKind = Literal["firing", "repeat", "escalated", "acknowledged", "resolved"]

#: Events that mean "still a problem" (logged at WARNING, sent to Alertmanager as active).
_ACTIVE_KINDS = frozenset({"firing", "repeat", "escalated"})

_USER_AGENT = "sla-monitor/0.1"


def _iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds and a ``Z`` (also RFC 3339)."""
    if ts is None:
        return None
    text = dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


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
        """The JSON body of a webhook (schema in the module docstring and the README)."""
        return {
            "version": SCHEMA_VERSION,
            "kind": self.kind,
            "alert_id": self.alert_id,
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "severity": self.severity,
            "service": self.service,
            "objective": self.objective,
            "summary": self.summary,
            "description": self.description,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "escalation_step": self.escalation_step,
            "value": self.value,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
        }


class Notifier(Protocol):
    """Delivers one event; raises ``monitor.errors.NotifierError`` when it cannot."""

    name: str

    async def send(self, event: AlertEvent) -> None:
        """Deliver ``event`` once (the dispatcher retries)."""
        ...

    async def aclose(self) -> None:
        """Release clients."""
        ...


def _secret_from_env(notifier: str, variable: str | None) -> str | None:
    """The value of ``variable`` (None when not configured); NotifierError when unset."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if value is None:
        raise NotifierError(f"notifier {notifier!r}: environment variable {variable} is not set")
    return value


def sign(secret: str, body: bytes) -> str:
    """The ``X-SLA-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _http_reason(exc: httpx.HTTPError) -> str:
    """A short reason for a failed request: timeout vs transport error."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout ({type(exc).__name__})"
    detail = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {detail}"[:200]


async def _post_json(
    client: httpx.AsyncClient, url: str, body: bytes, headers: Mapping[str, str]
) -> None:
    """POST ``body``; NotifierError unless the answer is 2xx."""
    try:
        response = await client.post(url, content=body, headers=dict(headers))
    except httpx.HTTPError as exc:
        raise NotifierError(_http_reason(exc)) from exc
    if not response.is_success:
        snippet = response.text[:120].strip()
        raise NotifierError(f"HTTP {response.status_code}" + (f": {snippet}" if snippet else ""))
