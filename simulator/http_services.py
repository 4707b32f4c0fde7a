"""The HTTP side of the simulated network: the providers behind integrated services.

Each configured route answers any method after the delay its ``Behaviour`` draws:

- ``ok``: 200, JSON ``{"id": ..., "handled_s": ...}``;
- ``error``: 503, JSON ``{"id": ..., "handled_s": ..., "error": "simulated error"}``;
- ``drop``: no answer. The request is held open, sending nothing, until the client gives
  up and disconnects, the simulator stops, or ``drop_hold_s`` passes (then the connection
  is closed). Holding rather than closing at once is what makes a probe see a *timeout*,
  as it would for a hung provider; an immediate close would look like a connection error.

``id`` is the request's ``X-Request-Id`` header (echoed in the same response header), or a
generated one. Any other path gets aiohttp's 404. Every answered or dropped request on a
route is recorded in the ``TruthLog``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from simulator.profiles import Action, Behaviour
from simulator.settings import SimulatorSettings
from simulator.truth import TruthLog

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
#: How often a held (dropped) request checks whether its client went away.
_HOLD_POLL_S = 0.25

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6) into host and port."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{listen!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class HttpServices:
    """The simulator's HTTP server: one route per configured integrated-service path."""

    def __init__(
        self,
        settings: SimulatorSettings,
        truth: TruthLog,
        *,
        drain_timeout_s: float = 5.0,
        drop_hold_s: float | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Build the application from ``settings.http`` (which must be set).

        Args:
            settings: the simulator section (its ``http`` server, profiles and seed).
            truth: where every served request is recorded.
            drain_timeout_s: how long ``stop`` waits for answers still being prepared.
            drop_hold_s: longest hold of a dropped request; by default the larger of 60 s
                and the longest configured delay, beyond any sensible probe timeout.
        """
        if settings.http is None:
            raise ValueError("simulator.http is not configured")
        self.truth = truth
        # Outages are scheduled in wall-clock time; tests may pass an accelerated clock.
        self._wall_clock = wall_clock
        self.host, self._port = parse_listen(settings.http.listen)
        self._drain_timeout_s = drain_timeout_s
        longest = max((p.latency.max for p in settings.profiles.values()), default=0.0)
        self._drop_hold_s = drop_hold_s if drop_hold_s is not None else max(60.0, longest)
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.app = web.Application()
        for route in settings.http.routes:
            behaviour = Behaviour.seeded(
                settings.profiles[route.profile], settings.seed, route.path
            )
            self.app.router.add_route("*", route.path, self._handler(route.path, behaviour))

    @property
    def port(self) -> int:
        """The bound port once started (the configured one before)."""
        return self._port

    async def start(self) -> None:
        """Bind and start serving."""
        if self._runner is not None:
            raise RuntimeError("HttpServices is already started")
        # No access log: at thousands of requests/s it would cost more than the answers.
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=self._drain_timeout_s)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        log.info("simulator http: serving on %s:%d", self.host, self._port)

    async def stop(self) -> None:
        """Stop accepting, release dropped requests, let answers finish (bounded)."""
        self._stopping.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def _handler(self, path: str, behaviour: Behaviour) -> _Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, path, behaviour)

        return handle

    async def _serve(self, request: web.Request, path: str, behaviour: Behaviour) -> web.Response:
        """Answer one request as its drawn ``Decision`` says."""
        t0_ns = time.perf_counter_ns()
        received_at = self._wall_clock()
        request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        decision = behaviour.draw(received_at)
        if decision.action == "drop":
            self.truth.record(request_id, path, "http", received_at, 0.0, "drop")
            await self._hold(request)
            return web.Response(status=503)  # never delivered: the transport is closed
        handled_s = 0.0
        action: Action = decision.action
        try:
            if request.can_read_body:
                await request.read()
            await asyncio.sleep(decision.delay_s)
            handled_s = (time.perf_counter_ns() - t0_ns) / 1e9
        except BaseException:
            # Cancelled by shutdown, or the client left mid-body: no answer went out.
            action = "drop"
            raise
        finally:
            self.truth.record(request_id, path, "http", received_at, handled_s, action)
        body: dict[str, object] = {"id": request_id, "handled_s": handled_s}
        status = 200
        if action == "error":
            body["error"] = "simulated error"
            status = 503
        return web.Response(
            status=status,
            body=json.dumps(body, separators=(",", ":")).encode(),
            content_type="application/json",
            headers={REQUEST_ID_HEADER: request_id},
        )

    async def _hold(self, request: web.Request) -> None:
        """Keep a dropped request open without answering, then close its connection."""
        deadline = time.monotonic() + self._drop_hold_s
        # aiohttp does not cancel a handler when its client leaves (handler_cancellation is
        # off), so poll for the disconnect rather than hold a dead request for a minute.
        while request.transport is not None and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(min(_HOLD_POLL_S, remaining)):
                    await self._stopping.wait()
            except TimeoutError:
                pass
        if request.transport is not None:
            request.transport.close()
