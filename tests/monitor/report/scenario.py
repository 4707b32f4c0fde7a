"""A known month for the report tests: October 2026 in Europe/Brussels (the clocks go back
on the 25th, a 25-hour day), two services, an outage, maintenance announced in advance and
one announced late, a gap in which the monitor was down, and minutes whose decisions never
reached the disk.

The store is seeded directly (rollups, raw results for one day, minute decisions written as
the daemon writes them, maintenance, alerts); ``compact`` then lets the real ledger write
the hour summaries a running daemon would have written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from monitor.config import Config
from monitor.ledger.windows import Ledger
from monitor.results import Result, ServiceMinute
from monitor.sla.counts import Rollup
from monitor.sla.eligibility import Eligibility
from monitor.store import RollupKey, Store
from monitor.store.records import Alert
from probes.base import Outcome

ZONE = ZoneInfo("Europe/Brussels")
UTC = dt.UTC


def local(text: str) -> float:
    """Epoch seconds of a Brussels wall time (fold 0: the first of a repeated hour)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


def minute_of(text: str) -> int:
    """Epoch minute of a Brussels wall time."""
    return int(local(text) // 60)


FIRST = minute_of("2026-10-01T00:00")
AFTER = minute_of("2026-11-01T00:00")
#: The month is closed (and every minute sealed) at this time.
NOW = local("2026-11-10T12:00")

OUTAGE = range(minute_of("2026-10-14T10:00"), minute_of("2026-10-14T10:30"))
HALF_FAILED = minute_of("2026-10-14T10:30")  # 3 of 6 failed: not down (not more than half)
MAINTENANCE = (local("2026-10-20T02:00"), local("2026-10-20T04:00"), local("2026-10-10T12:00"))
LATE = (local("2026-10-27T22:00"), local("2026-10-27T23:00"), local("2026-10-27T22:30"))
#: The monitor was down: no rollup and no decision (across the DST change: 01:30 CEST
#: to 02:30 CET is 120 minutes).
GAP = range(
    int(dt.datetime(2026, 10, 24, 23, 30, tzinfo=UTC).timestamp() // 60),
    int(dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC).timestamp() // 60),
)
#: Rollups but no decision (the daemon was killed before persisting them).
UNDECIDED = range(minute_of("2026-10-05T12:00"), minute_of("2026-10-05T12:05"))
PORTAL_DOWN = range(minute_of("2026-10-16T15:00"), minute_of("2026-10-16T15:10"))

CONFIG: dict[str, Any] = {
    "timezone": "Europe/Brussels",
    "storage": {"path": "unused.sqlite3"},
    "services": [
        {
            "name": "core",
            "description": "Online messages",
            "probes": [{"name": "p", "kind": "http", "url": "http://127.0.0.1:1/"}],
            "objectives": [
                {"name": "online-1s", "kind": "latency", "threshold": "1s", "target": 99},
                {"name": "online-2s", "kind": "latency", "threshold": "2s", "target": 99.5},
                {"name": "availability", "kind": "availability", "target": 99},
            ],
        },
        {
            "name": "portal",
            "description": "Integrated service",
            "probes": [{"name": "q", "kind": "http", "url": "http://127.0.0.1:1/"}],
            "objectives": [
                {"name": "answer-4s", "kind": "latency", "threshold": "4s", "target": 99},
                {"name": "availability", "kind": "availability", "target": 99},
            ],
            "schedule": {"hours": [{"days": "mon-fri", "start": "08:00", "end": "18:00"}]},
            "depends_on": ["core"],
        },
    ],
}


def config(**extra: Any) -> Config:
    """The scenario's config (``extra`` top-level keys added, e.g. ``reports``)."""
    return Config.model_validate({**CONFIG, **extra})


#: One probe result: ok, outcome, latency in seconds.
Sample = tuple[bool, str, float]


def core_results(minute: int) -> list[Sample]:
    """What core's probe measured in ``minute`` (6 results)."""
    start, end, _ = MAINTENANCE
    if minute in OUTAGE:
        return [(False, "timeout", 5.0)] * 6
    if minute == HALF_FAILED:
        return [(True, "ok", 0.2)] * 3 + [(False, "connect", 0.01)] * 3
    if start <= minute * 60 < end:
        return [(False, "connect", 0.01)] * 6
    if LATE[0] <= minute * 60 < LATE[1]:
        return [(False, "status", 0.05)] * 6
    last = 1.5 if minute % 40 == 0 else 0.6
    samples: list[Sample] = [(True, "ok", x) for x in (0.1, 0.2, 0.3, 0.4, 0.5, last)]
    if minute % 97 == 0:
        samples[5] = (False, "timeout", 5.0)
    return samples


def portal_results(minute: int) -> list[Sample]:
    """What portal's probe measured in ``minute`` (6 results, around the clock)."""
    if minute in PORTAL_DOWN:
        return [(False, "connect", 0.01)] * 6
    last = 4.5 if minute % 30 == 0 else 3.0
    return [(True, "ok", x) for x in (0.5, 1.0, 1.5, 2.0, 2.5, last)]


def portal_open(minute: int) -> bool:
    """Portal's service hours: Monday to Friday, 08:00 to 18:00 local."""
    wall = dt.datetime.fromtimestamp(minute * 60, ZONE)
    return wall.weekday() < 5 and 8 <= wall.hour < 18


def core_excluded(minute: int) -> str | None:
    """Core's exclusion: announced maintenance (the late window from its announcement)."""
    start, end, _ = MAINTENANCE
    if start <= minute * 60 < end or LATE[2] <= minute * 60 < LATE[1]:
        return "maintenance"
    return None


def down(samples: list[Sample]) -> bool:
    """More than half failed (and at least one)."""
    failed = sum(1 for ok, _, _ in samples if not ok)
    return failed >= 1 and failed > 0.5 * len(samples)


def core_state(minute: int) -> str:
    """Core's availability state of a monitored minute."""
    excluded = core_excluded(minute)
    if excluded:
        return excluded
    return "down" if down(core_results(minute)) else "up"


def portal_state(minute: int) -> str:
    """Portal's availability state of a monitored minute (core is its provider)."""
    if not portal_open(minute):
        return "outside_hours"
    core_out = core_excluded(minute) == "maintenance" or core_state(minute) == "down"
    if core_out:
        return "provider_unavailable"
    return "down" if down(portal_results(minute)) else "up"


def monitored() -> Iterator[int]:
    """Every minute of the month in which the monitor ran."""
    return (m for m in range(FIRST, AFTER) if m not in GAP)


def rollup_of(samples: list[Sample], thresholds: tuple[float, ...]) -> Rollup:
    """The minute rollup of some samples."""
    rollup = Rollup()
    for ok, outcome, latency in samples:
        rollup.add(ok, outcome, latency, thresholds)
    return rollup


@dataclass(frozen=True, slots=True)
class Alerts:
    """The alerts seeded, as stored."""

    records: tuple[dict[str, Any], ...]


ALERTS = Alerts(
    (
        {
            "alert_id": "a1",
            "fingerprint": "f1",
            "rule": "service-down",
            "severity": "page",
            "service": "core",
            "objective": "availability",
            "status": "resolved",
            "pending_since": local("2026-10-14T10:02"),
            "started_at": local("2026-10-14T10:03"),
            "acknowledged_at": local("2026-10-14T10:10"),
            "acknowledged_by": "alice",
            "ended_at": local("2026-10-14T10:33"),
            "summary": "core is down",
            "description": "",
        },
        {
            "alert_id": "a0",
            "fingerprint": "f0",
            "rule": "burn-14x",
            "severity": "page",
            "service": "core",
            "objective": "online-1s",
            "status": "resolved",
            "pending_since": local("2026-09-10T10:00"),
            "started_at": local("2026-09-10T10:01"),
            "ended_at": local("2026-09-10T11:00"),
            "summary": "September: not in the report",
            "description": "",
        },
    )
)


async def seed(store: Store, *, decisions: bool = True, all_raw: bool = False) -> None:
    """Write the month: rollups, one day of raw results (``all_raw``: every day's, as if
    none was pruned yet), decisions, maintenance, alerts."""
    thresholds = {"core": (1.0, 2.0), "portal": (4.0,)}
    raw_day = (
        range(FIRST, AFTER)
        if all_raw
        else range(minute_of("2026-10-14T00:00"), minute_of("2026-10-15T00:00"))
    )
    batch: dict[RollupKey, Rollup] = {}
    results: list[Result] = []
    records: list[ServiceMinute] = []
    for minute in monitored():
        for service, probe, samples in (
            ("core", "p", core_results(minute)),
            ("portal", "q", portal_results(minute)),
        ):
            batch[(service, probe, minute)] = rollup_of(samples, thresholds[service])
            if minute in raw_day:
                results += [
                    Result(service, probe, "http", minute * 60 + 10 * k, lat, Outcome(outcome))
                    for k, (_, outcome, lat) in enumerate(samples)
                ]
        if decisions and minute not in UNDECIDED:
            records.append(
                ServiceMinute(
                    "core", minute, core_excluded(minute), {"availability": core_state(minute)}
                )
            )
            records.append(
                ServiceMinute(
                    "portal",
                    minute,
                    None if portal_open(minute) else "outside_hours",
                    {"availability": portal_state(minute)},
                )
            )
        if len(batch) >= 20_000:
            await store.write_batch(results, batch)
            batch, results = {}, []
    await store.write_batch(results, batch)
    await store.write_minute_states(records)
    for start, end, announced in (MAINTENANCE, LATE):
        await store.add_maintenance("core", start, end, "broker upgrade", announced, "ops")
    for alert in ALERTS.records:
        await store.save_alert(Alert.from_dict(alert))


async def compact(store: Store, cfg: Config) -> int:
    """Let the real ledger compact every complete hour, as a running daemon would have;
    returns the number of hour summaries written."""
    eligibility = Eligibility(cfg)
    eligibility.replace_stored_maintenance(await store.list_maintenance())
    ledger = Ledger(cfg, eligibility)
    await ledger.load(store, NOW)
    hours = ledger.take_hours()
    await store.write_hours(hours)
    return len(hours)


def seed_file(path: Path, *, all_raw: bool = False) -> Path:
    """Seed the scenario (with hour summaries) into a new SQLite file; return its path."""
    import asyncio

    from monitor.store import SqliteStore

    async def build() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await seed(store, all_raw=all_raw)
            await compact(store, config())
        finally:
            await store.aclose()

    asyncio.run(build())
    return path


def report_of(path: Path, now: float = NOW, cfg: Config | None = None, **extra: Any) -> Any:
    """October's report from a seeded file (``cfg``: another config than the scenario's;
    ``extra``: keyword arguments of build_report)."""
    import asyncio

    from monitor.report.compute import build_report
    from monitor.report.model import Month
    from monitor.store import SqliteStore

    async def build() -> Any:
        store = SqliteStore(path)
        await store.open()
        try:
            chosen = config() if cfg is None else cfg
            return await build_report(chosen, store, Month(2026, 10), now=now, **extra)
        finally:
            await store.aclose()

    return asyncio.run(build())
