"""A signed JSON webhook: this project's body (``monitor.alerting.notifiers``) or
Alertmanager's (``amwebhook``), with the same HMAC signature headers."""

from __future__ import annotations

import json
import time

import httpx

from monitor.alerting.notifiers.amwebhook import webhook_body
from monitor.alerting.notifiers.base import (
    _USER_AGENT,
    AlertEvent,
    _post_json,
    _secret_from_env,
    sign,
)
from monitor.config import (
    WebhookNotifierConfig,
)


class WebhookNotifier:
    """POST the event's JSON (``AlertEvent.to_dict``, or Alertmanager's webhook payload) to
    a URL, HMAC-signed when configured."""

    def __init__(
        self,
        name: str,
        config: WebhookNotifierConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._url = config.url
        self._format = config.format
        self._secret = _secret_from_env(name, config.secret_env)
        self._client = httpx.AsyncClient(
            timeout=config.timeout, transport=transport, headers={"User-Agent": _USER_AGENT}
        )

    async def send(self, event: AlertEvent) -> None:
        """POST the event once; NotifierError on a non-2xx answer, transport error or timeout."""
        document = (
            webhook_body(event, receiver=self.name)
            if self._format == "alertmanager"
            else event.to_dict()
        )
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            headers["X-SLA-Timestamp"] = str(int(time.time()))
            headers["X-SLA-Signature"] = sign(self._secret, body)
        await _post_json(self._client, self._url, body, headers)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
