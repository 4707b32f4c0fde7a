"""Notifiers against real local servers (aiohttp, Alertmanager, aiosmtpd) and the dispatcher."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import hashlib
import hmac
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from prometheus_client import CollectorRegistry

from monitor.alerting.dispatcher import Dispatcher
from monitor.alerting.notifiers import (
    AlertEvent,
    AlertmanagerNotifier,
    EmailNotifier,
    LogNotifier,
    Notifier,
    WebhookNotifier,
    build_notifiers,
)
from monitor.config import (
    AlertmanagerNotifierConfig,
    EmailNotifierConfig,
    LogNotifierConfig,
    WebhookNotifierConfig,
)
from monitor.errors import NotifierError
from tests.support.alertmanager import Alertmanager, running_alertmanager
from tests.support.brokers import free_port
from tests.support.sockets import wait_until_closed
from tests.support.tls import SelfSigned, self_signed

T0 = 1_772_366_400.0  # 2026-03-01T12:00:00Z
SECRET = "correct horse battery staple"

FIRING = AlertEvent(
    kind="firing",
    alert_id="0f3c9a1b-1772366400",
    fingerprint="0f3c9a1b",
    rule="burn-14x",
    severity="page",
    service="online",
    objective="online-1s",
    summary="online-1s burns its budget 15.2x (1h and 5m)",
    description="Burn rate 15.2x over 1h and 16.0x over 5m (threshold 14.4x).\n"
    "Budget left for March: 71 %.",
    started_at=T0,
    escalation_step=0,
    value=15.2,
    labels={
        "alertname": "SlaErrorBudgetBurn",
        "severity": "page",
        "service": "online",
        "objective": "online-1s",
        "rule": "burn-14x",
        "long_window": "1h",
        "short_window": "5m",
        "team": "exchange",
    },
    annotations={"runbook": "https://runbooks.example/online-1s"},
)
RESOLVED = dataclasses.replace(FIRING, kind="resolved", ended_at=T0 + 600)


def sample(registry: CollectorRegistry, metric: str, notifier: str) -> float | None:
    """One labelled sample of a notifier metric."""
    return registry.get_sample_value(metric, {"notifier": notifier})


# --- the value type -------------------------------------------------------------------------


def test_to_dict_is_the_documented_schema() -> None:
    body = RESOLVED.to_dict()
    assert body == {
        "version": 1,
        "kind": "resolved",
        "alert_id": "0f3c9a1b-1772366400",
        "fingerprint": "0f3c9a1b",
        "rule": "burn-14x",
        "severity": "page",
        "service": "online",
        "objective": "online-1s",
        "summary": FIRING.summary,
        "description": FIRING.description,
        "started_at": "2026-03-01T12:00:00.000Z",
        "ended_at": "2026-03-01T12:10:00.000Z",
        "escalation_step": 0,
        "value": 15.2,
        "labels": FIRING.labels,
        "annotations": {"runbook": "https://runbooks.example/online-1s"},
    }
    assert json.loads(json.dumps(body)) == body
    assert FIRING.to_dict()["ended_at"] is None


# --- webhook against a real aiohttp server --------------------------------------------------


@dataclass
class Receiver:
    """A local HTTP endpoint that records requests and answers a scripted status list."""

    url: str
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """An aiohttp server on a free loopback port."""
    port = free_port()
    rec = Receiver(url=f"http://127.0.0.1:{port}/hook")

    async def handle(request: web.Request) -> web.Response:
        rec.requests.append((dict(request.headers), await request.read()))
        if rec.delay_s:
            await asyncio.sleep(rec.delay_s)
        status = rec.statuses.pop(0) if rec.statuses else 200
        return web.Response(status=status, text="oops" if status >= 400 else "ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield rec
    finally:
        await runner.cleanup()


def webhook(url: str, secret_env: str | None = None, timeout: float = 5.0) -> WebhookNotifier:
    """A webhook notifier for ``url``."""
    config = WebhookNotifierConfig(kind="webhook", url=url, secret_env=secret_env, timeout=timeout)
    return WebhookNotifier("hook", config)


class RecordingSleep:
    """An injectable sleep that records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)
        await asyncio.sleep(0)


async def test_webhook_body_and_signature(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    notifier = webhook(receiver.url, secret_env="HOOK_SECRET")
    try:
        await notifier.send(FIRING)
    finally:
        await notifier.aclose()

    [(headers, body)] = receiver.requests
    assert json.loads(body) == FIRING.to_dict()
    assert headers["Content-Type"] == "application/json"
    assert abs(int(headers["X-SLA-Timestamp"]) - time.time()) < 60
    # Verify as a receiver would: HMAC of the raw body with the shared secret.
    key = os.environ["HOOK_SECRET"].encode()
    expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-SLA-Signature"], expected)


async def test_webhook_without_secret_is_unsigned(receiver: Receiver) -> None:
    notifier = webhook(receiver.url)
    try:
        await notifier.send(FIRING)
    finally:
        await notifier.aclose()
    [(headers, _)] = receiver.requests
    assert "X-SLA-Signature" not in headers
    assert "X-SLA-Timestamp" not in headers


def test_webhook_secret_env_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    with pytest.raises(NotifierError, match="HOOK_SECRET is not set"):
        webhook("http://127.0.0.1:9/hook", secret_env="HOOK_SECRET")


async def test_webhook_non_2xx_and_timeout_raise(receiver: Receiver) -> None:
    notifier = webhook(receiver.url, timeout=0.2)
    try:
        receiver.statuses = [503]
        with pytest.raises(NotifierError, match=r"^HTTP 503: oops$"):
            await notifier.send(FIRING)
        receiver.delay_s = 1.0
        with pytest.raises(NotifierError, match=r"^timeout"):
            await notifier.send(FIRING)
    finally:
        await notifier.aclose()


async def test_dispatcher_retries_until_delivered(receiver: Receiver) -> None:
    receiver.statuses = [500, 500, 200]
    registry = CollectorRegistry()
    sleep = RecordingSleep()
    dispatcher = Dispatcher(
        {"hook": webhook(receiver.url)}, registry, sleep=sleep, rng=random.Random(1)
    )
    await dispatcher.start()
    dispatcher.submit("hook", FIRING)
    await dispatcher.aclose(timeout_s=5)

    assert len(receiver.requests) == 3
    assert sample(registry, "sla_notifier_sent_total", "hook") == 1
    assert sample(registry, "sla_notifier_failures_total", "hook") == 2
    assert sample(registry, "sla_notifier_dropped_total", "hook") == 0
    [delivery] = dispatcher.delivered
    assert (delivery.event, delivery.attempts, delivery.error) == (FIRING, 3, None)
    assert not dispatcher.failed
    # Exponential with jitter: attempt n waits in [min*2^(n-1)/2, min*2^(n-1)].
    assert len(sleep.delays) == 2
    assert 0.25 <= sleep.delays[0] <= 0.5
    assert 0.5 <= sleep.delays[1] <= 1.0


async def test_dispatcher_drops_after_max_attempts_when_down() -> None:
    registry = CollectorRegistry()
    sleep = RecordingSleep()
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    dispatcher = Dispatcher(
        {"hook": webhook(down)},
        registry,
        max_attempts=3,
        backoff_min_s=0.001,
        backoff_max_s=0.002,
        sleep=sleep,
    )
    await dispatcher.start()
    dispatcher.submit("hook", FIRING)
    await dispatcher.aclose(timeout_s=5)

    assert sample(registry, "sla_notifier_sent_total", "hook") == 0
    assert sample(registry, "sla_notifier_failures_total", "hook") == 3
    assert sample(registry, "sla_notifier_dropped_total", "hook") == 1
    [failure] = dispatcher.failed
    assert failure.attempts == 3
    assert failure.error is not None
    assert "ConnectError" in failure.error
    assert all(d <= 0.002 for d in sleep.delays)
    assert len(sleep.delays) == 2


def test_backoff_is_exponential_capped_and_jittered() -> None:
    dispatcher = Dispatcher({}, CollectorRegistry(), backoff_min_s=0.5, backoff_max_s=60)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (8, 60.0), (30, 60.0)]:
        delays = {dispatcher.backoff_s(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


# --- dispatcher with in-process notifiers ---------------------------------------------------


class BlockedNotifier:
    """A notifier whose send never returns (a hung endpoint)."""

    def __init__(self, name: str = "stuck") -> None:
        self.name = name
        self.started = asyncio.Event()
        self.closed = False

    async def send(self, event: AlertEvent) -> None:
        self.started.set()
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


class FlakyNotifier:
    """Records events; raises a bug (not a NotifierError) on the first call."""

    def __init__(self, name: str = "flaky") -> None:
        self.name = name
        self.events: list[AlertEvent] = []
        self.calls = 0

    async def send(self, event: AlertEvent) -> None:
        self.calls += 1
        if self.calls == 1:
            raise KeyError("bug")
        self.events.append(event)

    async def aclose(self) -> None:
        pass


async def test_submit_never_blocks_on_a_hung_notifier() -> None:
    registry = CollectorRegistry()
    stuck = BlockedNotifier()
    dispatcher = Dispatcher({"stuck": stuck}, registry, queue_size=100)
    await dispatcher.start()
    await asyncio.sleep(0)  # the worker is waiting for events

    started = time.perf_counter()
    for i in range(1000):
        dispatcher.submit("stuck", dataclasses.replace(FIRING, alert_id=f"a{i}"))
    elapsed_s = time.perf_counter() - started
    assert elapsed_s < 0.25, elapsed_s

    await asyncio.wait_for(stuck.started.wait(), 1)
    # 100 fit, 900 overflowed (oldest first); the worker holds one, 99 wait.
    assert sample(registry, "sla_notifier_dropped_total", "stuck") == 900
    assert sample(registry, "sla_notifier_queue_depth", "stuck") == 99
    assert [d.event.alert_id for d in dispatcher.failed][:2] == ["a800", "a801"]
    assert all(d.error == "queue overflow" for d in dispatcher.failed)

    started = time.perf_counter()
    await dispatcher.aclose(timeout_s=0.1)
    assert time.perf_counter() - started < 1.0  # bounded, then cancelled
    assert sample(registry, "sla_notifier_dropped_total", "stuck") == 1000
    assert dispatcher.failed[-1].error == "shutdown"
    assert stuck.closed
    dispatcher.submit("stuck", FIRING)  # after close: dropped, not raised
    assert sample(registry, "sla_notifier_dropped_total", "stuck") == 1001


async def test_worker_survives_a_notifier_bug_and_drains_on_close() -> None:
    registry = CollectorRegistry()
    flaky = FlakyNotifier()
    dispatcher = Dispatcher({"flaky": flaky}, registry, sleep=RecordingSleep())
    events = [dataclasses.replace(FIRING, alert_id=f"a{i}") for i in range(5)]
    for event in events:  # queued before start: delivered once started
        dispatcher.submit("flaky", event)
    await dispatcher.start()
    await dispatcher.aclose()
    assert flaky.events == events
    assert sample(registry, "sla_notifier_failures_total", "flaky") == 1
    assert sample(registry, "sla_notifier_sent_total", "flaky") == 5
    assert [d.attempts for d in dispatcher.delivered] == [2, 1, 1, 1, 1]


async def test_unknown_notifier_is_counted_not_raised() -> None:
    registry = CollectorRegistry()
    dispatcher = Dispatcher({}, registry)
    dispatcher.submit("nobody", FIRING)
    assert sample(registry, "sla_notifier_dropped_total", "nobody") == 1
    assert dispatcher.failed[0].error == "unknown notifier"
    await dispatcher.aclose()


# --- Alertmanager (Debian's binary) ---------------------------------------------------------


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    """A real Alertmanager on a free loopback port."""
    with running_alertmanager(tmp_path) as am:
        yield am


async def am_alerts(am: Alertmanager, **params: str) -> list[dict[str, Any]]:
    """GET /api/v2/alerts with filters."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{am.url}/api/v2/alerts", params=params)
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts


def ours(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts carrying FIRING's labels."""
    return [a for a in alerts if a["labels"] == FIRING.labels]


async def test_alertmanager_receives_and_resolves(alertmanager: Alertmanager) -> None:
    config = AlertmanagerNotifierConfig(kind="alertmanager", url=alertmanager.url)
    notifier = AlertmanagerNotifier("am", config, generator_url="http://127.0.0.1:9177/")
    now = time.time()
    firing = dataclasses.replace(FIRING, started_at=now - 60)
    try:
        await notifier.send(firing)
        [alert] = ours(await am_alerts(alertmanager, active="true"))
        # The labels the generated Prometheus rule gives the same alert, nothing more.
        assert "fingerprint" not in alert["labels"]
        assert alert["annotations"]["summary"] == FIRING.summary
        assert alert["annotations"]["description"] == FIRING.description
        assert alert["annotations"]["runbook"] == "https://runbooks.example/online-1s"
        assert alert["status"]["state"] == "active"
        assert alert["generatorURL"] == "http://127.0.0.1:9177/"

        await notifier.send(dataclasses.replace(firing, kind="resolved", ended_at=now - 1))
        assert ours(await am_alerts(alertmanager, active="true")) == []
    finally:
        await notifier.aclose()


async def test_alertmanager_format_webhook_is_what_alertmanager_itself_sends(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real Alertmanager relays FIRING to its webhook receiver; the daemon's webhook in
    ``format: alertmanager`` sends the same event to the same receiver. The two bodies
    have the same fields, labels, status, group key and fingerprint; ours is signed."""
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    with running_alertmanager(tmp_path, webhook_url=receiver.url) as am:
        relay = AlertmanagerNotifier(
            "am", AlertmanagerNotifierConfig(kind="alertmanager", url=am.url)
        )
        try:
            await relay.send(dataclasses.replace(FIRING, started_at=time.time() - 60))
            async with asyncio.timeout(20):
                while not receiver.requests:
                    await asyncio.sleep(0.1)
        finally:
            await relay.aclose()
    [(_, theirs_raw)] = receiver.requests
    config = WebhookNotifierConfig(
        kind="webhook", url=receiver.url, secret_env="HOOK_SECRET", format="alertmanager"
    )
    ours_notifier = WebhookNotifier("hook", config)
    try:
        await ours_notifier.send(FIRING)
    finally:
        await ours_notifier.aclose()
    headers, ours_raw = receiver.requests[1]
    theirs, mine = json.loads(theirs_raw), json.loads(ours_raw)
    assert set(mine) == set(theirs)
    for key in ("version", "status", "receiver", "groupLabels", "commonLabels", "groupKey"):
        assert mine[key] == theirs[key], key
    [their_alert], [my_alert] = theirs["alerts"], mine["alerts"]
    assert set(my_alert) == set(their_alert)
    for key in ("status", "labels", "fingerprint", "endsAt"):
        assert my_alert[key] == their_alert[key], key
    assert my_alert["annotations"]["summary"] == their_alert["annotations"]["summary"]
    key = SECRET.encode()
    expected = "sha256=" + hmac.new(key, ours_raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-SLA-Signature"], expected)


async def test_alertmanager_keeps_active_alerts_alive(alertmanager: Alertmanager) -> None:
    # endsAt = now + 4 * refresh_s; only the refresh keeps the alert active past it.
    config = AlertmanagerNotifierConfig(kind="alertmanager", url=alertmanager.url)
    notifier = AlertmanagerNotifier("am", config, refresh_s=0.25)
    try:
        await notifier.send(dataclasses.replace(FIRING, started_at=time.time()))
        await asyncio.sleep(2.0)
        assert len(ours(await am_alerts(alertmanager, active="true"))) == 1
    finally:
        await notifier.aclose()
    await asyncio.sleep(1.5)  # no refresh after close: Alertmanager expires it
    assert ours(await am_alerts(alertmanager, active="true")) == []


async def test_alertmanager_down_raises() -> None:
    config = AlertmanagerNotifierConfig(
        kind="alertmanager", url=f"http://127.0.0.1:{free_port()}", timeout=1.0
    )
    notifier = AlertmanagerNotifier("am", config)
    try:
        with pytest.raises(NotifierError, match="ConnectError"):
            await notifier.send(RESOLVED)
    finally:
        await notifier.aclose()


# --- email against aiosmtpd -----------------------------------------------------------------

USER, PASSWORD = "alerts@example.org", "s3cret-Pa55"


@dataclass
class Mailbox:
    """What a local SMTP server received."""

    port: int
    messages: list[tuple[Envelope, Session]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd handler hook: keep the message."""
        self.messages.append((envelope, session))
        return "250 OK"

    def parsed(self, index: int = 0) -> EmailMessage:
        """Message ``index`` parsed."""
        content = self.messages[index][0].content
        assert isinstance(content, bytes)
        msg = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


def check_credentials(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
) -> AuthResult:
    """aiosmtpd authenticator: accept only USER / PASSWORD."""
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    # handled=False: aiosmtpd then answers 535 itself (its default assumes we did).
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def cert(tmp_path: Path) -> SelfSigned:
    """A self-signed certificate for 127.0.0.1."""
    return self_signed(tmp_path)


@pytest.fixture
async def plain_smtp() -> AsyncIterator[Mailbox]:
    """An SMTP server without TLS or AUTH; the notifier must leave no connection open."""
    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
        await wait_until_closed(box.port)
    finally:
        controller.stop()


@pytest.fixture
async def tls_smtp(cert: SelfSigned) -> AsyncIterator[Mailbox]:
    """An SMTP server that requires STARTTLS, and AUTH (allowed only over TLS); the notifier
    must leave no connection open, even after a failed handshake or login."""
    box = Mailbox(port=free_port())
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        tls_context=cert.server_context(),
        require_starttls=True,
        authenticator=check_credentials,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield box
        await wait_until_closed(box.port)
    finally:
        controller.stop()


def email_config(port: int, *, starttls: bool, auth: bool = False) -> EmailNotifierConfig:
    """An email notifier config for a local server."""
    return EmailNotifierConfig(
        kind="email",
        host="127.0.0.1",
        port=port,
        starttls=starttls,
        username_env="SMTP_USER" if auth else None,
        password_env="SMTP_PASSWORD" if auth else None,
        sender="sla-monitor@example.org",
        to=["oncall@example.org", "noc@example.org"],
        timeout=5.0,
    )


async def test_email_plain(plain_smtp: Mailbox) -> None:
    notifier = EmailNotifier("mail", email_config(plain_smtp.port, starttls=False))
    await notifier.send(FIRING)
    await notifier.aclose()

    [(envelope, session)] = plain_smtp.messages
    assert envelope.mail_from == "sla-monitor@example.org"
    assert envelope.rcpt_tos == ["oncall@example.org", "noc@example.org"]
    assert session.ssl is None
    msg = plain_smtp.parsed()
    assert msg["Subject"] == "[PAGE] FIRING: online-1s burns its budget 15.2x (1h and 5m)"
    assert msg["From"] == "sla-monitor@example.org"
    assert msg["To"] == "oncall@example.org, noc@example.org"
    assert msg.get_content_type() == "text/plain"
    body = msg.get_content().replace("\r\n", "\n")  # SMTP carries CRLF line ends
    assert FIRING.description in body
    for line in ("service:         online", "objective:       online-1s", "value:           15.2"):
        assert line in body
    assert "started:         2026-03-01T12:00:00.000Z" in body
    assert "https://runbooks.example/online-1s" in body


async def test_email_starttls_with_auth(
    tls_smtp: Mailbox, cert: SelfSigned, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_USER", USER)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    config = email_config(tls_smtp.port, starttls=True, auth=True)
    notifier = EmailNotifier("mail", config, tls_context=cert.client_context())
    await notifier.send(RESOLVED)

    [(envelope, session)] = tls_smtp.messages
    assert session.ssl is not None  # the mail went over the upgraded connection
    assert session.authenticated
    assert envelope.rcpt_tos == ["oncall@example.org", "noc@example.org"]
    msg = tls_smtp.parsed()
    assert msg["Subject"] == "[PAGE] RESOLVED: online-1s burns its budget 15.2x (1h and 5m)"
    assert "ended:           2026-03-01T12:10:00.000Z" in msg.get_content()


async def test_email_rejects_bad_password_and_untrusted_cert(
    tls_smtp: Mailbox, cert: SelfSigned, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_USER", USER)
    monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    config = email_config(tls_smtp.port, starttls=True, auth=True)
    notifier = EmailNotifier("mail", config, tls_context=cert.client_context())
    with pytest.raises(NotifierError, match="SMTPAuthenticationError"):
        await notifier.send(FIRING)

    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    untrusting = EmailNotifier("mail", config)  # the system trust store lacks our cert
    with pytest.raises(NotifierError, match=r"(?i)certificate"):
        await untrusting.send(FIRING)
    assert tls_smtp.messages == []


async def test_email_without_starttls_cannot_auth_on_a_tls_only_server(
    tls_smtp: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server refuses AUTH (and mail) in clear text: credentials never cross unencrypted.
    monkeypatch.setenv("SMTP_USER", USER)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    notifier = EmailNotifier("mail", email_config(tls_smtp.port, starttls=False, auth=True))
    with pytest.raises(NotifierError):
        await notifier.send(FIRING)
    assert tls_smtp.messages == []


def test_email_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_USER", USER)
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    with pytest.raises(NotifierError, match="SMTP_PASSWORD is not set"):
        EmailNotifier("mail", email_config(25, starttls=True, auth=True))


async def test_email_server_down_raises() -> None:
    notifier = EmailNotifier("mail", email_config(free_port(), starttls=False))
    with pytest.raises(NotifierError):
        await notifier.send(FIRING)


# --- log and build ----------------------------------------------------------------------------


async def test_log_notifier_levels(caplog: pytest.LogCaptureFixture) -> None:
    notifier = LogNotifier("log", LogNotifierConfig(kind="log"))
    with caplog.at_level(logging.INFO, logger="monitor.alerting.notifiers"):
        for kind in ("firing", "repeat", "escalated", "acknowledged", "resolved"):
            await notifier.send(dataclasses.replace(FIRING, kind=kind))
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING] * 3 + [logging.INFO] * 2
    first = caplog.records[0].getMessage()
    assert "\n" not in first
    assert first.startswith("alert firing burn-14x severity=page service=online")
    assert "objective=online-1s value=15.2" in first
    assert first.endswith(FIRING.summary)


async def test_build_notifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    built: dict[str, Notifier] = build_notifiers(
        {
            "hook": WebhookNotifierConfig(
                kind="webhook", url="http://127.0.0.1:9/h", secret_env="HOOK_SECRET"
            ),
            "am": AlertmanagerNotifierConfig(kind="alertmanager", url="http://127.0.0.1:9093"),
            "mail": email_config(25, starttls=True),
            "log": LogNotifierConfig(kind="log"),
        }
    )
    kinds = {name: type(n) for name, n in built.items()}
    assert kinds == {
        "hook": WebhookNotifier,
        "am": AlertmanagerNotifier,
        "mail": EmailNotifier,
        "log": LogNotifier,
    }
    assert all(n.name == name for name, n in built.items())
    for notifier in built.values():
        await notifier.aclose()
