"""The one way events come in, whatever carried them (the API or MQTT): parsed and
checked line by line, the good ones handed to the collector (stored, then counted), what
became of each counted in ``sla_events_total``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.clock import Clock
from monitor.config import Config
from monitor.ingest.events import (
    LineError,
    Read,
    unknown_batches,
)
from monitor.ingest.pool import ReadPool
from monitor.metrics import Metrics
from monitor.results import BatchRecord, Result
from monitor.sla.counts import Counted

#: Stores events (with what each adds to its rollups) and batch events and says, per
#: event, whether it was new (``Collector.ingest``).
Store = Callable[[list[Result], list[BatchRecord], list[Counted]], Awaitable[list[bool]]]


@dataclass(frozen=True, slots=True)
class Taken:
    """What became of a body's events."""

    stored: int = 0
    duplicate: int = 0
    errors: list[LineError] = field(default_factory=list)

    @property
    def late(self) -> int:
        """Events refused because their minute is closed."""
        return sum(1 for e in self.errors if e.reason == "late")

    @property
    def taken(self) -> int:
        """Events stored, now or before."""
        return self.stored + self.duplicate

    def to_dict(self) -> dict[str, Any]:
        """As the API answers it."""
        return {
            "stored": self.stored,
            "duplicate": self.duplicate,
            "invalid": len(self.errors) - self.late,
            "late": self.late,
            "errors": [e.to_dict() for e in self.errors],
        }


class Intake:
    """Parses, checks and stores the events of one body at a time."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        store: Store,
        metrics: Metrics,
        known_batch: Callable[[str, str], bool] = lambda service, batch: False,
        pool: ReadPool | None = None,
    ) -> None:
        self.clock = clock
        self._store = store
        self._metrics = metrics
        self._known_batch = known_batch
        #: Reads bodies: in ``ingest.workers`` processes once started, else on the loop.
        self.pool = pool if pool is not None else ReadPool.of(config)

    async def read(self, body: bytes) -> Read:
        """The body's good events (results and batch records), and the others' errors.

        Raises:
            BodyError: the body as a whole cannot be read.
            TooManyEvents: over ``ingest.max_events``.
        """
        return self.known(await self.parse(body))

    async def parse(self, body: bytes) -> Read:
        """The body read and checked against the config and the clock (by a worker
        process when the pool has one, else on the loop), not yet against the batches
        known (``known``): that waits for the bodies before it to be stored.

        Raises:
            BodyError: the body as a whole cannot be read.
            TooManyEvents: over ``ingest.max_events``.
        """
        return await self.pool.read(body, self.clock.now())

    def known(self, read: Read) -> Read:
        """The read with each ``processed`` event of a batch not known (nor submitted in
        the same body) refused."""
        return unknown_batches(read, self._known_batch)

    async def take(self, read: Read) -> Taken:
        """Store the good events (answered once committed) and count what became of all.

        Raises:
            StoreError, TimeoutError: not stored; nothing was counted (send them again).
        """
        new: list[bool] = []
        errors = read.errors
        if read.good:
            started = time.perf_counter()
            try:
                new = await self._store(read.events, read.batches, read.counts)
            finally:
                self._metrics.ingest_seconds.observe(time.perf_counter() - started)
        stored = sum(new)
        taken = Taken(stored, len(new) - stored, errors)
        counts = {"stored": taken.stored, "duplicate": taken.duplicate, "late": taken.late}
        counts["invalid"] = len(errors) - taken.late
        for result, value in counts.items():
            if value:
                self._metrics.events.labels(result).inc(value)
        return taken
