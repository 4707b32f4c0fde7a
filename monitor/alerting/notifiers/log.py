"""The log notifier: one line per event in the daemon's log."""

from __future__ import annotations

import logging

from monitor.alerting.notifiers.base import (
    _ACTIVE_KINDS,
    AlertEvent,
    logger,
)
from monitor.alerting.notifiers.smtp import _one_line
from monitor.config import (
    LogNotifierConfig,
)


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
