"""The daemon's daily digests (``monitor.evidence.digest``): every few minutes, a child
process digests the local days that are over and settled, so the probes' event loop never
reads a day of raw results; ``GET /api/evidence`` shows the chain's head and last links
(a read: open unless ``server.public_reads`` is false)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from monitor.config import Config
from monitor.report.service import ReportJobError, run_job
from monitor.store.records import DayDigest
from monitor.web.views import Authorize

log = logging.getLogger(__name__)

#: How often the daemon looks for a day to digest.
CHECK_INTERVAL_S = 300.0
#: How many of the newest links ``/api/evidence`` lists (two months).
LINKS_SHOWN = 62
#: A day is digested once it has been over this long at least (an hour)...
SETTLE_S = 3600.0


def settle_of(config: Config) -> float:
    """...or as long as events of real traffic of the day are still accepted."""
    feeds = any(p.kind == "traffic" for s in config.services for p in s.probes)
    return max(SETTLE_S, config.ingest.max_age if feeds else 0.0)


class DigestService:
    """Runs the digest child on the daemon's store (its file or database; none for a
    memory store)."""

    def __init__(
        self,
        config: Config,
        store: str | None,
        now: Callable[[], float],
        steady: Callable[[], bool] = lambda: True,
        read: Callable[[], Awaitable[list[DayDigest]]] | None = None,
    ) -> None:
        self.config = config
        self._read = read
        self.store = store
        self._now = now
        #: A stepped clock may call a day over that is not: digests wait while it is.
        self._steady = steady
        #: The last chain link written by this process (for the log and /api/evidence).
        self.head: dict[str, str] | None = None

    def register(self, app: web.Application, authorized: Authorize) -> None:
        """``GET /api/evidence``."""
        app.router.add_get("/api/evidence", self.evidence)

    async def evidence(self, request: web.Request) -> web.Response:
        """The chain's head and its last ``LINKS_SHOWN`` links, newest first."""
        digests = await self._read() if self._read is not None else []
        head = digests[-1] if digests else None
        return web.json_response(
            {
                "head": None if head is None else {"date": head.date, "chain": head.chain},
                "days_digested": len(digests),
                "first_day": digests[0].date if digests else None,
                "digests": [asdict(d) for d in reversed(digests[-LINKS_SHOWN:])],
            }
        )

    async def run(self) -> None:
        """Digest what is due, then again every ``CHECK_INTERVAL_S`` (real time)."""
        if self.store is None:
            return
        while True:
            await self.check()
            await asyncio.sleep(CHECK_INTERVAL_S)

    async def check(self) -> dict[str, Any] | None:
        """One pass; returns the child's answer (None without a stored history)."""
        if self.store is None or not self._steady():
            return None
        job = {
            "store": self.store,
            "timezone": self.config.zone.key,
            "now": self._now(),
            "settle_s": settle_of(self.config),
            "retention_days": self.config.storage.raw_retention_days,
        }
        try:
            answer = await run_job(job, module="monitor.evidence.digest")
        except ReportJobError as exc:
            log.error("daily digest failed (will retry in %.0f s): %s", CHECK_INTERVAL_S, exc)
            return None
        if answer.get("status") != "ok":
            log.error("daily digest failed (will retry): %s", answer.get("message"))
        elif answer["days"]:
            self.head = answer["head"]
            log.info(
                "digested %d day(s) of raw results up to %s: chain %s",
                len(answer["days"]),
                answer["head"]["date"],
                answer["head"]["chain"],
            )
        return answer
