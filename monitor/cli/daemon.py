"""The running daemon's API as the CLI reaches it: where it listens (from the config), whether
it answers, which token the CLI may use, and its errors turned into exit codes.

Commands that change what the daemon counts (maintenance, alert acknowledgements) go through
it when it runs, so the daemon validates, stores and announces once; they fall back to the
store only when no daemon answers, and say so.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from monitor.cli.common import UsageError
from monitor.config import Config, Scope
from monitor.config_paths import store_identity
from monitor.errors import SlaMonitorError

#: A daemon that does not answer its health check within this is treated as not running.
PROBE_TIMEOUT_S = 2.0
#: Writes and reads through the API.
TIMEOUT_S = 10.0


def base_url(config: Config) -> str:
    """The daemon's base URL from ``server.listen`` (loopback when it listens on every
    address; https when it serves TLS)."""
    server = config.server
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host
    scheme = "https" if server.tls is not None else "http"
    return f"{scheme}://{'[' + host + ']' if ':' in host else host}:{server.port}"


class DaemonApi:
    """A synchronous client of the daemon's API for one CLI command.

    Args:
        config: the daemon's config (its ``server`` section).
        url: another base URL (``--url``), e.g. through a proxy.
    """

    def __init__(self, config: Config, url: str | None = None) -> None:
        self.config = config
        self.base = url or base_url(config)
        # The daemon's own listener on this host: its certificate is for its clients
        # elsewhere; the CLI checks that it answers, as `health` does.
        self._verify = config.server.tls is None or url is not None
        #: The identity of the store this config names (``/healthz`` shows the daemon's).
        self.store_id = store_identity(config.storage.location)

    def answering(self) -> str | None:
        """The store identity of the daemon answering at the base URL ("" when it does
        not say), or None when none answers: this config's daemon when it equals
        ``store_id`` (another daemon on the same address is not it)."""
        try:
            response = httpx.get(
                f"{self.base}/healthz", timeout=PROBE_TIMEOUT_S, verify=self._verify
            )
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        return str(body.get("store_id", "")) if isinstance(body, dict) else ""

    def token(self, scope: Scope) -> str | None:
        """A bearer token from the environment that may do ``scope``: the admin token
        (``server.api_token_env``), else a named token with that scope or admin."""
        server = self.config.server
        names = [server.api_token_env] if server.api_token_env else []
        names += [t.env for t in server.tokens.values() if scope in t.scopes or "admin" in t.scopes]
        for name in names:
            value = os.environ.get(name, "").strip()
            if value:
                return value
        return None

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """One request; the JSON answer, or UsageError (4xx: the user must change
        something) or SlaMonitorError (no answer, 5xx)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = httpx.request(
                method,
                f"{self.base}{path}",
                json=json,
                params=params,
                headers=headers,
                timeout=TIMEOUT_S,
                verify=self._verify,
            )
        except httpx.HTTPError as exc:
            raise SlaMonitorError(f"cannot reach the daemon at {self.base}: {exc}") from None
        if response.is_success:
            return response.json()
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        if 400 <= response.status_code < 500:
            raise UsageError(f"the daemon refused it (HTTP {response.status_code}): {message}")
        raise SlaMonitorError(f"the daemon failed (HTTP {response.status_code}): {message}")


__all__ = ["DaemonApi", "base_url"]
