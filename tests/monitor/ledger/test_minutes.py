"""What sealed minutes count as, and the calendar windows, through the ledger."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.collector import Collector
from monitor.config import Config
from monitor.ledger.windows import Ledger
from monitor.metrics import Metrics
from monitor.results import Result
from monitor.sla.eligibility import MaintenanceWindow
from monitor.sla.minutes import MinuteCode, ObjectiveKey
from monitor.store import MemoryStore
from probes.base import Outcome
from tests.fakes import FakeClock
from tests.support import builders

BRUSSELS = ZoneInfo("Europe/Brussels")


def _local(text: str) -> float:
    """Epoch seconds of a Brussels wall-clock time."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=BRUSSELS).timestamp()


def _config(**service_b: Any) -> Config:
    hours = {"hours": [{"days": "mon-fri", "start": "06:00", "end": "22:00"}]}
    return builders.config(
        builders.service(
            "a",
            probes=("pa",),
            latency={"fast": 1},
            availability=["avail"],
            depends_on=["b"],
            schedule=hours,
        ),
        builders.service("b", probes=("pb",), availability=["avail"], **service_b),
    )


class Feed:
    """A ledger fed through a real collector into a memory store, on a fake clock."""

    def __init__(self, config: Config) -> None:
        self.store = MemoryStore()
        self.ledger = Ledger(config, grace_minutes=1)
        self.clock = FakeClock(start=0)
        self.collector = Collector(
            asyncio.Queue(), self.ledger, self.store, Metrics(config), self.clock
        )

    async def minute(
        self, service: str, start: float, ok: int, failed: int, latency: float = 0.1
    ) -> None:
        probe = "pa" if service == "a" else "pb"
        for i in range(ok + failed):
            outcome = Outcome.OK if i < ok else Outcome.STATUS
            self.collector.accept(Result(service, probe, "http", start + i, latency, outcome))
        await self.collector.flush()

    async def seal(self, now: float) -> None:
        await self.ledger.advance(now, self.store)
        await self.store.write_minute_states(self.ledger.take_decisions())


# Monday 2026-11-23 10:00 local: inside a's service hours.
MONDAY = _local("2026-11-23T10:00:00")


@pytest.mark.parametrize(
    ("case", "a_ok", "a_failed", "b_ok", "b_failed", "expected"),
    [
        ("all ok", 10, 0, 10, 0, MinuteCode.UP),
        ("half failed is still up", 5, 5, 10, 0, MinuteCode.UP),
        ("more than half failed", 4, 6, 10, 0, MinuteCode.DOWN),
        ("provider down excludes", 4, 6, 2, 8, MinuteCode.PROVIDER),
        ("provider down, a up: still excluded", 10, 0, 0, 10, MinuteCode.PROVIDER),
        ("no result of a: unmonitored, not provider", 0, 0, 0, 10, MinuteCode.UNMONITORED),
    ],
)
async def test_minute_codes(
    case: str, a_ok: int, a_failed: int, b_ok: int, b_failed: int, expected: MinuteCode
) -> None:
    feed = Feed(_config())
    await feed.seal(MONDAY - 600)
    if a_ok + a_failed:
        await feed.minute("a", MONDAY, a_ok, a_failed)
    if b_ok + b_failed:
        await feed.minute("b", MONDAY, b_ok, b_failed)
    await feed.seal(MONDAY + 300)
    assert (
        MinuteCode(feed.ledger._states[ObjectiveKey("a", "avail")][int(MONDAY // 60)]) is expected
    ), case


async def test_a_late_provider_failure_re_decides_its_dependant_and_nobody_else() -> None:
    """A late result re-decides only what it can change: its own service and those that
    depend on it (here: b's late failures make b down, which excuses a's minute), not an
    unrelated service, whose decision is neither re-made nor written again."""
    config = builders.config(
        *_config().model_dump(mode="json")["services"],
        builders.service("c", probes=("pc",), availability=["avail"]),
    )
    feed = Feed(config)
    await feed.seal(MONDAY - 600)
    await feed.minute("a", MONDAY, 10, 0)
    await feed.minute("b", MONDAY, 10, 0)
    feed.collector.accept(Result("c", "pc", "http", MONDAY, 0.1, Outcome.OK))
    await feed.collector.flush()
    await feed.seal(MONDAY + 150)  # the minute is sealed, within the re-decision horizon
    minute = int(MONDAY // 60)
    codes = {s: feed.ledger._states[ObjectiveKey(s, "avail")][minute] for s in "abc"}
    assert codes == dict.fromkeys("abc", MinuteCode.UP)
    # b's late failures: 12 failed of 22 results, more than half.
    for i in range(12):
        feed.collector.accept(Result("b", "pb", "http", MONDAY + 30 + i, 0.1, Outcome.STATUS))
    decisions = feed.ledger.take_decisions()
    codes = {s: feed.ledger._states[ObjectiveKey(s, "avail")][minute] for s in "abc"}
    assert codes == {"a": MinuteCode.PROVIDER, "b": MinuteCode.DOWN, "c": MinuteCode.UP}
    assert {d.service for d in decisions} == {"a", "b"}


async def test_provider_in_maintenance_excludes_the_dependent_minute() -> None:
    config = _config(
        maintenance=[
            {
                "start": "2026-11-23T09:59:00",
                "end": "2026-11-23T10:05:00",
                "reason": "provider upgrade",
            }
        ]
    )
    feed = Feed(config)
    await feed.seal(MONDAY - 600)
    await feed.minute("a", MONDAY, 10, 0)
    await feed.minute("b", MONDAY, 10, 0)
    await feed.seal(MONDAY + 300)
    a = feed.ledger.minute_counts(ObjectiveKey("a", "avail"), "1h", MONDAY + 300)
    b = feed.ledger.minute_counts(ObjectiveKey("b", "avail"), "1h", MONDAY + 300)
    assert a.get(MinuteCode.PROVIDER) == 1
    assert b.get(MinuteCode.MAINTENANCE) == 5  # 09:59 .. 10:03 sealed; 10:04 still open


async def test_latency_results_in_maintenance_or_outside_hours_do_not_count() -> None:
    feed = Feed(_config())
    saturday = _local("2026-11-28T10:00:00")  # outside a's mon-fri hours
    await feed.seal(MONDAY - 600)
    await feed.minute("a", MONDAY, 8, 2, latency=0.5)
    await feed.seal(MONDAY + 120)
    feed.ledger.eligibility.replace_stored_maintenance(
        [MaintenanceWindow("1", "a", MONDAY + 300, MONDAY + 600, "fix", MONDAY - 3600)]
    )
    await feed.minute("a", MONDAY + 360, 0, 10)  # in announced maintenance
    await feed.seal(saturday - 600)
    await feed.minute("a", saturday, 0, 10)  # outside service hours
    await feed.seal(saturday + 300)
    rollup = feed.ledger.window_rollup("a", ["pa"], "7d", saturday + 300)
    assert rollup.attempts == 10
    assert rollup.good_within(1.0) == 8
    counts = feed.ledger.minute_counts(ObjectiveKey("a", "avail"), "7d", saturday + 300)
    assert counts[MinuteCode.MAINTENANCE] == 5
    assert counts[MinuteCode.UP] == 1
    assert MinuteCode.DOWN not in counts


@pytest.mark.parametrize(
    ("last_of_month", "first_of_next"),
    [
        ("2026-10-31T23:58:00", "2026-11-01T00:01:00"),  # after the October DST change
        ("2026-03-31T23:58:00", "2026-04-01T00:01:00"),  # after the March DST change
        ("2026-02-28T23:58:00", "2026-03-01T00:01:00"),  # February's 28 days
        ("2026-12-31T23:58:00", "2027-01-01T00:01:00"),  # the year turns
    ],
)
async def test_calendar_months_follow_local_midnight(
    last_of_month: str, first_of_next: str
) -> None:
    config = Config.model_validate(
        {
            "storage": {"path": ":memory:"},
            "services": [
                {
                    "name": "b",
                    "probes": [{"name": "pb", "kind": "http", "url": "http://127.0.0.1:1/"}],
                    "objectives": [
                        {"name": "fast", "kind": "latency", "threshold": 1, "target": 99}
                    ],
                }
            ],
        }
    )
    feed = Feed(config)
    before, after = _local(last_of_month), _local(first_of_next)
    await feed.seal(before - 600)
    await feed.minute("b", before, 3, 0)
    # Still inside grace: the old month's minute is open while the new month began.
    await feed.seal(after)
    assert feed.ledger.window_rollup("b", ["pb"], "month", after).attempts == 0
    assert feed.ledger.window_rollup("b", ["pb"], "previous_month", after).attempts == 3
    await feed.minute("b", after, 5, 1)
    await feed.seal(after + 600)
    assert feed.ledger.window_rollup("b", ["pb"], "month", after + 600).attempts == 6
    assert feed.ledger.window_rollup("b", ["pb"], "previous_month", after + 600).attempts == 3
    # A restart in the new month rebuilds both.
    fresh = Ledger(config, grace_minutes=1)
    await fresh.load(feed.store, after + 600)
    assert fresh.window_rollup("b", ["pb"], "month", after + 600).attempts == 6
    assert fresh.window_rollup("b", ["pb"], "previous_month", after + 600).attempts == 3
