"""The daemon's HTTP server (aiohttp): /metrics, /healthz and the JSON API.

Listens on 127.0.0.1 unless configured otherwise. Every route here only reads.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor import __version__
from monitor.clock import Clock, SystemClock
from monitor.config import Config, Scope, ServerTls, token_problem
from monitor.errors import ConfigError
from monitor.logs import ACCESS_LOG, AccessLogger
from monitor.sla.figures import ObjectiveFigures
from monitor.sla.windows import describe as describe_windows
from monitor.store.records import Alert
from monitor.timeparse import iso_utc
from monitor.web.views import TOKEN_KEY, Authorize
from probes.tls import TLS_VERSIONS

log = logging.getLogger(__name__)


class MetricsToo(AccessLogger):
    """The access log with Prometheus's scrapes of /metrics too."""

    include_metrics = True


def server_ssl_context(tls: ServerTls) -> ssl.SSLContext:
    """The server's TLS context: its certificate, and the client CA when mutual TLS."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls.client_ca_file)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except ssl.SSLError as exc:  # a key that does not match, a file that is not PEM
        raise ConfigError(
            f"server.tls: cannot use cert_file {tls.cert_file} with key_file {tls.key_file}: {exc}"
        ) from exc
    context.verify_mode = ssl.CERT_NONE if tls.client_ca_file is None else ssl.CERT_REQUIRED
    return context


class AlertsApi(Protocol):
    """What the alert endpoints need from the daemon."""

    async def list_alerts(self, status: str, limit: int) -> list[Alert]:
        """Alerts: ``active`` (pending and firing) or ``all`` (history, newest first)."""
        ...

    async def acknowledge(self, alert_id: str, by: str) -> Alert:
        """Acknowledge a firing alert; raise KeyError when there is no such active alert."""
        ...


class ExtraRoutes(Protocol):
    """More routes (the status page and its API, monitor.web.status), given the token check."""

    def register(self, app: web.Application, authorized: Authorize) -> None:
        """Add routes to ``app``; writes call ``authorized`` first."""
        ...


#: Largest JSON body a write endpoint accepts.
MAX_BODY_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Health:
    """What /healthz reports."""

    healthy: bool
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Token:
    name: str
    secret: bytes
    scopes: frozenset[str]


def _tokens(config: Config) -> list[_Token]:
    """The usable tokens: ``api_token_env`` (admin) and ``tokens``. One whose variable is
    unset, empty or short is left out and logged (``run`` refuses to start on it; anyone
    building a Server directly gets that token's writes shut, never open to an empty one)."""
    named = [("default", config.server.api_token_env, frozenset({"admin"}))]
    named += [(n, t.env, frozenset(t.scopes)) for n, t in config.server.tokens.items()]
    tokens = []
    for name, variable, scopes in named:
        if variable is None:
            continue
        value = os.environ.get(variable)
        if (problem := token_problem(variable, value)) is not None or value is None:
            log.error("token %s is disabled: %s", name, problem)
            continue
        tokens.append(_Token(name, value.strip().encode(), scopes))
    return tokens


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
        alerts: AlertsApi | None = None,
        routes: ExtraRoutes | None = None,
        reports: ExtraRoutes | None = None,
        clock: Clock | None = None,
        ingest: ExtraRoutes | None = None,
        evidence: ExtraRoutes | None = None,
        cluster: ExtraRoutes | None = None,
        locations: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.config = config
        self._locations = locations
        self.clock = clock or SystemClock()
        self._alerts = alerts
        # Read once at start; the config names the variables, never the secrets.
        self._tokens = _tokens(config)
        self.registry = registry
        self._figures = figures
        self._health = health
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.app = web.Application(middlewares=[_json_errors], client_max_size=MAX_BODY_BYTES)
        self.app.router.add_get("/metrics", self.metrics)
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/api/sla", self.sla)
        self.app.router.add_get("/api/alerts", self.list_alerts)
        self.app.router.add_post("/api/alerts/{alert_id}/ack", self.ack_alert)
        if routes is not None:
            routes.register(self.app, self._authorized)
        if reports is not None:  # GET /api/reports/YYYY-MM (monitor.report.service)
            reports.register(self.app, self._authorized)
        if ingest is not None:  # POST /api/ingest (monitor.web.ingest)
            ingest.register(self.app, self._authorized)
        if evidence is not None:  # GET /api/evidence (monitor.evidence.service)
            evidence.register(self.app, self._authorized)
        if cluster is not None:  # GET /api/cluster (monitor.cluster)
            cluster.register(self.app, self._authorized)

    async def start(self) -> None:
        """Bind and serve."""
        access = self.config.server.access_log
        self._runner = web.AppRunner(
            self.app,
            access_log=ACCESS_LOG if access != "off" else None,
            access_log_class=MetricsToo if access == "all" else AccessLogger,
        )
        await self._runner.setup()
        tls = self.config.server.tls
        site = web.TCPSite(
            self._runner,
            self.config.server.host,
            self.config.server.port,
            ssl_context=None if tls is None else server_ssl_context(tls),
        )
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
        scheme = "http" if self.config.server.tls is None else "https"
        return f"{scheme}://{host}:{self.port}"

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus exposition."""
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def _authorized(self, request: web.Request, scope: Scope) -> web.Response | None:
        """None when the request's bearer token may do ``scope``; else the answer: 401
        for no or a wrong token, 403 for a token without the scope."""
        if not self._tokens:
            return _json_error(403, "writes are disabled: set server.api_token_env")
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        given_bytes = given.strip().encode()
        found: _Token | None = None
        for token in self._tokens:  # every one compared, in constant time each
            if hmac.compare_digest(given_bytes, token.secret) and scheme.lower() == "bearer":
                found = token
        if found is None:
            return web.json_response(
                {"error": "missing or wrong bearer token"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope not in found.scopes and "admin" not in found.scopes:
            return _json_error(403, f"token {found.name!r} may not do {scope}")
        request[TOKEN_KEY] = found.name  # who wrote, as authenticated (maintenance origin)
        return None

    async def list_alerts(self, request: web.Request) -> web.Response:
        """Active alerts (default) or the alert history (``?status=all``)."""
        if self._alerts is None:
            return _json_error(404, "alerting is disabled")
        status = request.query.get("status", "active")
        if status not in ("active", "all"):
            return _json_error(400, "status must be 'active' or 'all'")
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _json_error(400, "limit must be an integer")
        if not 1 <= limit <= 10_000:
            return _json_error(400, "limit must be between 1 and 10000")
        alerts = await self._alerts.list_alerts(status, limit)
        return web.json_response({"alerts": [a.to_dict() for a in alerts]})

    async def ack_alert(self, request: web.Request) -> web.Response:
        """Acknowledge a firing alert: its escalation and repeats stop."""
        refused = self._authorized(request, "alerts")
        if refused is not None:
            return refused
        if self._alerts is None:
            return _json_error(404, "alerting is disabled")
        by = "api"
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return _json_error(400, "the body is not JSON")
            except RecursionError:
                return _json_error(400, "the body nests too deeply")
            if not isinstance(body, dict) or not isinstance(body.get("by", "api"), str):
                return _json_error(400, 'the body must be an object like {"by": "name"}')
            by = str(body.get("by", "api"))[:200]
        try:
            alert = await self._alerts.acknowledge(request.match_info["alert_id"], by)
        except KeyError:
            return _json_error(404, "no pending or firing alert has this id")
        return web.json_response({"alert": alert.to_dict()})

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
                "generated_at": iso_utc(self.clock.now()),
                "version": __version__,
                "timezone": self.config.timezone,
                "windows": describe_windows(self.config.timezone),
                "services": list(services.values()),
                "locations": self._locations() if self._locations is not None else None,
            }
        )


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


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
