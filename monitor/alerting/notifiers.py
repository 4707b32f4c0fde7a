"""Notifiers: how alert events reach people and systems (webhook, Alertmanager, email,
log), and the dispatcher that retries them without ever blocking the daemon.

Webhook body (``AlertEvent.to_dict()``, JSON, ``Content-Type: application/json``):

=================  ===============  ==========================================================
key                type             meaning
=================  ===============  ==========================================================
version            int              schema version, ``1``; bumped only on incompatible change
kind               string           firing | repeat | escalated | acknowledged | resolved
alert_id           string           this alert instance (fingerprint + start); used to ack
fingerprint        string           stable for the same rule, service and objective
rule               string           burn-14x, month-forecast, month-breach, service-down, ...
severity           string           page, ticket, ... (selects the escalation policy)
service            string           the service concerned
objective          string | null    the objective concerned, when there is one
summary            string           one line for humans
description        string           a few lines: the figures that made it fire
started_at         string           ISO 8601 UTC, e.g. ``2026-03-01T12:00:00.000Z``
ended_at           string | null    ISO 8601 UTC when resolved, else null
escalation_step    int              index of the escalation step this notice belongs to
value              number | null    the figure that crossed the threshold, if any
labels             object           identifying labels (string to string)
annotations        object           summary, description, links (string to string)
=================  ===============  ==========================================================

When the webhook has ``secret_env``, two headers are added: ``X-SLA-Timestamp`` (Unix
seconds when sent) and ``X-SLA-Signature: sha256=<hex>``, the HMAC-SHA256 of the exact
body bytes keyed with the secret. Receivers must verify against the raw body, not a
re-serialisation of the parsed JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import random
import re
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal, Protocol

import aiosmtplib
import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.config import (
    AlertmanagerNotifierConfig,
    EmailNotifierConfig,
    LogNotifierConfig,
    NotifierConfig,
    WebhookNotifierConfig,
)
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


class WebhookNotifier:
    """POST the event's JSON (``AlertEvent.to_dict``) to a URL, HMAC-signed when configured."""

    def __init__(
        self,
        name: str,
        config: WebhookNotifierConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._url = config.url
        self._secret = _secret_from_env(name, config.secret_env)
        self._client = httpx.AsyncClient(
            timeout=config.timeout, transport=transport, headers={"User-Agent": _USER_AGENT}
        )

    async def send(self, event: AlertEvent) -> None:
        """POST the event once; NotifierError on a non-2xx answer, transport error or timeout."""
        body = json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            headers["X-SLA-Timestamp"] = str(int(time.time()))
            headers["X-SLA-Signature"] = sign(self._secret, body)
        await _post_json(self._client, self._url, body, headers)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


_LABEL_NAME_BAD = re.compile(r"[^a-zA-Z0-9_]")


def _label_name(key: str) -> str:
    """A valid Prometheus/Alertmanager label name for ``key``."""
    name = _LABEL_NAME_BAD.sub("_", key)
    return f"_{name}" if not name or name[0].isdigit() else name


class AlertmanagerNotifier:
    """POST alerts to Alertmanager's ``/api/v2/alerts`` so it routes, groups and dedups them.

    Alertmanager expires an alert at its ``endsAt`` (or ``resolve_timeout``, 5 min by
    default, when none is given). Like Prometheus, this notifier therefore sends active
    alerts with ``endsAt = now + 4 * refresh_s`` and re-sends every active alert every
    ``refresh_s`` until a resolved event arrives, which is sent with ``endsAt = ended_at``.
    """

    def __init__(
        self,
        name: str,
        config: AlertmanagerNotifierConfig,
        *,
        refresh_s: float = 60.0,
        generator_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._url = config.url.rstrip("/") + "/api/v2/alerts"
        self._refresh_s = refresh_s
        self._generator_url = generator_url
        self._client = httpx.AsyncClient(
            timeout=config.timeout, transport=transport, headers={"User-Agent": _USER_AGENT}
        )
        # Active alerts by fingerprint, re-sent by the refresh task (their last event).
        self._active: dict[str, AlertEvent] = {}
        self._refresher: asyncio.Task[None] | None = None

    def payload(self, event: AlertEvent, now: float | None = None) -> dict[str, Any]:
        """The Alertmanager v2 alert for ``event`` (one element of the posted list)."""
        now = time.time() if now is None else now
        labels = {_label_name(k): v for k, v in event.labels.items() if v}
        labels.update(
            alertname=event.rule,
            severity=event.severity,
            service=event.service,
            fingerprint=event.fingerprint,
        )
        if event.objective:
            labels["objective"] = event.objective
        annotations = {k: v for k, v in event.annotations.items() if v}
        annotations.update(summary=event.summary, description=event.description)
        if event.value is not None:
            annotations.setdefault("value", f"{event.value:g}")
        alert: dict[str, Any] = {
            "labels": labels,
            "annotations": annotations,
            "startsAt": _iso(event.started_at),
        }
        if event.kind == "resolved":
            alert["endsAt"] = _iso(event.ended_at if event.ended_at is not None else now)
        else:
            alert["endsAt"] = _iso(now + 4 * self._refresh_s)
        if self._generator_url:
            alert["generatorURL"] = self._generator_url
        return alert

    async def send(self, event: AlertEvent) -> None:
        """POST the event as a one-alert list; NotifierError unless Alertmanager answers 2xx."""
        if event.kind == "resolved":
            self._active.pop(event.fingerprint, None)
        else:
            self._active[event.fingerprint] = event
            if self._refresher is None:
                self._refresher = asyncio.create_task(self._refresh_loop())
        await self._post([self.payload(event)])

    async def _post(self, alerts: list[dict[str, Any]]) -> None:
        body = json.dumps(alerts, separators=(",", ":"), ensure_ascii=False).encode()
        await _post_json(self._client, self._url, body, {"Content-Type": "application/json"})

    async def _refresh_loop(self) -> None:
        """Re-send active alerts so Alertmanager does not expire them between notices."""
        while True:
            await asyncio.sleep(self._refresh_s)
            if not self._active:
                continue
            try:
                await self._post([self.payload(e) for e in self._active.values()])
            except NotifierError as exc:
                logger.warning("notifier %s: refreshing active alerts failed: %s", self.name, exc)

    async def aclose(self) -> None:
        """Stop refreshing and close the HTTP client."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        await self._client.aclose()


def _one_line(text: str) -> str:
    """Collapse whitespace: a mail header must not contain a line break."""
    return " ".join(text.split())


class EmailNotifier:
    """Plain-text mail over SMTP (STARTTLS when configured; login from the environment)."""

    def __init__(
        self,
        name: str,
        config: EmailNotifierConfig,
        *,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self._config = config
        self._username = _secret_from_env(name, config.username_env)
        self._password = _secret_from_env(name, config.password_env)
        if (self._username is None) != (self._password is None):
            raise NotifierError(f"notifier {name!r}: set both username_env and password_env")
        # None means the system's trust store (aiosmtplib's default verification).
        self._tls_context = tls_context

    def message(self, event: AlertEvent) -> EmailMessage:
        """The mail for ``event``: subject ``[SEVERITY] KIND: summary``, text body."""
        config = self._config
        msg = EmailMessage()
        subject = f"[{event.severity.upper()}] {event.kind.upper()}: {event.summary}"
        msg["Subject"] = _one_line(subject)
        msg["From"] = config.sender
        msg["To"] = ", ".join(config.to)
        msg["Date"] = formatdate(usegmt=True)
        # An explicit domain: make_msgid would otherwise resolve the host's FQDN (slow).
        msg["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2])
        figures = [
            ("alert", event.rule),
            ("kind", event.kind),
            ("severity", event.severity),
            ("service", event.service),
            ("objective", event.objective or "-"),
            ("value", "-" if event.value is None else f"{event.value:g}"),
            ("started", _iso(event.started_at) or "-"),
            ("ended", _iso(event.ended_at) or "-"),
            ("escalation step", str(event.escalation_step)),
            ("alert id", event.alert_id),
            ("fingerprint", event.fingerprint),
        ]
        figures += [(key, value) for key, value in sorted(event.annotations.items())]
        lines = [event.summary, "", event.description.strip(), ""]
        lines += [f"{key + ':':<17}{value}" for key, value in figures]
        msg.set_content("\n".join(lines) + "\n")
        return msg

    async def send(self, event: AlertEvent) -> None:
        """Send the mail once; NotifierError on any SMTP, TLS or connection failure."""
        config = self._config
        try:
            await aiosmtplib.send(
                self.message(event),
                hostname=config.host,
                port=config.port,
                start_tls=config.starttls,
                use_tls=False,
                tls_context=self._tls_context,
                username=self._username,
                password=self._password,
                timeout=config.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise NotifierError(f"{type(exc).__name__}: {exc}"[:200]) from exc

    async def aclose(self) -> None:
        """Nothing to release: one SMTP connection per mail."""


class LogNotifier:
    """One log line per event: WARNING while it is a problem, INFO when resolved or acked."""

    def __init__(self, name: str, config: LogNotifierConfig | None = None) -> None:
        self.name = name

    async def send(self, event: AlertEvent) -> None:
        """Log the event; never fails."""
        level = logging.WARNING if event.kind in _ACTIVE_KINDS else logging.INFO
        logger.log(
            level,
            "alert %s %s severity=%s service=%s objective=%s value=%s step=%d id=%s: %s",
            event.kind,
            event.rule,
            event.severity,
            event.service,
            event.objective or "-",
            "-" if event.value is None else f"{event.value:g}",
            event.escalation_step,
            event.alert_id,
            _one_line(event.summary),
        )

    async def aclose(self) -> None:
        """Nothing to release."""


def build_notifiers(configs: Mapping[str, NotifierConfig]) -> dict[str, Notifier]:
    """One notifier per configured name; NotifierError when a secret's env var is unset."""
    notifiers: dict[str, Notifier] = {}
    for name, config in configs.items():
        match config:
            case WebhookNotifierConfig():
                notifiers[name] = WebhookNotifier(name, config)
            case AlertmanagerNotifierConfig():
                notifiers[name] = AlertmanagerNotifier(name, config)
            case EmailNotifierConfig():
                notifiers[name] = EmailNotifier(name, config)
            case LogNotifierConfig():
                notifiers[name] = LogNotifier(name, config)
    return notifiers


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one event for one notifier (the dispatcher's history)."""

    notifier: str
    event: AlertEvent
    attempts: int
    at: float
    error: str | None = None


class Dispatcher:
    """Delivers events to notifiers in the background, with retries, never blocking callers.

    Each notifier has a bounded queue and one worker: a slow notifier delays only its
    own events. A full queue drops its oldest event (newer notices matter more).
    Failed attempts are retried with exponential backoff and jitter, up to
    ``max_attempts``; then the event is dropped and counted.
    """

    def __init__(
        self,
        notifiers: Mapping[str, Notifier],
        registry: CollectorRegistry,
        *,
        max_attempts: int = 6,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 60.0,
        queue_size: int = 1000,
        history_size: int = 100,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1 or queue_size < 1:
            raise ValueError("max_attempts and queue_size must be at least 1")
        self.notifiers = dict(notifiers)
        self.max_attempts = max_attempts
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._rng = rng or random.Random()
        #: The last deliveries, oldest first.
        self.delivered: deque[Delivery] = deque(maxlen=history_size)
        #: The last events given up on (after max_attempts, on overflow or at shutdown).
        self.failed: deque[Delivery] = deque(maxlen=history_size)
        self._queues = {name: asyncio.Queue[AlertEvent](maxsize=queue_size) for name in notifiers}
        self._workers: list[asyncio.Task[None]] = []
        self._overflows = dict.fromkeys(self._queues, 0)
        self._closed = False
        self._sent = Counter(
            "sla_notifier_sent", "Events delivered, by notifier.", ["notifier"], registry=registry
        )
        self._failures = Counter(
            "sla_notifier_failures",
            "Failed delivery attempts (each retry counts), by notifier.",
            ["notifier"],
            registry=registry,
        )
        self._dropped = Counter(
            "sla_notifier_dropped",
            "Events given up on: max attempts reached, queue overflow or shutdown.",
            ["notifier"],
            registry=registry,
        )
        depth = Gauge(
            "sla_notifier_queue_depth",
            "Events waiting for their notifier.",
            ["notifier"],
            registry=registry,
        )
        for name, queue in self._queues.items():
            for counter in (self._sent, self._failures, self._dropped):
                counter.labels(name)  # expose zeros from the start
            depth.labels(name).set_function(queue.qsize)

    def submit(self, notifier_name: str, event: AlertEvent) -> None:
        """Queue ``event`` for ``notifier_name``; never blocks, never raises."""
        try:
            queue = self._queues.get(notifier_name)
            if queue is None or self._closed:
                why = "unknown notifier" if queue is None else "dispatcher closed"
                logger.error("notifier %s: %s, event dropped", notifier_name, why)
                self._give_up(notifier_name, event, 0, why)
                return
            if queue.full():
                oldest = queue.get_nowait()
                queue.task_done()
                self._give_up(notifier_name, oldest, 0, "queue overflow")
                overflowed = self._overflows[notifier_name] = self._overflows[notifier_name] + 1
                if overflowed % 100 == 1:  # a flood must not flood the log too
                    logger.warning(
                        "notifier %s: queue full, oldest event dropped (%d so far)",
                        notifier_name,
                        overflowed,
                    )
            queue.put_nowait(event)
        except Exception:  # a caller on the probing path must never see our bugs
            logger.exception("notifier %s: submit failed", notifier_name)

    async def start(self) -> None:
        """Start one worker per notifier."""
        if self._workers:
            return
        self._workers = [
            asyncio.create_task(self._work(name, queue), name=f"notifier-{name}")
            for name, queue in self._queues.items()
        ]

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Stop taking events, deliver what can be delivered within ``timeout_s``, then
        cancel the rest (counted as dropped) and close every notifier."""
        self._closed = True
        if self._workers:
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.gather(*(q.join() for q in self._queues.values()))
            except TimeoutError:
                logger.warning("notifiers not drained within %gs; dropping the rest", timeout_s)
            for task in self._workers:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers = []
        for name, queue in self._queues.items():
            while not queue.empty():
                self._give_up(name, queue.get_nowait(), 0, "shutdown")
                queue.task_done()
        for notifier in self.notifiers.values():
            try:
                await notifier.aclose()
            except Exception:
                logger.exception("notifier %s: close failed", notifier.name)

    def backoff_s(self, attempt: int) -> float:
        """Delay before retry ``attempt + 1``: exponential, capped, with "equal jitter"."""
        ceiling = min(self.backoff_max_s, self.backoff_min_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _give_up(self, name: str, event: AlertEvent, attempts: int, reason: str) -> None:
        self._dropped.labels(name).inc()
        self.failed.append(Delivery(name, event, attempts, time.time(), reason))

    async def _work(self, name: str, queue: asyncio.Queue[AlertEvent]) -> None:
        notifier = self.notifiers[name]
        while True:
            event = await queue.get()
            try:
                await self._deliver(notifier, name, event)
            except asyncio.CancelledError:
                self._give_up(name, event, 0, "shutdown")
                raise
            finally:
                queue.task_done()

    async def _deliver(self, notifier: Notifier, name: str, event: AlertEvent) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                await notifier.send(event)
            except NotifierError as exc:
                reason = str(exc)
            except Exception as exc:  # a notifier bug must not kill the worker
                logger.exception("notifier %s: unexpected error", name)
                reason = f"{type(exc).__name__}: {exc}"
            else:
                self._sent.labels(name).inc()
                self.delivered.append(Delivery(name, event, attempt, time.time()))
                return
            self._failures.labels(name).inc()
            if attempt == self.max_attempts:
                logger.error(
                    "notifier %s: giving up on %s %s after %d attempts: %s",
                    name,
                    event.kind,
                    event.alert_id,
                    attempt,
                    reason,
                )
                self._give_up(name, event, attempt, reason)
                return
            delay_s = self.backoff_s(attempt)
            logger.warning(
                "notifier %s: attempt %d failed (%s); retrying in %.2fs",
                name,
                attempt,
                reason,
                delay_s,
            )
            await self._sleep(delay_s)
