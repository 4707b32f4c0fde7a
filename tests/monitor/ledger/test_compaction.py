"""Day summaries: built from exactly 24 hour summaries, only for settled days, on both
stores; and a ledger restarted from day summaries agrees with the one that ran."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import pytest

from monitor.app import Daemon
from monitor.collector import Collector
from monitor.config import Config
from monitor.errors import StoreError
from monitor.ledger.compaction import SETTLE_MINUTES, compact_days, day_summaries
from monitor.ledger.windows import Ledger
from monitor.metrics import Metrics
from monitor.results import DaySummary, HourSummary, Result
from monitor.sla.counts import Rollup
from monitor.sla.minutes import ObjectiveKey
from monitor.sla.windows import WINDOWS
from monitor.store import MemoryStore, SqliteStore, Store
from probes.base import Outcome
from tests.fakes import FakeClock
from tests.support import builders

DAY = 20_755  # 2026-10-29 UTC, an epoch day


def _rollup(seed: int) -> Rollup:
    rollup = Rollup()
    for k in range(5):
        ok = (seed + k) % 4 != 0
        rollup.add(ok, "ok" if ok else "timeout", 0.1 * (1 + (seed + k) % 7), (0.5, 1.0))
    return rollup


def _hour(service: str, hour: int, *, states: dict[str, str] | None = None) -> HourSummary:
    digit = str(hour % 3 + 1)
    return HourSummary(
        service=service,
        hour=hour,
        exclusions=digit * 60,
        states={"up": digit * 60} if states is None else states,
        rollups={"p": _rollup(hour).to_dict(), "q": _rollup(hour + 1).to_dict()},
    )


def test_a_day_joins_its_24_hours_and_sums_each_probe() -> None:
    hours = [_hour("a", DAY * 24 + i) for i in range(24)]
    hours += [_hour("b", DAY * 24 + i) for i in range(23)]  # b lacks its last hour
    hours.append(_hour("a", DAY * 24 + 24))  # the next day's first hour: not this day's
    # An hour without the objective's codes counts as unmonitored (3), as in the ledger.
    hours[5] = _hour("a", DAY * 24 + 5, states={})
    (day,) = day_summaries(DAY, hours)
    assert (day.service, day.day) == ("a", DAY)
    assert day.exclusions == "".join(str((DAY * 24 + i) % 3 + 1) * 60 for i in range(24))
    assert day.states["up"][300:360] == "3" * 60
    assert day.states["up"][:300] == day.exclusions[:300]
    for probe, offset in (("p", 0), ("q", 1)):
        expected = Rollup()
        for i in range(24):
            expected.merge(_rollup(DAY * 24 + i + offset))
        assert Rollup.from_dict(day.rollups[probe]) == expected


async def test_only_settled_complete_days_are_compacted_once(store: Store) -> None:
    hours = [_hour(s, DAY * 24 + i) for s in ("a", "b") for i in range(72)]
    hours = [h for h in hours if (h.service, h.hour) != ("b", (DAY + 1) * 24 + 7)]
    await store.write_hours(hours)
    # Day 3 ended, but not SETTLE_MINUTES ago: late results may still change its hours.
    now_minute = (DAY + 3) * 1440 + SETTLE_MINUTES - 1
    assert await compact_days(store, DAY * 1440, now_minute) == 3  # a, b; then a
    days = await store.days(DAY, DAY + 3)
    assert [(d.day, d.service) for d in days] == [(DAY, "a"), (DAY, "b"), (DAY + 1, "a")]
    assert days[0] == day_summaries(DAY, hours)[0]
    assert isinstance(days[0], DaySummary)
    assert await compact_days(store, DAY * 1440, now_minute) == 0  # nothing new
    # Later, day 3 settled and b's missing hour was written (a restart's repair).
    await store.write_hours([_hour("b", (DAY + 1) * 24 + 7)])
    assert await compact_days(store, DAY * 1440, now_minute + 1) == 4  # day 2: a, b; day 3
    assert len(await store.days(DAY, DAY + 3)) == 6


# --- a restart from day summaries -----------------------------------------------------


def _config() -> Config:
    return builders.config(
        *(builders.service(n, latency={"fast": 0.5}, availability=["up"]) for n in ("a", "b"))
    )


async def test_a_ledger_restarted_from_day_summaries_agrees(tmp_path: Path) -> None:
    """Four days across the end of October (Brussels): windows and minute counts of a
    ledger loaded from day summaries equal those of the ledger that ran, and of one loaded
    from hour summaries; the day the month ends in is read by hours."""
    config = _config()
    store = SqliteStore(tmp_path / "sla.sqlite3")
    await store.open()
    try:
        start = DAY * 1440 * 60.0  # 2026-10-29 00:00 UTC
        clock = FakeClock(start=start)
        ledger = Ledger(config, grace_minutes=1)
        await ledger.load(store, clock.now())
        collector = Collector(asyncio.Queue(), ledger, store, Metrics(config), clock)
        rng = random.Random(7)
        outage = range(int(start // 60) + 2000, int(start // 60) + 2030)  # b down 30 min
        for minute in range(int(start // 60), int(start // 60) + 4 * 1440 + SETTLE_MINUTES + 30):
            clock.advance(minute * 60.0 + 1 - clock.now())
            await ledger.advance(clock.now(), store)
            for service in ("a", "b"):
                if rng.random() < 0.6:
                    down = service == "b" and minute in outage
                    outcome = Outcome.CONNECT if down or rng.random() < 0.02 else Outcome.OK
                    latency = rng.choice([0.05, 0.2, 0.7])
                    collector.accept(
                        Result(service, "p", "http", minute * 60.0 + 1, latency, outcome)
                    )
            await collector.flush()
        now = clock.now() + 30
        await ledger.advance(now, store)
        await store.write_minute_states(ledger.take_decisions())
        await store.write_hours(ledger.take_hours())

        read: dict[str, list[int]] = {"days": [], "hours": []}
        days, hours = store.days, store.hours

        async def counted_days(lo: int, hi: int) -> list[DaySummary]:
            rows = await days(lo, hi)
            read["days"] += [d.day for d in rows]
            return rows

        async def counted_hours(lo: int, hi: int) -> list[HourSummary]:
            rows = await hours(lo, hi)
            read["hours"] += [h.hour for h in rows]
            return rows

        store.days, store.hours = counted_days, counted_hours  # type: ignore[method-assign]
        by_hours = Ledger(config, grace_minutes=1)
        await by_hours.load(store, now)
        hours_without_days = len(read["hours"])
        assert read["days"] == []
        # The running ledger's first load compacted the empty hours before Oct 29 too.
        written = await compact_days(store, 0, int(now // 60))
        assert written >= 2 * 4
        assert {d.day for d in await days(DAY, DAY + 5)} == {DAY, DAY + 1, DAY + 2, DAY + 3}
        read = {"days": [], "hours": []}
        by_days = Ledger(config, grace_minutes=1)
        await by_days.load(store, now)
        assert read["days"]
        assert len(read["hours"]) < hours_without_days / 5
        # Oct 31 (UTC) holds the month's end, 23:00 UTC in Brussels: it is read by hours.
        assert DAY + 2 not in read["days"]
        assert {DAY + 2} <= {hour // 24 for hour in read["hours"]}
        for service in ("a", "b"):
            for window in WINDOWS:
                ran = ledger.window_rollup(service, ["p"], window, now)
                assert by_hours.window_rollup(service, ["p"], window, now) == ran, window
                assert by_days.window_rollup(service, ["p"], window, now) == ran, window
                key = ObjectiveKey(service, "up")
                counts = ledger.minute_counts(key, window, now)
                assert by_days.minute_counts(key, window, now) == counts, window
                assert by_hours.minute_counts(key, window, now) == counts, window
    finally:
        await store.aclose()


async def test_the_daemon_compacts_settled_days_and_survives_a_store_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = _config()
    store = MemoryStore()
    await store.write_hours([_hour(s, DAY * 24 + i) for s in ("a", "b") for i in range(24)])
    daemon = Daemon(config, store=store)
    now = ((DAY + 1) * 1440 + SETTLE_MINUTES) * 60.0
    with caplog.at_level(logging.INFO, logger="monitor.app"):
        await daemon.compact_settled_days(now)
    assert [(d.day, d.service) for d in await store.days(DAY, DAY + 1)] == [
        (DAY, "a"),
        (DAY, "b"),
    ]
    assert "compacted 2 service days" in caplog.text

    async def broken(start_day: int, end_day: int) -> list[int]:
        raise StoreError("disk I/O error")

    store.days_to_compact = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="monitor.app"):
        await daemon.compact_settled_days(now)  # logged, not raised: it retries in an hour
    assert "compacting days failed (will retry in an hour): disk I/O error" in caplog.text
