"""``POST /api/ingest``: events of real traffic, answered only once they are on disk.

The body is NDJSON or a JSON array of events (docs/events.md). Every line is checked on
its own: the good ones are stored and counted, each bad one gets its error in the answer.
A 2xx means every event it counts as ``stored`` or ``duplicate`` is committed, so a
sender that got no answer (a crash, a timeout) retries the whole request and each event
is still counted once: its id is known.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from monitor.clock import Clock
from monitor.config import Config
from monitor.errors import StoreError
from monitor.events import BodyError, EventReader, LineError, parse_events
from monitor.metrics import Metrics
from monitor.results import Result
from monitor.web.views import Authorize, error_response

#: Stores events and says, per event, whether it was new (``Collector.ingest``).
Ingest = Callable[[list[Result]], Awaitable[list[bool]]]


class IngestApi:
    """The ingest route, over the collector's queue."""

    def __init__(self, config: Config, clock: Clock, ingest: Ingest, metrics: Metrics) -> None:
        self.settings = config.ingest
        self.clock = clock
        self._ingest = ingest
        self._metrics = metrics
        self._reader = EventReader(config)

    def register(self, app: web.Application, authorized: Authorize) -> None:
        """Add the route."""
        self._authorized = authorized
        app.router.add_post("/api/ingest", self.ingest)

    async def ingest(self, request: web.Request) -> web.Response:
        """Store the good events of the body; list the bad ones."""
        refused = self._authorized(request, "ingest")
        if refused is not None:
            return refused
        limit = self.settings.max_body_bytes
        if (request.content_length or 0) > limit:
            return error_response(413, f"the body is over ingest.max_body_bytes ({limit})")
        body = await _read_at_most(request, limit)
        if body is None:
            return error_response(413, f"the body is over ingest.max_body_bytes ({limit})")
        now = self.clock.now()
        events: list[Result] = []
        errors: list[LineError] = []
        try:
            for count, (number, parsed) in enumerate(parse_events(body), 1):
                if count > self.settings.max_events:
                    return error_response(
                        413, f"more than ingest.max_events ({self.settings.max_events}) events"
                    )
                read = (
                    parsed
                    if isinstance(parsed, LineError)
                    else self._reader.check(number, parsed, now)
                )
                if isinstance(read, LineError):
                    errors.append(read)
                else:
                    events.append(read)
        except BodyError as exc:
            return error_response(400, str(exc))
        if not events and not errors:
            return error_response(400, "the body holds no event")
        new: list[bool] = []
        if events:
            started = time.perf_counter()
            try:
                new = await self._ingest(events)
            except (StoreError, TimeoutError) as exc:
                return error_response(503, f"events not stored, retry: {exc}")
            finally:
                self._metrics.ingest_seconds.observe(time.perf_counter() - started)
        stored = sum(new)
        late = sum(1 for e in errors if e.reason == "late")
        counts = {
            "stored": stored,
            "duplicate": len(new) - stored,
            "invalid": len(errors) - late,
            "late": late,
        }
        for result, value in counts.items():
            self._metrics.events.labels(result).inc(value)
        answer: dict[str, Any] = {**counts, "errors": [e.to_dict() for e in errors]}
        # Nothing taken: the request as a whole is refused (and changed nothing).
        return web.json_response(answer, status=200 if events else 422)


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it grows past ``limit`` (a sender without Content-Length)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
