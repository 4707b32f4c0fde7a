"""A deferred-processing service: batches handed in and processed, reported to the
monitor as batch events when each step happens (simulated time), with a truth of its own.

Volumes, arrivals, delays and the split into steps are drawn from the simulator's seed.
A share of the batches is finished after the contract's deadline. The truth
(``BatchTruth``) is what really happened to each batch; the monitor's batch figures are
checked against it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from simulator.profiles import seeded_random
from simulator.sender import EventSender
from simulator.settings import BatchServiceSettings, SimulatorSettings


@dataclass(slots=True)
class BatchTruth:
    """One batch as the service handled it: handed in, then processed in steps."""

    batch: str
    submitted_at: float
    volume: int
    #: (when, records) of each processing step, in time order.
    steps: list[tuple[float, int]] = field(default_factory=list)


class BatchService:
    """Hands in and processes batches, reporting each step as it happens."""

    def __init__(
        self, settings: BatchServiceSettings, seed: int, wall_clock: Callable[[], float]
    ) -> None:
        self.settings = settings
        self._rng = seeded_random(seed, f"batches/{settings.service}")
        self._clock = wall_clock
        self._next_at: float | None = None
        #: Every batch handed in so far.
        self.truth: list[BatchTruth] = []
        self._due: list[tuple[float, str]] = []  # (when, event JSON) not yet happened
        self._sender = EventSender(settings.ingest_url, f"batches/{settings.service}")
        self._events = 0
        #: Every step up to this time has been handed to the sender.
        self.reported_until: float | None = None

    def _draw(self, now: float) -> None:
        """Hand in the batches that arrived up to ``now`` and plan their processing."""
        rate = self.settings.per_day / 86_400.0
        if self._next_at is None:
            self._next_at = now - self.settings.history + self._rng.expovariate(rate)
        while self._next_at < now:
            at = self._next_at
            settings = self.settings
            volume = self._rng.randint(settings.records_min, settings.records_max)
            if self._rng.random() < settings.late_probability:
                delay = self._rng.uniform(settings.deadline * 1.01, settings.deadline * 1.5)
            else:
                delay = min(
                    self._rng.lognormvariate(math.log(settings.delay_median), settings.delay_sigma),
                    settings.deadline * 0.99,
                )
            parts = self._rng.randint(1, settings.parts_max)
            cuts = sorted(self._rng.randint(0, volume) for _ in range(parts - 1))
            sizes = [b - a for a, b in zip([0, *cuts], [*cuts, volume], strict=True)]
            times = sorted(self._rng.uniform(0.1, 1.0) * delay for _ in range(parts - 1))
            batch = BatchTruth(f"{settings.service}-{len(self.truth) + 1}", at, volume)
            for when, size in zip([*times, delay], sizes, strict=True):
                batch.steps.append((at + when, size))
            self.truth.append(batch)
            self._plan(at, batch.batch, "submitted", volume)
            for when, size in batch.steps:
                self._plan(when, batch.batch, "processed", size)
            self._next_at = at + self._rng.expovariate(rate)

    def _plan(self, at: float, batch: str, event: str, records: int) -> None:
        self._events += 1
        line = json.dumps(
            {
                "type": "batch",
                "id": f"{self.settings.service}-ev{self._events}",
                "service": self.settings.service,
                "batch": batch,
                "event": event,
                "at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(),
                "records": records,
            }
        )
        self._due.append((at, line))

    async def tick(self, session: aiohttp.ClientSession, token: str) -> None:
        """Everything that happened up to now goes to the monitor, in time order."""
        now = self._clock()
        self._draw(now)
        happened = sorted((d for d in self._due if d[0] <= now), key=lambda d: d[0])
        self._due = [d for d in self._due if d[0] > now]
        self._sender.unsent += [line for _, line in happened]
        self.reported_until = now
        await self._sender.send(session, token)

    async def flush(self, session: aiohttp.ClientSession, token: str, attempts: int = 20) -> bool:
        """Send what has happened so far and not been taken yet: True once all is."""
        for _ in range(attempts):
            await self.tick(session, token)
            if not self._sender.unsent:
                return True
            await asyncio.sleep(0.2)
        return False

    @property
    def refused(self) -> int:
        """Events the monitor refused."""
        return self._sender.refused


class BatchServices:
    """Every configured batch service, each on its own schedule."""

    def __init__(self, settings: SimulatorSettings, wall_clock: Callable[[], float]) -> None:
        self.services = [BatchService(b, settings.seed, wall_clock) for b in settings.batches]

    async def run(self) -> None:
        """Report until cancelled."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await asyncio.gather(*(self._loop(s, session) for s in self.services))

    async def flush(self) -> bool:
        """Send what has happened and not been taken (after ``Simulator.stop_traffic``)."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            done = [await s.flush(session, _token(s.settings)) for s in self.services]
        return all(done)

    async def _loop(self, service: BatchService, session: aiohttp.ClientSession) -> None:
        token = _token(service.settings)
        while True:
            await service.tick(session, token)
            await asyncio.sleep(service.settings.send_every)


def _token(settings: BatchServiceSettings) -> str:
    return os.environ.get(settings.token_env, "").strip()
