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

One module per notifier; ``build_notifiers`` makes them from the config; the retrying
dispatcher is ``monitor.alerting.dispatcher``.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.alerting.notifiers.alertmanager import AlertmanagerNotifier
from monitor.alerting.notifiers.base import SCHEMA_VERSION, AlertEvent, EventKind, Notifier, sign
from monitor.alerting.notifiers.log import LogNotifier
from monitor.alerting.notifiers.smtp import EmailNotifier
from monitor.alerting.notifiers.webhook import WebhookNotifier
from monitor.config import (
    AlertmanagerNotifierConfig,
    EmailNotifierConfig,
    LogNotifierConfig,
    NotifierConfig,
    WebhookNotifierConfig,
)


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


__all__ = [
    "SCHEMA_VERSION",
    "AlertEvent",
    "AlertmanagerNotifier",
    "EmailNotifier",
    "EventKind",
    "LogNotifier",
    "Notifier",
    "WebhookNotifier",
    "build_notifiers",
    "sign",
]
