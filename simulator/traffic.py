"""The network's real traffic, reported to the monitor as exchange events.

Each configured stream draws exchanges at its rate (simulated time) from its profile —
the same latency, errors and outages as the simulated endpoints — and records each in the
truth log (kind ``traffic``). Like a gateway, it reports an exchange once it has ended, in
batches to ``POST /api/ingest``; a batch the monitor did not take (no answer, 5xx) is sent
again with the same ids, so the monitor must count each once. Some batches can be held
back (a backlog), to arrive after their minutes were sealed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from simulator.profiles import Behaviour, seeded_random
from simulator.sender import EventSender
from simulator.settings import SimulatorSettings, TrafficSettings
from simulator.truth import TruthLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Exchange:
    event_id: str
    start: float
    duration_s: float
    outcome: str

    @property
    def end(self) -> float:
        return self.start + self.duration_s

    def to_json(self, service: str, feed: str | None) -> str:
        event = {
            "type": "exchange",
            "id": self.event_id,
            "service": service,
            "start": dt.datetime.fromtimestamp(self.start, dt.UTC).isoformat(),
            "duration_s": self.duration_s,
            "outcome": self.outcome,
        }
        if feed is not None:
            event["feed"] = feed
        return json.dumps(event)


class TrafficStream:
    """One stream of exchanges of one service, and its sender."""

    def __init__(
        self,
        settings: TrafficSettings,
        simulator: SimulatorSettings,
        truth: TruthLog,
        wall_clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        name = f"traffic/{settings.service}/{settings.feed or ''}"
        self._behaviour = Behaviour.seeded(
            simulator.profiles[settings.profile], simulator.seed, name
        )
        self._rng = seeded_random(simulator.seed, f"{name}/arrivals")
        self._truth = truth
        self._clock = wall_clock
        self._endpoint = f"traffic/{settings.service}"
        self._next_at: float | None = None
        self._count = 0
        self._running: list[_Exchange] = []  # started, not yet ended
        self._held: list[tuple[float, list[_Exchange]]] = []  # backlog: (send after, batch)
        self._unsent: list[_Exchange] = []
        self._sender = EventSender(settings.ingest_url, "traffic")
        #: Events held back as a backlog (sent ``backlog_delay`` later).
        self.held_back = 0

    def _generate(self, now: float) -> None:
        """Draw the exchanges that started up to ``now`` (Poisson arrivals)."""
        if self._next_at is None:
            self._next_at = now
        while self._next_at < now:
            at = self._next_at
            decision = self._behaviour.draw(at)
            self._count += 1
            event_id = f"{self.settings.service}-{self._count}"
            if decision.action == "drop":  # no answer: the sender gives up at its timeout
                exchange = _Exchange(event_id, at, self.settings.timeout, "timeout")
            else:
                outcome = "ok" if decision.action == "ok" else "error"
                exchange = _Exchange(event_id, at, decision.delay_s, outcome)
            self._truth.record(
                event_id, self._endpoint, "traffic", at, exchange.duration_s, decision.action
            )
            self._running.append(exchange)
            self._next_at = at + self._rng.expovariate(self.settings.rate)

    def _ended(self, now: float) -> list[_Exchange]:
        """The exchanges that have ended by ``now`` (reported), the others kept."""
        ended = [e for e in self._running if e.end <= now]
        self._running = [e for e in self._running if e.end > now]
        return ended

    async def tick(self, session: aiohttp.ClientSession, token: str) -> None:
        """Generate up to now, then send what has ended (and the backlog that is due)."""
        now = self._clock()
        self._generate(now)
        ended = self._ended(now)
        if ended and self._rng.random() < self.settings.backlog_probability:
            self._held.append((now + self.settings.backlog_delay, ended))
            self.held_back += len(ended)
            ended = []
        due = [batch for after, batch in self._held if after <= now]
        self._held = [(after, batch) for after, batch in self._held if after > now]
        self._unsent += ended + [e for batch in due for e in batch]
        await self._send(session, token)

    async def finish(self, session: aiohttp.ClientSession, token: str, attempts: int = 20) -> bool:
        """Stop generating and send everything left (held back, still running): True once
        the monitor has taken it all."""
        self._unsent += [e for _, batch in self._held for e in batch] + self._running
        self._held, self._running = [], []
        for _ in range(attempts):
            await self._send(session, token)
            if not self.pending:
                return True
            await asyncio.sleep(0.2)
        return False

    async def _send(self, session: aiohttp.ClientSession, token: str) -> None:
        service, feed = self.settings.service, self.settings.feed
        self._sender.unsent += [e.to_json(service, feed) for e in self._unsent]
        self._unsent = []
        await self._sender.send(session, token)

    @property
    def delivered(self) -> int:
        """Events the monitor took (stored, or stored before)."""
        return self._sender.delivered

    @property
    def refused(self) -> int:
        """Events the monitor refused."""
        return self._sender.refused

    @property
    def pending(self) -> int:
        """Events not yet taken by the monitor."""
        return len(self._sender.unsent) + len(self._unsent)


class TrafficGenerator:
    """Every configured stream, each sending on its own schedule."""

    def __init__(
        self, settings: SimulatorSettings, truth: TruthLog, wall_clock: Callable[[], float]
    ) -> None:
        self.streams = [TrafficStream(t, settings, truth, wall_clock) for t in settings.traffic]

    async def run(self) -> None:
        """Send until cancelled."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await asyncio.gather(*(self._loop(stream, session) for stream in self.streams))

    async def finish(self) -> bool:
        """Send every stream's remaining events (after ``Simulator.stop_traffic``): True
        once the monitor has taken them all."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            done = [await s.finish(session, _token(s.settings)) for s in self.streams]
        return all(done)

    async def _loop(self, stream: TrafficStream, session: aiohttp.ClientSession) -> None:
        token = _token(stream.settings)
        if not token:
            log.error("traffic: %s is not set: events are not sent", stream.settings.token_env)
            return
        while True:
            await stream.tick(session, token)
            await asyncio.sleep(stream.settings.send_every)


def _token(settings: TrafficSettings) -> str:
    return os.environ.get(settings.token_env, "").strip()
