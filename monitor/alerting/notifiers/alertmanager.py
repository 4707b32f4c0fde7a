"""Alertmanager's v2 API: active alerts resent as Prometheus does, so they never
expire while firing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from typing import Any

import httpx

from monitor.alerting.notifiers.base import (
    _USER_AGENT,
    AlertEvent,
    _iso,
    _post_json,
    logger,
)
from monitor.config import (
    AlertmanagerNotifierConfig,
)
from monitor.errors import NotifierError

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
        # The labels alone, as the generated Prometheus rules send them: Alertmanager
        # then takes the same breach from both paths for one alert.
        labels = {_label_name(k): v for k, v in event.labels.items() if v}
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
