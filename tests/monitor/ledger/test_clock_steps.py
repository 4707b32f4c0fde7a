"""The ledger under wall-clock steps (a fake clock): a step forward is sealed in bounded
slices that yield to the event loop, and results from a step back land in minutes already
sealed and are counted once, those past the re-decision horizon said in a counter."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from monitor.collector import Collector
from monitor.config import Config
from monitor.ledger.windows import SEAL_PER_ADVANCE, Ledger
from monitor.metrics import Metrics
from monitor.results import Result
from monitor.sla.minutes import MinuteCode, ObjectiveKey
from monitor.sla.windows import ROLLING
from monitor.store import MemoryStore
from probes.base import Outcome
from tests.fakes import FakeClock
from tests.support import builders

T0 = 1_795_000_020.0  # 2026-11-18, a Wednesday; every minute eligible (24x7)
DAY = 86_400.0


def _config() -> Config:
    return builders.config(
        builders.service("s", probes=("a", "b"), latency={"fast": 0.2}, availability=["up"])
    )


def _results(start: float, seconds: float) -> list[Result]:
    """One result of each probe every 10 s: every third one slow, to count both ways."""
    return [
        Result("s", probe, "http", start + i * 10.0, 0.05 if i % 3 else 0.5, Outcome.OK)
        for i in range(int(seconds // 10))
        for probe in ("a", "b")
    ]


async def _feed(
    results: list[Result], clock: FakeClock, ledger: Ledger, collector: Collector
) -> None:
    """As the daemon does: each result when the clock reaches it, sliding every minute."""
    for result in results:
        if result.started_at > clock.now():
            clock.advance(result.started_at - clock.now())
        collector.accept(result)
        if int(result.started_at) % 60 == 0:
            await collector.flush()
            await ledger.advance(clock.now(), collector.store)
    await collector.flush()


def _sample(metrics: Metrics, name: str) -> float:
    text = generate_latest(metrics.registry).decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def test_a_step_forward_is_sealed_in_bounded_slices_that_yield() -> None:
    config = _config()
    clock = FakeClock(start=T0)
    store = MemoryStore()
    ledger = Ledger(config, grace_minutes=1)
    collector = Collector(asyncio.Queue(), ledger, store, Metrics(config), clock)
    before = _results(T0, 3600)
    await _feed(before, clock, ledger, collector)
    await ledger.advance(clock.now(), store)
    sealed = int(clock.now() // 60) - 2  # grace of one minute, the current one open
    assert ledger.is_sealed(sealed)
    assert not ledger.is_sealed(sealed + 1)

    clock.jump(40 * DAY)  # the wall clock steps 40 days (57,600 minutes) ahead
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            beats += 1
            await asyncio.sleep(0)

    beating = asyncio.create_task(heartbeat())
    try:
        await ledger.advance(clock.now(), store)
        assert ledger.is_sealed(sealed + SEAL_PER_ADVANCE)
        assert not ledger.is_sealed(sealed + SEAL_PER_ADVANCE + 1)
        assert beats >= SEAL_PER_ADVANCE // 60 - 1  # the loop ran while it sealed
        calls = 1
        target = int(clock.now() // 60) - 2
        while not ledger.is_sealed(target):
            await ledger.advance(clock.now(), store)
            calls += 1
        assert calls == -(-(target - sealed) // SEAL_PER_ADVANCE)
    finally:
        beating.cancel()

    now = clock.now()
    for window in ROLLING:  # every result has left every rolling window
        assert ledger.window_rollup("s", ["a", "b"], window, now).attempts == 0
    november = ledger.window_rollup("s", ["a", "b"], "previous_month", now)
    assert november.attempts == len(before)
    assert november.good_within(0.2) == sum(1 for r in before if r.latency_s <= 0.2)
    # The 40 days without a result are unmonitored, not up and not down.
    codes = ledger.minute_counts(ObjectiveKey("s", "up"), "month", now)
    assert codes.get(MinuteCode.DOWN, 0) == 0


async def test_results_from_a_step_back_are_counted_once() -> None:
    config = _config()
    clock = FakeClock(start=T0)
    store = MemoryStore()
    metrics = Metrics(config)
    ledger = Ledger(config, grace_minutes=1, listener=metrics)
    collector = Collector(asyncio.Queue(), ledger, store, metrics, clock)
    forward = _results(T0, 3 * 3600)
    await _feed(forward, clock, ledger, collector)
    last_sealed = int(clock.now() // 60) - 2
    assert ledger.is_sealed(last_sealed)
    up_minutes = len({r.minute for r in forward})  # sealed ones and the open ones

    clock.jump(-(2.5 * 3600))  # back to T0 + 30 min: minutes sealed long ago
    back = _results(clock.now() + 10, 3600)
    assert all(r.minute <= last_sealed - 30 for r in back)  # far past the 15-minute horizon
    await _feed(back, clock, ledger, collector)
    await ledger.advance(clock.now(), store)

    now = T0 + 3 * 3600  # read the month as of the latest time the ledger slid to
    month = ledger.window_rollup("s", ["a", "b"], "month", now)
    sealed_forward = [r for r in forward if r.minute <= last_sealed]
    counted = sealed_forward + back
    open_forward = [r for r in forward if r.minute > last_sealed]
    assert month.attempts == len(counted) + len(open_forward)
    good = sum(1 for r in counted + open_forward if r.latency_s <= 0.2)
    assert month.good_within(0.2) == good
    # Stored once as well: the store's rollups hold every result exactly once.
    stored = await store.rollups_at(sorted({r.minute for r in forward + back}))
    assert sum(rollup.attempts for _, rollup in stored) == len(forward) + len(back)
    # Availability: each minute counted once, as it was decided before the step.
    codes = ledger.minute_counts(ObjectiveKey("s", "up"), "month", now)
    assert codes.get(MinuteCode.UP, 0) == up_minutes
    # Said: each result too late to correct availability, and the post-exclusion
    # counters count it once.
    assert _sample(metrics, "sla_results_too_late_total") == len(back)
    events = _sample(metrics, "sla_objective_events_total")
    assert events == len(sealed_forward) + len(back)
