"""The collector alone: each result counted once in the metrics, the ledger and the store;
a failing store keeps everything staged and says so; the drain writes what is left."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

from monitor.collector import Collector
from monitor.config import Config
from monitor.errors import StoreError
from monitor.ledger.windows import Ledger
from monitor.metrics import Metrics
from monitor.results import BatchRecord, QueueItem, Result
from monitor.sla.counts import Rollup
from monitor.store import MemoryStore, RollupKey
from monitor.store.sqlite import SqliteStore
from probes.base import Outcome
from tests.fakes import FakeClock
from tests.support import builders

CONFIG = builders.config(builders.service("svc", latency={"fast": 1.0}, availability=["up"]))
T0 = 1_795_000_020.0


class FlakyStore(MemoryStore):
    """A memory store whose batch writes fail while ``failing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.batches = 0

    async def write_batch(
        self, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
    ) -> None:
        if self.failing:
            raise StoreError("disk full")
        self.batches += 1
        await super().write_batch(results, deltas)


def _results(n: int) -> list[Result]:
    return [
        Result(
            "svc",
            "p",
            "http",
            T0 + i,
            0.5 if i % 4 else 2.0,
            Outcome.OK if i % 5 else Outcome.TIMEOUT,
        )
        for i in range(n)
    ]


def _collector(store: FlakyStore) -> tuple[Collector, Ledger, Metrics]:
    ledger = Ledger(CONFIG, grace_minutes=1)
    metrics = Metrics(CONFIG)
    queue: asyncio.Queue[Result] = asyncio.Queue(100)
    return Collector(queue, ledger, store, metrics, FakeClock(T0)), ledger, metrics


async def test_each_result_is_counted_once_everywhere() -> None:
    store = FlakyStore()
    collector, ledger, metrics = _collector(store)
    results = _results(40)
    for result in results:
        collector.accept(result)
    assert await collector.flush()
    stored = await store.rollups(int(T0 // 60), int(T0 // 60) + 2)
    total = Rollup()
    for _, rollup in stored:
        total.merge(rollup)
    ok = sum(r.ok for r in results)
    fast = sum(r.ok and r.latency_s <= 1.0 for r in results)
    assert (total.attempts, total.ok, total.good_within(1.0)) == (40, ok, fast)
    assert len(await store.results(T0 - 1, T0 + 100)) == 40
    get = metrics.registry.get_sample_value
    labels = {"service": "svc", "probe": "p", "kind": "http", "location": "default"}
    assert get("sla_probe_attempts_total", {**labels, "outcome": "ok"}) == ok
    assert get("sla_probe_attempts_total", {**labels, "outcome": "timeout"}) == 40 - ok
    assert get("sla_probe_duration_seconds_bucket", {**labels, "le": "1.0"}) == fast
    open_sum = ledger.window_rollup("svc", ("p",), "5m", T0 + 30)
    assert (open_sum.attempts, open_sum.good_within(1.0)) == (40, fast)
    assert (collector.accepted, collector.written, collector.staged) == (40, 40, 0)


async def test_a_failing_store_keeps_every_result_and_says_so() -> None:
    store = FlakyStore()
    collector, _, metrics = _collector(store)
    store.failing = True
    for result in _results(10):
        collector.accept(result)
    assert not await collector.flush()
    assert collector.store_failing
    assert collector.staged == 10
    assert metrics.registry.get_sample_value("sla_store_errors_total") == 1
    for result in _results(5):
        collector.accept(result)
    store.failing = False
    await collector.drain()
    assert not collector.store_failing
    assert (collector.staged, collector.written, store.batches) == (0, 15, 1)
    assert len(await store.results(T0 - 1, T0 + 100)) == 15


class BatchesFailStore(MemoryStore):
    """A memory store whose batch-event writes fail while ``failing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = True

    async def write_batch_events(self, events: Sequence[BatchRecord]) -> list[bool]:
        if self.failing:
            raise StoreError("disk full")
        return await super().write_batch_events(events)


def _traffic_config(batch: bool = False) -> Config:
    """Service ``svc``: the traffic feed ``feed`` with ``fast`` (1 s, 99 %) on it, and
    with ``batch`` a batch objective ``files``."""
    objectives: list[dict[str, object]] = [
        {"name": "fast", "kind": "latency", "threshold": 1, "target": 99, "source": "traffic"}
    ]
    if batch:
        objectives.append({"name": "files", "kind": "batch", "deadline": "4d", "target": 99})
    return builders.config(
        {"name": "svc", "probes": [{"name": "feed", "kind": "traffic"}], "objectives": objectives}
    )


async def test_events_stored_before_a_failure_are_counted_once_through_the_retry() -> None:
    """A request's exchanges commit, then its batch events fail: the sender is told to
    retry; the exchanges are counted at once (live, as a restart would count them) and
    the retry finds them duplicates, counted no second time."""
    config = _traffic_config(batch=True)
    store = BatchesFailStore()
    ledger = Ledger(config, grace_minutes=1)
    queue: asyncio.Queue[QueueItem] = asyncio.Queue(10)
    collector = Collector(queue, ledger, store, Metrics(config), FakeClock(T0))
    events = [
        Result("svc", "feed", "traffic", T0 + i, 0.3, Outcome.OK, "", f"e{i}") for i in range(5)
    ]
    batches = [BatchRecord("svc", "b1", "F", "submitted", T0, 10)]
    stop = asyncio.Event()
    running = asyncio.create_task(collector.run(stop))
    try:
        try:
            await collector.ingest(events, batches, timeout_s=5)
            raise AssertionError("the batch write should have failed")
        except StoreError:
            pass
        store.failing = False
        again = await collector.ingest(events, batches, timeout_s=5)
        assert again == [False] * 5 + [True]
    finally:
        stop.set()
        await running
    assert collector.accepted == 5  # once, at the first attempt
    assert ledger.window_rollup("svc", ["feed"], "month", T0 + 60).attempts == 5


async def test_bodies_stored_side_by_side_count_each_id_once(tmp_path: Path) -> None:
    """Twelve bodies of events posted at once to a collector on a real SQLite file (two
    stored at a time): each overlaps the one before by half its ids. Every id is counted
    once, in the ledger and the metrics, and each answer says which of its ids were new:
    those no earlier-committed body held."""
    config = _traffic_config()
    store = SqliteStore(tmp_path / "sla.sqlite3")
    await store.open()
    ledger = Ledger(config, grace_minutes=1)
    metrics = Metrics(config)
    queue: asyncio.Queue[QueueItem] = asyncio.Queue(100)
    collector = Collector(queue, ledger, store, metrics, FakeClock(T0))
    bodies = [
        [
            Result("svc", "feed", "traffic", T0 + i, 0.3, Outcome.OK, "", f"e{i}")
            for i in range(50 * b, 50 * b + 100)
        ]
        for b in range(12)
    ]
    stop = asyncio.Event()
    running = asyncio.create_task(collector.run(stop))
    try:
        answers = await asyncio.gather(*(collector.ingest(body, timeout_s=10) for body in bodies))
    finally:
        stop.set()
        await running
        await store.aclose()
    unique = 50 * 12 + 50
    assert sum(sum(answer) for answer in answers) == unique
    for body, answer in zip(bodies, answers, strict=True):
        # Committed in the order taken: a body's first half was in the body before it.
        assert answer == [body is bodies[0] or i >= 50 for i in range(100)]
    assert collector.accepted == unique
    assert ledger.window_rollup("svc", ["feed"], "month", T0 + 900).attempts == unique
    labels = {
        "service": "svc",
        "probe": "feed",
        "kind": "traffic",
        "outcome": "ok",
        "location": "default",
    }
    assert metrics.registry.get_sample_value("sla_probe_attempts_total", labels) == unique


class SlowStore(FlakyStore):
    """A store whose batch writes wait for ``go`` (a slow database), and fail while
    ``failing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()
        self.writing = asyncio.Event()

    async def write_batch(
        self, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
    ) -> None:
        self.writing.set()
        await self.go.wait()
        await super().write_batch(results, deltas)  # FlakyStore's: fails while failing


async def test_results_taken_while_a_batch_is_written_are_written_after_it_once() -> None:
    """The collector goes on taking results while the store writes the last batch; a
    batch the store refuses goes back in front of them; at the end every result is in
    the store once, and each minute's rollup counts each once."""
    store = SlowStore()
    queue: asyncio.Queue[QueueItem] = asyncio.Queue(1000)
    ledger = Ledger(CONFIG, grace_minutes=1)
    collector = Collector(
        queue, ledger, store, Metrics(CONFIG), FakeClock(T0), batch_size=10, flush_interval_s=0.01
    )
    stop = asyncio.Event()
    running = asyncio.create_task(collector.run(stop))
    results = [
        Result("svc", "p", "http", T0 + i, 0.5, Outcome.OK, request_id=f"r{i}") for i in range(50)
    ]
    for result in results[:10]:
        await queue.put(result)
    await asyncio.wait_for(store.writing.wait(), 5)  # the first batch is being written
    for result in results[10:30]:
        await queue.put(result)
    await asyncio.sleep(0.1)
    assert collector.staged == 30  # taken, nothing written yet
    assert not collector.written_through(int(T0 // 60))
    store.failing = True  # the first write fails: its batch comes back, first
    store.go.set()
    await asyncio.sleep(0.1)
    assert collector.store_failing
    assert collector.staged == 30
    store.failing = False
    for result in results[30:]:
        await queue.put(result)
    stop.set()
    await asyncio.wait_for(running, 10)
    stored = await store.results(T0 - 1, T0 + 100)
    assert [r.request_id for r in stored] == [r.request_id for r in results]
    [(_, rollup)] = await store.rollups(int(T0 // 60), int(T0 // 60) + 1)
    assert rollup.attempts == 50
    assert (collector.accepted, collector.written, collector.staged) == (50, 50, 0)
    assert collector.written_through(int(T0 // 60))
