"""One truth, many views: a month with an outage, maintenance registered after the fact
(agreed late, announced back-dated), an outside-hours night and a report correction shows
the same daily availability on the status page's bars, in the daemon's own windows (what
``/api/sla`` reads), in the monthly report and in a restarted daemon — and each equals
what the test fed it, counted here by plain rules.

The daemon is the real one on a real SQLite file; only the clock is fake and results are
handed to its collector instead of coming from probes (the probes are tested elsewhere).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from monitor.app import Daemon
from monitor.config import Config
from monitor.maintenance import MaintenanceService
from monitor.report.archive import ReportArchive, correct
from monitor.report.model import Month, UnmonitoredSpan
from monitor.report.render import render
from monitor.results import Result
from monitor.sla.minutes import MinuteCode, ObjectiveKey
from monitor.sla.windows import day_bounds
from monitor.store import SqliteStore
from probes.base import Outcome
from tests.fakes import FakeClock

ZONE = ZoneInfo("Europe/Brussels")
OCTOBER = Month(2026, 10)


def at(text: str) -> float:
    """Epoch seconds of a Brussels wall time."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


def minutes(start: str, end: str) -> range:
    return range(int(at(start) // 60), int(at(end) // 60))


RUN = minutes("2026-10-27T00:00", "2026-10-30T00:00")  # Tuesday to Thursday
OUTAGE = minutes("2026-10-28T10:00", "2026-10-28T10:30")  # core fails: down
LATE_WINDOW = ("2026-10-28T14:00", "2026-10-28T15:00")  # maintenance registered on Nov 1
FAILS_IN_WINDOW = minutes("2026-10-28T14:10", "2026-10-28T14:40")  # failures it covers
CORRECTED = ("2026-10-27T09:00", "2026-10-27T09:30")  # the monitor was faulty then
#: The core probe's second run of each minute never happened (a stalled scheduler): a
#: latency coverage gap that leaves every minute up.
SKIPPED = minutes("2026-10-29T03:00", "2026-10-29T04:00")
CLOSED_AT = at("2026-11-01T00:20")  # October is over and sealed


def config(tmp_path: Path) -> Config:
    probe = {"kind": "http", "url": "http://127.0.0.1:9/", "interval": "30s", "timeout": "5s"}
    return Config.model_validate(
        {
            "timezone": "Europe/Brussels",
            "storage": {"path": str(tmp_path / "sla.sqlite3")},
            "reports": {"enabled": False, "directory": str(tmp_path / "reports")},
            "services": [
                {
                    "name": "core",
                    "probes": [{"name": "p", **probe}],
                    "objectives": [
                        {"name": "online-1s", "kind": "latency", "threshold": "1s", "target": 99},
                        {"name": "availability", "kind": "availability", "target": 99},
                    ],
                },
                {
                    "name": "portal",
                    "probes": [{"name": "q", **probe}],
                    "objectives": [{"name": "availability", "kind": "availability", "target": 99}],
                    "schedule": {"hours": [{"days": "mon-fri", "start": "08:00", "end": "18:00"}]},
                    "depends_on": ["core"],
                },
            ],
        }
    )


def fed(minute: int) -> list[Result]:
    """What the probes measured in ``minute``: two results per probe."""
    core_fails = minute in OUTAGE or minute in FAILS_IN_WINDOW
    results = []
    for k in range(2):
        ts = minute * 60 + 10 + 30 * k
        outcome = Outcome.TIMEOUT if core_fails else Outcome.OK
        if not (k == 1 and minute in SKIPPED):
            results.append(Result("core", "p", "http", ts, 5.0 if core_fails else 0.2, outcome))
        results.append(Result("portal", "q", "http", ts, 0.5, Outcome.OK))
    return results


def truth(service: str, minute: int) -> str:
    """What the minute must count as, from the scenario's rules alone."""
    local = dt.datetime.fromtimestamp(minute * 60, ZONE)
    in_window = at(LATE_WINDOW[0]) <= minute * 60 < at(LATE_WINDOW[1])
    if minute not in RUN:
        open_hours = local.weekday() < 5 and 8 <= local.hour < 18
        return "unmonitored" if service == "core" or open_hours else "outside_hours"
    if service == "core":
        if in_window:
            return "maintenance"
        if at(CORRECTED[0]) <= minute * 60 < at(CORRECTED[1]):
            return "unmonitored"
        return "down" if minute in OUTAGE else "up"
    if not (local.weekday() < 5 and 8 <= local.hour < 18):
        return "outside_hours"
    if in_window or minute in OUTAGE:
        return "provider_unavailable"
    return "up"


def october_days() -> list[dt.date]:
    return [dt.date(2026, 10, d) for d in range(1, 32)]


def by_day_from_codes(daemon: Daemon, service: str, now: float) -> dict[dt.date, Counter[str]]:
    """Per day, minute states as the daemon's own windows hold them."""
    key = ObjectiveKey(service, "availability")
    out = {}
    for day in october_days():
        first, after = day_bounds(day, ZONE)
        codes = daemon.ledger.codes_between(key, first, after - 1, now)
        out[day] = Counter(MinuteCode(c).label for c in codes)
    return out


async def run_october(daemon: Daemon, clock: FakeClock) -> None:
    """Feed the run's results minute by minute, flushing and sealing as the daemon does,
    then let time pass (no results: the monitor's own downtime) until October is closed."""
    await daemon.store.open()
    await daemon.load_history()
    for minute in range(RUN.start, int(CLOSED_AT // 60)):
        if minute in RUN:
            for result in fed(minute):
                daemon.collector.accept(result)
        clock.advance(60)
        if minute % 10 == 0 or minute not in RUN:
            await daemon.collector.flush()
        await daemon.ledger.advance(clock.now(), daemon.store)
        await daemon.collector.write_decisions()
    await daemon.collector.flush()


async def test_bars_api_report_and_restart_agree_day_by_day(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    clock = FakeClock(start=RUN.start * 60)
    daemon = Daemon(cfg, clock=clock)
    await run_october(daemon, clock)
    try:
        now = clock.now()
        before = await daemon.status_site._daily(now)  # the bars, as cached before
        oct_28 = next(d for d in before["core"] if d.date == dt.date(2026, 10, 28))
        assert oct_28.down == len(OUTAGE) + len(FAILS_IN_WINDOW)  # as measured, not yet excused
        # Registered after the fact (by agreement, announced back-dated), from another
        # process as `sla-monitor maintenance add --announced-at` does.
        cli_store = SqliteStore(cfg.storage.path)
        await cli_store.open()
        try:
            await MaintenanceService(cfg, cli_store, clock).add(
                "core",
                at(LATE_WINDOW[0]),
                at(LATE_WINDOW[1]),
                "agreed late",
                "alice",
                announced_at=at("2026-10-20T09:00"),
                allow_past=True,
                correction="agreed with the institutions on 2026-11-02",
            )
        finally:
            await cli_store.aclose()
        assert await daemon.reload_maintenance()
        # A correction: `sla-monitor report correct --unmonitored ...`.
        archive = ReportArchive(cfg.reports.directory)
        span = UnmonitoredSpan(service="core", start=at(CORRECTED[0]), end=at(CORRECTED[1]))
        version = await correct(
            cfg,
            daemon.store,
            archive,
            OCTOBER,
            now=now,
            by="alice",
            reason="probe host lost its network",
            unmonitored=[span],
            archive_formats=["json"],
        )
        assert await daemon.reload_corrections()
        report = archive.report(version)

        live = {s: by_day_from_codes(daemon, s, now) for s in ("core", "portal")}
        bars = await daemon.status_site._daily(now)
        api_month = {
            f.service: f.windows["previous_month"]
            for f in daemon.figures_at(now)
            if f.kind == "availability"
        }
        api_latency = next(
            f.windows["previous_month"] for f in daemon.figures_at(now) if f.kind == "latency"
        )
    finally:
        await daemon.store.aclose()

    restarted = Daemon(cfg, clock=clock)
    await restarted.store.open()
    try:
        await restarted.load_history()
        again = {s: by_day_from_codes(restarted, s, now) for s in ("core", "portal")}
        again_month = {
            f.service: f.windows["previous_month"]
            for f in restarted.figures_at(now)
            if f.kind == "availability"
        }
        again_latency = next(
            f.windows["previous_month"] for f in restarted.figures_at(now) if f.kind == "latency"
        )
    finally:
        await restarted.store.aclose()

    days_checked = 0
    for service in ("core", "portal"):
        objective = next(
            o
            for s in report.services
            if s.name == service
            for o in s.objectives
            if o.objective == "availability"
        )
        report_days = {dt.date.fromisoformat(d.date): d for d in objective.days}
        bar_days = {b.date: b for b in bars[service]}
        month_states: Counter[str] = Counter()
        for day in october_days():
            first, after = day_bounds(day, ZONE)
            expected = Counter(truth(service, m) for m in range(first, after))
            month_states.update(expected)
            up, down = expected["up"], expected["down"]
            context = f"{service} {day}"
            assert _states(live[service][day]) == _states(expected), context
            assert _states(again[service][day]) == _states(expected), context
            assert report_days[day].minute_states == _states(expected), context
            assert (report_days[day].good, report_days[day].bad) == (up, down), context
            assert (bar_days[day].up, bar_days[day].down) == (up, down), context
            assert bar_days[day].ratio == report_days[day].compliance, context
            days_checked += 1
        monitored = month_states["up"] + month_states["down"]
        coverage = monitored / (monitored + month_states["unmonitored"])
        for window in (api_month[service], again_month[service]):
            assert window.minutes == _states(month_states), service
            assert window.compliance == objective.achieved, service
            assert window.coverage == objective.coverage == coverage, service
            # Three days of 31 measured: no verdict, whatever the figure.
            assert (window.verdict, window.met) == ("insufficient_data", None), service
        assert objective.verdict == "INSUFFICIENT DATA"
    assert days_checked == 62
    # Latency coverage: the core probe's results in the minutes that counted, over the
    # runs its 30 s interval calls for in every minute that was due results.
    first, after = OCTOBER.bounds(ZONE)
    due = [m for m in range(first, after) if truth("core", m) in ("up", "down", "unmonitored")]
    results = sum(
        1 for m in due if truth("core", m) in ("up", "down") for r in fed(m) if r.service == "core"
    )
    assert len(due) * 2 - results > len(SKIPPED)  # the skipped runs and the dark days
    [latency] = [o for s in report.services for o in s.objectives if o.kind == "latency"]
    for window in (api_latency, again_latency):
        assert window.coverage == latency.coverage == results / (len(due) * 2)
        assert window.verdict == "insufficient_data"
    assert latency.verdict == "INSUFFICIENT DATA"
    assert report.verdict == "INSUFFICIENT DATA"
    # Measured from the first result: core at the run's start, portal (open 08:00-18:00
    # on weekdays) when its hours first began inside the run.
    measured = {s.name: s.measured_from for s in report.services}
    assert measured == {"core": "2026-10-27T00:00:00+01:00", "portal": "2026-10-27T08:00:00+01:00"}
    assert report.period.measured_from == "2026-10-27T00:00:00+01:00"
    # The document's daily tables start there too (the JSON keeps every day).
    page = render(report, "html").decode()
    assert '<td class="l">2026-10-27</td>' in page
    assert '<td class="l">2026-10-26</td>' not in page
    assert "MEASURED FROM 2026-10-27 00:00 +01:00" in page
    # Day by day the report's latency coverage is the same count; the 29th lacks a run an
    # hour long.
    by_date = {d.date: d for d in latency.days}
    oct_29 = [m for m in minutes("2026-10-29T00:00", "2026-10-30T00:00")]
    assert by_date["2026-10-29"].coverage == sum(
        len([r for r in fed(m) if r.service == "core"]) for m in oct_29
    ) / (2 * len(oct_29))
    assert by_date["2026-10-29"].verdict == "met"
    # The scenario really exercises each case.
    core_28 = live["core"][dt.date(2026, 10, 28)]
    assert (core_28["down"], core_28["maintenance"]) == (30, 60)
    assert live["core"][dt.date(2026, 10, 27)]["unmonitored"] == 30
    assert live["portal"][dt.date(2026, 10, 28)]["provider_unavailable"] == 90
    # The back-dated announcement shows in the report as a correction, with who recorded
    # it and when, not as an announcement in advance.
    [late] = [m for s in report.services if s.name == "core" for m in s.maintenance]
    assert late.correction == "agreed with the institutions on 2026-11-02"
    assert (late.created_by, late.announced_late) == ("alice", False)
    assert late.created_at is not None
    assert late.announced_at is not None
    assert late.created_at > late.announced_at


def _states(counts: Counter[str] | dict[str, Any]) -> dict[str, int]:
    labels = ("up", "down", "unmonitored", "outside_hours", "maintenance", "provider_unavailable")
    return {label: int(counts.get(label, 0)) for label in labels}
