"""The daemon's HTTP server (aiohttp): /metrics, /healthz and the JSON API.

Listens on 127.0.0.1 unless configured otherwise. Every route here only reads.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor import __version__
from monitor.config import Config
from monitor.figures import ObjectiveFigures
from monitor.ledger import ROLLING

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Health:
    """What /healthz reports."""

    healthy: bool
    details: dict[str, Any]


class Server:
    """Serves the routes until stopped.

    Args:
        config: the daemon's config (listen address, services).
        registry: the Prometheus registry to expose.
        figures: returns the current SLA figures.
        health: returns the daemon's health.
    """

    def __init__(
        self,
        config: Config,
        registry: CollectorRegistry,
        figures: Callable[[], list[ObjectiveFigures]],
        health: Callable[[], Health],
    ) -> None:
        self.config = config
        self.registry = registry
        self._figures = figures
        self._health = health
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.app = web.Application(middlewares=[_json_errors])
        self.app.router.add_get("/metrics", self.metrics)
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/api/sla", self.sla)

    async def start(self) -> None:
        """Bind and serve."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.server.host, self.config.server.port)
        await site.start()
        server = site._server  # aiohttp keeps the bound sockets here; port 0 needs it
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.server.port

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def url(self) -> str:
        """The base URL the server answers on."""
        host = self.config.server.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus exposition."""
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        """200 when the daemon is probing and writing, 503 otherwise."""
        health = self._health()
        body = {"status": "ok" if health.healthy else "unhealthy", **health.details}
        return web.json_response(body, status=200 if health.healthy else 503)

    async def sla(self, request: web.Request) -> web.Response:
        """Every service and objective: target, compliance per window, pass/fail, samples."""
        service_filter = request.query.get("service")
        known = {s.name for s in self.config.services}
        if service_filter is not None and service_filter not in known:
            raise web.HTTPNotFound(
                text=_error_text(f"unknown service {service_filter!r}"),
                content_type="application/json",
            )
        figures = self._figures()
        services: dict[str, dict[str, Any]] = {}
        for service in self.config.services:
            if service_filter is None or service.name == service_filter:
                services[service.name] = {
                    "name": service.name,
                    "description": service.description,
                    "objectives": [],
                }
        for item in figures:
            if item.service in services:
                services[item.service]["objectives"].append(item.to_dict())
        return web.json_response(
            {
                "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "version": __version__,
                "timezone": self.config.timezone,
                "windows": {
                    **{name: f"rolling {minutes * 60} s" for name, minutes in ROLLING.items()},
                    "month": f"calendar month to date ({self.config.timezone})",
                    "previous_month": f"previous calendar month ({self.config.timezone})",
                },
                "services": list(services.values()),
            }
        )


def _error_text(message: str) -> str:
    return json.dumps({"error": message})


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    """Errors as JSON bodies, never an HTML page or a traceback."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.content_type == "application/json":
            raise
        return web.json_response({"error": exc.reason}, status=exc.status)
    except Exception:
        log.exception("error serving %s", request.path)
        return web.json_response({"error": "internal error"}, status=500)
