"""Email over SMTP, with STARTTLS and AUTH from the environment."""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from monitor.alerting.notifiers.base import (
    AlertEvent,
    _iso,
    _secret_from_env,
)
from monitor.config import (
    EmailNotifierConfig,
)
from monitor.errors import NotifierError


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
