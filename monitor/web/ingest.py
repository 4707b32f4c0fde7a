"""``POST /api/ingest``: events of real traffic, answered only once they are on disk.

The body is NDJSON or a JSON array of events (docs/events.md). Every line is checked on
its own: the good ones are stored and counted, each bad one gets its error in the answer.
A 2xx means every event it counts as ``stored`` or ``duplicate`` is committed, so a
sender that got no answer (a crash, a timeout) retries the whole request and each event
is still counted once: its id is known.
"""

from __future__ import annotations

from aiohttp import web

from monitor.errors import StoreError
from monitor.ingest.events import BodyError, TooManyEvents
from monitor.ingest.intake import Intake
from monitor.web.views import Authorize, error_response


class IngestApi:
    """The ingest route, over the one intake."""

    def __init__(self, intake: Intake, max_body_bytes: int) -> None:
        self._intake = intake
        self._max_body = max_body_bytes

    def register(self, app: web.Application, authorized: Authorize) -> None:
        """Add the route."""
        self._authorized = authorized
        app.router.add_post("/api/ingest", self.ingest)

    async def ingest(self, request: web.Request) -> web.Response:
        """Store the good events of the body; list the bad ones."""
        refused = self._authorized(request, "ingest")
        if refused is not None:
            return refused
        limit = self._max_body
        if (request.content_length or 0) > limit:
            return error_response(413, f"the body is over ingest.max_body_bytes ({limit})")
        body = await _read_at_most(request, limit)
        if body is None:
            return error_response(413, f"the body is over ingest.max_body_bytes ({limit})")
        try:
            read = await self._intake.read(body)
        except TooManyEvents as exc:
            return error_response(413, str(exc))
        except BodyError as exc:
            return error_response(400, str(exc))
        if not read.good and not read.errors:
            return error_response(400, "the body holds no event")
        try:
            taken = await self._intake.take(read)
        except (StoreError, TimeoutError) as exc:
            return error_response(503, f"events not stored, retry: {exc}")
        # Nothing taken: the request as a whole is refused (and changed nothing).
        return web.json_response(taken.to_dict(), status=200 if read.good else 422)


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
