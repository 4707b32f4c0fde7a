"""The daemons sharing one store (``storage.url``): each keeps its row of the store's
``instances`` table current, and ``GET /api/cluster`` shows every one of them with where
it probes from, when it was last seen and how far behind its last stored result is.

A daemon on its own SQLite file shows itself: the same view, one row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from monitor import __version__
from monitor.clock import Clock
from monitor.config import Config
from monitor.errors import StoreError
from monitor.leader import LEADER
from monitor.store import InstanceRegistry, Leases
from monitor.store.records import InstanceRecord
from monitor.web.views import Authorize

log = logging.getLogger(__name__)

#: Seconds between two heartbeats (real time).
HEARTBEAT_S = 5.0
#: An instance not seen for this many heartbeats is shown as ``stale``.
STALE_AFTER = 3


class Cluster:
    """This daemon's heartbeat, and the view of every daemon on the store.

    Args:
        config: its ``instance`` section names this daemon.
        store: where the rows are kept.
        clock: wall time of the heartbeats.
        last_result: the start time of the last result this daemon wrote (None: none yet).
        leases: where the leader's lease is (None: this daemon is alone on its store,
            and leads).
    """

    def __init__(
        self,
        config: Config,
        store: InstanceRegistry,
        clock: Clock,
        last_result: Callable[[], float | None],
        leases: Leases | None = None,
    ) -> None:
        self.name = config.instance.name
        self.location = config.instance.location
        self._store = store
        self._clock = clock
        self._last_result = last_result
        self._leases = leases
        self.started_at = clock.now()
        self._failing = False  # said once per failure, not at every beat

    async def beat(self) -> None:
        """Write this daemon's row now."""
        await self._store.write_instance(
            InstanceRecord(
                self.name,
                self.location,
                __version__,
                self.started_at,
                self._clock.now(),
                self._last_result(),
            )
        )

    async def run(self) -> None:
        """Beat every ``HEARTBEAT_S`` until cancelled; a store that fails is logged, and
        the beats go on (a stale row is what the others then see)."""
        while True:
            try:
                await self.beat()
                if self._failing:
                    log.info("instance %s: heartbeat written again", self.name)
                self._failing = False
            except StoreError as exc:
                if not self._failing:
                    log.error("instance %s: heartbeat not written: %s", self.name, exc)
                self._failing = True
            await asyncio.sleep(HEARTBEAT_S)

    def register(self, app: web.Application, authorized: Authorize) -> None:
        """``GET /api/cluster``."""
        app.router.add_get("/api/cluster", self.view)

    async def view(self, request: web.Request) -> web.Response:
        """Every instance on the store, this one first among equals: ``self`` names it."""
        try:
            rows = await self._store.instances()
            lease = (self.name, 0.0) if self._leases is None else await self._leases.lease(LEADER)
        except StoreError as exc:
            return web.json_response({"error": f"the store cannot be read: {exc}"}, status=503)
        now = self._clock.now()
        return web.json_response(
            {
                "self": {"name": self.name, "location": self.location},
                "locations": sorted({r.location for r in rows}),
                # None while no daemon holds the lease (a leader died: until its term ends).
                "leader": None if lease is None else lease[0],
                "instances": [_shown(r, now) for r in rows],
            }
        )


def _shown(row: InstanceRecord, now: float) -> dict[str, Any]:
    seen_ago = now - row.seen_at
    return {
        **asdict(row),
        "seen_ago_s": round(seen_ago, 3),
        "result_lag_s": None if row.last_result_at is None else round(now - row.last_result_at, 3),
        "state": "stale" if seen_ago > STALE_AFTER * HEARTBEAT_S else "up",
    }
