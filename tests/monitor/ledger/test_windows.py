"""The ledger's windows against the raw results they summarise (hypothesis)."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.collector import Collector
from monitor.config import Config
from monitor.ledger.windows import Ledger
from monitor.metrics import Metrics
from monitor.results import Result
from monitor.sla.minutes import ObjectiveKey
from monitor.sla.windows import ROLLING, WINDOWS
from monitor.store import MemoryStore
from probes.base import Outcome
from tests.fakes import FakeClock
from tests.support import builders

T0 = 1_795_000_020.0  # a Sunday in November 2026; every minute eligible (24x7)
THRESHOLDS = {"fast": 0.2, "slow": 1.0}


def _config() -> Config:
    return builders.config(
        builders.service("s", probes=("a", "b"), latency=THRESHOLDS, availability=["up"])
    )


results_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.floats(min_value=0, max_value=3 * 3600, allow_nan=False),  # offset from T0
        st.floats(min_value=0.001, max_value=3.0, allow_nan=False),
        st.sampled_from([Outcome.OK, Outcome.OK, Outcome.OK, Outcome.TIMEOUT, Outcome.STATUS]),
    ),
    max_size=300,
)
queries_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=4 * 3600, allow_nan=False),
        st.sampled_from(["5m", "30m", "1h", "6h"]),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results_strategy, queries_strategy)
async def test_window_compliance_equals_a_count_of_raw_results(
    raw: list[tuple[str, float, float, Outcome]], queries: list[tuple[float, str]]
) -> None:
    config = _config()
    clock = FakeClock(start=T0)
    store = MemoryStore()
    ledger = Ledger(config, grace_minutes=1)
    collector = Collector(asyncio.Queue(), ledger, store, Metrics(config), clock)
    results = [
        Result("s", probe, "http", T0 + offset, latency, outcome)
        for probe, offset, latency, outcome in raw
    ]
    # Results arrive in start order, with time moving on between them.
    for result in sorted(results, key=lambda r: r.started_at):
        if result.started_at > clock.now():
            clock.advance(result.started_at - clock.now())
            await collector.flush()
            await ledger.advance(clock.now(), store)
        collector.accept(result)
    await collector.flush()

    for at, window in sorted(queries):
        now = max(clock.now(), T0 + at)
        clock.advance(now - clock.now())
        await ledger.advance(now, store)
        current = int(now // 60)
        first = current - ROLLING[window] + 1
        inside = [r for r in results if first <= int(r.started_at // 60) <= current]
        rollup = ledger.window_rollup("s", ["a", "b"], window, now)
        assert rollup.attempts == len(inside)
        for threshold in THRESHOLDS.values():
            good = sum(1 for r in inside if r.outcome is Outcome.OK and r.latency_s <= threshold)
            assert rollup.good_within(threshold) == good


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    results_strategy,
    st.floats(min_value=0, max_value=4 * 3600, allow_nan=False),
    st.booleans(),
)
async def test_a_ledger_rebuilt_from_the_store_agrees(
    raw: list[tuple[str, float, float, Outcome]], at: float, compacted: bool
) -> None:
    """A restart (a fresh ledger loaded from the store) gives the same windows, whether
    or not the minute decisions and the compacted hours reached the store before it."""
    config = _config()
    store = MemoryStore()
    ledger = Ledger(config, grace_minutes=1)
    await ledger.load(store, T0)  # as the daemon does at start, here on an empty store
    collector = Collector(asyncio.Queue(), ledger, store, Metrics(config), FakeClock(start=T0))
    for probe, offset, latency, outcome in sorted(raw, key=lambda r: r[1]):
        result = Result("s", probe, "http", T0 + offset, latency, outcome)
        if result.started_at <= T0 + at:
            await ledger.advance(result.started_at, store)
            collector.accept(result)
            await collector.flush()
    now = T0 + at
    await ledger.advance(now, store)
    half = ledger.take_decisions()
    await store.write_minute_states(half[: len(half) // 2])  # the rest was lost in a crash
    hours = ledger.take_hours()
    if compacted:
        await store.write_hours(hours)
    fresh = Ledger(config, grace_minutes=1)
    await fresh.load(store, now)
    for window in WINDOWS:
        before = ledger.window_rollup("s", ["a", "b"], window, now)
        after = fresh.window_rollup("s", ["a", "b"], window, now)
        assert after == before, window
        key = ObjectiveKey("s", "up")
        assert fresh.minute_counts(key, window, now) == ledger.minute_counts(key, window, now)
    # The restart compacted again what had not been; a second restart reads it back.
    await store.write_hours(fresh.take_hours())
    again = Ledger(config, grace_minutes=1)
    await again.load(store, now)
    for window in WINDOWS:
        before = ledger.window_rollup("s", ["a", "b"], window, now)
        assert again.window_rollup("s", ["a", "b"], window, now) == before, window
