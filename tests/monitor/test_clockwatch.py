"""Clock sanity through the daemon's housekeeping, with a fake clock: a wall-clock step
pauses pruning (raw results survive a jump past their retention) and archiving, logged
once; slow drift does not; a daemon whose clock is simply later prunes as usual."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from monitor.app import Daemon
from monitor.clockwatch import ClockWatch
from monitor.config import Config
from monitor.results import Result
from monitor.store import SqliteStore
from probes.base import Outcome
from tests.fakes import FakeClock
from tests.support import builders

T0 = 1_796_032_800.0
DAY = 86_400.0


def test_slow_drift_is_followed_and_a_step_is_caught_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(start=T0)
    watch = ClockWatch(clock, tolerance_s=120)
    for _ in range(1000):  # NTP slewing: a little each second, hours in total
        clock.advance(1.0)
        clock.jump(0.5)
        assert watch.steady()
    caplog.set_level(logging.WARNING, logger="monitor.clockwatch")
    clock.jump(100 * DAY)
    assert [watch.steady() for _ in range(5)] == [False] * 5
    assert watch.step_s == pytest.approx(100 * DAY)
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
    clock.jump(-100 * DAY)
    assert watch.steady()
    assert watch.step_s == 0
    assert "back in step" in caplog.records[-1].getMessage()


def _config(tmp_path: Path) -> Config:
    return builders.config(
        builders.service("svc", latency={"fast": 1}),
        storage={"path": str(tmp_path / "store.sqlite3"), "raw_retention_days": 30},
        reports={"directory": str(tmp_path / "reports")},
    )


async def _stored_results(path: Path) -> int:
    store = SqliteStore(path)
    await store.open()
    try:
        async with store.db.execute("SELECT COUNT(*) FROM results") as cursor:
            row = await cursor.fetchone()
    finally:
        await store.aclose()
    assert row is not None
    return int(row[0])


async def _with_old_results(config: Config, clock: FakeClock) -> Daemon:
    daemon = Daemon(config, clock=clock)
    await daemon.store.open()
    results = [Result("svc", "p", "http", T0 + i, 0.1, Outcome.OK) for i in range(10)]
    await daemon.store.write_batch(results, {})
    return daemon


async def test_a_wall_clock_step_past_retention_deletes_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path)
    clock = FakeClock(start=T0 + 60)
    daemon = await _with_old_results(config, clock)
    try:
        clock.jump(40 * DAY)  # the results now look 40 days old: past the 30-day retention
        assert await daemon.prune(clock.now()) == 0
        assert daemon.clock_watch.step_s == pytest.approx(40 * DAY)
        assert daemon.reports.due_month(clock.now()) is not None  # a month looks over...
        assert await daemon.reports.check() is None  # ... but none is frozen
        assert not (tmp_path / "reports").exists()
    finally:
        await daemon.store.aclose()
    assert await _stored_results(tmp_path / "store.sqlite3") == 10


async def test_a_daemon_whose_time_really_passed_prunes(tmp_path: Path) -> None:
    config = _config(tmp_path)
    clock = FakeClock(start=T0 + 60)
    daemon = await _with_old_results(config, clock)
    try:
        clock.advance(40 * DAY)  # both clocks: time really passed
        assert await daemon.prune(clock.now()) == 10
    finally:
        await daemon.store.aclose()
    assert await _stored_results(tmp_path / "store.sqlite3") == 0
