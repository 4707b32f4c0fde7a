"""Two locations deciding minutes together through one PostgreSQL store: each minute is
decided once, by the quorum of what both locations wrote, and both daemons' windows hold
the same figures (the store's pooled rollups and decisions)."""

from __future__ import annotations

import asyncio
from typing import Any

from monitor.collector import Collector
from monitor.config import Config
from monitor.ledger.windows import Ledger
from monitor.metrics import Metrics
from monitor.results import Result
from monitor.sla.minutes import MinuteCode, ObjectiveKey
from monitor.store.postgres import PostgresStore
from probes.base import Outcome
from tests.fakes import FakeClock
from tests.support import builders

T0 = 1_767_261_600.0  # 2026-01-01T10:00:00Z, a whole minute
M0 = int(T0 // 60)
AVAIL = ObjectiveKey("svc", "avail")


def document(location: str, url: str) -> dict[str, Any]:
    """The config of location ``location``'s daemon (locations a and b, quorum 2)."""
    svc = builders.service("svc", probes=("p",), latency={"fast": 1}, availability=["avail"])
    # The same promise judged from each location alone.
    for where in ("a", "b"):
        objective = {"name": f"fast-{where}", "kind": "latency", "threshold": 1, "target": 99}
        svc["objectives"].append({**objective, "location": where})
    return builders.document(
        svc,
        instance={"name": f"daemon-{location}", "location": location},
        locations={"names": ["a", "b"]},
        storage={"path": ":memory:", "url": url},
    )


def _config(location: str, url: str) -> Config:
    return Config.model_validate(document(location, url))


class Daemon:
    """One location's ledger and collector on its own connection to the shared store."""

    def __init__(self, location: str, url: str) -> None:
        self.location = location
        self.config = _config(location, url)
        self.store = PostgresStore(url)
        self.metrics = Metrics(self.config)
        self.ledger = Ledger(self.config, grace_minutes=1, listener=self.metrics)
        self.collector = Collector(
            asyncio.Queue(), self.ledger, self.store, self.metrics, FakeClock(start=T0)
        )
        self.store.share_minutes()
        self.ledger.share(self.store, self.collector.written_through)
        self.collector.take_late = self.store.take_late

    async def minute(self, minute: int, ok: int, failed: int, latency: float = 0.2) -> None:
        for i in range(ok + failed):
            outcome = Outcome.OK if i < ok else Outcome.TIMEOUT
            self.collector.accept(
                Result(
                    "svc",
                    "p",
                    "http",
                    minute * 60 + 1 + i,
                    latency,
                    outcome,
                    request_id=f"{self.location}-{minute}-{i}",
                    location=self.location,
                )
            )
        assert await self.collector.flush()

    async def seal(self, now: float) -> None:
        await self.ledger.advance(now, self.store)

    def code(self, minute: int) -> MinuteCode:
        return MinuteCode(self.ledger._states[AVAIL][minute])

    def fault_seconds(self, location: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "sla_location_fault_seconds_total",
            {"service": "svc", "objective": "avail", "location": location},
        )
        return value or 0.0


async def test_two_locations_decide_each_minute_once_by_quorum(postgres_url: str) -> None:
    a, b = Daemon("a", postgres_url), Daemon("b", postgres_url)
    for daemon in (a, b):
        await daemon.store.open()
    try:
        for daemon in (a, b):
            await daemon.seal(T0)  # start sealing from here
        # M0: only a sees failures (its own path): up, a at fault.
        await a.minute(M0, ok=0, failed=6)
        await b.minute(M0, ok=6, failed=0)
        # M0+1: both see it down: down.
        await a.minute(M0 + 1, ok=1, failed=5)
        await b.minute(M0 + 1, ok=0, failed=6)
        # M0+2: only b measured: fewer than the quorum (2) of locations: unmonitored.
        await b.minute(M0 + 2, ok=6, failed=0)
        # M0+3: both fine, with different latencies (pooled for the latency objective).
        await a.minute(M0 + 3, ok=6, failed=0, latency=0.5)
        await b.minute(M0 + 3, ok=6, failed=0, latency=1.5)
        now = (M0 + 6) * 60.0
        await a.seal(now)  # a decides every minute first ...
        await b.seal(now)  # ... and b takes a's decisions
        expected = [MinuteCode.UP, MinuteCode.DOWN, MinuteCode.UNMONITORED, MinuteCode.UP]
        for daemon in (a, b):
            assert [daemon.code(M0 + i) for i in range(4)] == expected
            assert daemon.fault_seconds("a") == 60
            assert daemon.fault_seconds("b") == 0
            # The latency objective pools both locations' results, read from the store:
            # this daemon's and the other's alike.
            sums = daemon.ledger.window_rollup("svc", ["p"], "1h", now)
            assert sums.attempts == 6 + 6 + 6 + 6 + 6 + 6 + 6
            assert sums.ok == 6 + 1 + 6 + 6 + 6
            assert sums.good_within(1.0) == 6 + 1 + 6 + 6  # not b's 1.5 s results
            # Each location's own objective counts that location's results alone, on
            # both daemons: a's 3 minutes of 6 results, b's 4 (its 1.5 s results late).
            for where, counts in (("a", (18, 0 + 1 + 6, 1 + 6)), ("b", (24, 6 + 6 + 6, 6 + 6))):
                own = daemon.ledger.window_rollup("svc", [f"p@{where}"], "1h", now)
                assert (own.attempts, own.ok, own.good_within(1.0)) == counts
        stored = await a.store.minute_states(M0, M0 + 4)
        assert [(m.minute, m.states["avail"], m.faults) for m in stored] == [
            (M0, "up", {"avail": ["a"]}),
            (M0 + 1, "down", {}),
            (M0 + 2, "unmonitored", {}),
            (M0 + 3, "up", {}),
        ]
        # A result of a decided minute (a slow location) is stored raw, counted nowhere,
        # and shown as late: it cannot change what both daemons already show.
        await a.minute(M0 + 1, ok=3, failed=0)
        rollups = {k: r for k, r in await a.store.rollups(M0 + 1, M0 + 2)}
        assert rollups[("svc", "p", M0 + 1)].attempts == 12
        assert len(await a.store.results(M0 * 60 + 60, M0 * 60 + 120)) == 15
        late = a.metrics.registry.get_sample_value(
            "sla_results_too_late_total", {"service": "svc", "probe": "p"}
        )
        assert late == 3
        assert a.code(M0 + 1) is MinuteCode.DOWN
        # A daemon started again reads each location's series back from the store.
        again = Ledger(_config("b", postgres_url), grace_minutes=1)
        again.share(a.store, lambda minute: True)
        await again.load(a.store, now)
        own = again.window_rollup("svc", ["p@b"], "1h", now)
        assert (own.attempts, own.ok, own.good_within(1.0)) == (24, 18, 12)
    finally:
        for daemon in (a, b):
            await daemon.store.aclose()


async def test_a_minute_waits_for_this_daemons_own_results(postgres_url: str) -> None:
    """Sealing never decides a minute whose own results are still staged (the store
    failing): it would be decided without this location."""
    a = Daemon("a", postgres_url)
    await a.store.open()
    try:
        await a.seal(T0)
        a.collector.accept(Result("svc", "p", "http", M0 * 60 + 1, 0.1, Outcome.OK, location="a"))
        await a.seal((M0 + 5) * 60.0)
        assert not a.ledger.is_sealed(M0)
        assert await a.collector.flush()
        await a.seal((M0 + 5) * 60.0)
        assert a.ledger.is_sealed(M0 + 3)
        # Only a measured it: below the quorum of two.
        assert a.code(M0) is MinuteCode.UNMONITORED
    finally:
        await a.store.aclose()


async def test_a_minute_no_daemon_decided_is_decided_by_the_quorum_at_restart(
    postgres_url: str,
) -> None:
    """Both daemons stopped after writing a minute, before deciding it: the next start
    decides it as sealing would have, by the quorum (a alone saw it down: up, a at fault),
    not from the pooled results (8 failures of 12: down)."""
    a, b = Daemon("a", postgres_url), Daemon("b", postgres_url)
    for daemon in (a, b):
        await daemon.store.open()
    try:
        for daemon in (a, b):
            await daemon.seal(T0)
        await a.minute(M0, ok=0, failed=6)
        await b.minute(M0, ok=4, failed=2)
        now = (M0 + 6) * 60.0
        again = Daemon("b", postgres_url)  # a fresh start, on b's connection
        again.store = b.store
        again.ledger.share(b.store, lambda minute: True)
        await again.ledger.load(b.store, now)
        assert again.code(M0) is MinuteCode.UP
        (stored,) = await a.store.minute_states(M0, M0 + 1)
        assert (stored.states["avail"], stored.faults) == ("up", {"avail": ["a"]})
    finally:
        for daemon in (a, b):
            await daemon.store.aclose()
