"""One leader among the daemons sharing a database: it alone does the singleton duties
(alert notifications, incident detection, the monthly report, the daily digests, pruning
and compaction); every daemon keeps probing and writing whatever it is.

Leadership is a lease in the store (``Leases``), timed by the database's clock, so the
daemons' clocks do not matter: the leader renews it every third of its term; when the
leader stops cleanly it gives the lease up and another daemon takes it at its next try;
when it dies the lease runs out. Either way another leads within
``instance.leader_timeout`` (the term is two thirds of it, a try every third of the term).

A leader trusts its lease for less than the term, measured on its own monotonic clock
from *before* it asked, so it stops acting before the database could give the lease to
another (a daemon paused past its term does no duty on a lapsed lease).

A daemon on its own SQLite file (or in memory) leads, without a lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from monitor.errors import StoreError
from monitor.store import Leases

log = logging.getLogger(__name__)

#: The lease's name in the store.
LEADER = "leader"


class Leadership:
    """Takes and keeps the leader's lease for ``name``, or leads alone.

    Args:
        name: this daemon (``instance.name``).
        store: where the lease lives; None: no other daemon can share the store.
        timeout_s: another daemon leads at most this long after this one is gone.
        on_change: awaited with True when this daemon starts leading, False when it stops.
    """

    def __init__(
        self,
        name: str,
        store: Leases | None,
        timeout_s: float,
        on_change: Callable[[bool], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._store = store
        self.term_s = timeout_s * 2 / 3
        self.retry_s = self.term_s / 3
        self._on_change = on_change
        self._valid_until = 0.0  # monotonic
        self._was = store is None
        self._failing = False

    @property
    def shared(self) -> bool:
        """Whether other daemons may share the store (and leadership is a lease)."""
        return self._store is not None

    def leading(self) -> bool:
        """Whether this daemon may do the singleton duties now."""
        return self._store is None or time.monotonic() < self._valid_until

    async def try_once(self) -> bool:
        """Take or renew the lease once; returns whether this daemon leads."""
        if self._store is None:
            return True
        asked_at = time.monotonic()
        try:
            held = await self._store.take_lease(LEADER, self.name, self.term_s)
        except StoreError as exc:
            if not self._failing:
                log.error("instance %s: the leader's lease cannot be read: %s", self.name, exc)
            self._failing = True
            held = False
        else:
            self._failing = False
        # A renewal that failed leaves the lease valid until its own end.
        if held:
            if not self._was:
                # Taking over: catch up with what the last leader stored *before* acting,
                # so no duty runs on this process's stale view meanwhile.
                log.warning("instance %s now leads", self.name)
                if self._on_change is not None:
                    await self._on_change(True)
                self._was = True
            self._valid_until = asked_at + self.term_s * 5 / 6
        leading = self.leading()
        if self._was and not leading:
            self._was = False
            log.warning("instance %s no longer leads", self.name)
            if self._on_change is not None:
                await self._on_change(False)
        return leading

    async def run(self) -> None:
        """Try every ``retry_s`` until cancelled."""
        while True:
            await self.try_once()
            await asyncio.sleep(self.retry_s)

    async def release(self) -> None:
        """Give the lease up (a clean stop): another daemon leads at its next try."""
        if self._store is None or not self.leading():
            return
        self._valid_until = 0.0
        try:
            await self._store.release_lease(LEADER, self.name)
        except StoreError as exc:
            log.error("instance %s: the lease runs out by itself: %s", self.name, exc)
