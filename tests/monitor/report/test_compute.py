"""The monthly report's figures, checked one by one against values computed here from the
seeded month (tests/monitor/report/scenario.py), independently of monitor.report.model."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from monitor.ledger.windows import Ledger
from monitor.report.compute import build_report
from monitor.report.model import BadMonthError, Month, NoDataError, Report, ReportError, parse_year
from monitor.sla.counts import bucket_index, estimate_quantile, exact_quantile
from monitor.sla.eligibility import Eligibility
from monitor.sla.figures import all_figures
from monitor.store import SqliteStore
from tests.monitor.report import scenario as sc

pytestmark = pytest.mark.timeout(300)

OCTOBER = Month(2026, 10)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scenario in a SQLite file, with the hour summaries a daemon would have written."""
    path = tmp_path_factory.mktemp("report") / "seeded.sqlite3"

    async def build() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await sc.seed(store)
            await sc.compact(store, sc.config())
        finally:
            await store.aclose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="module")
def report(seeded: Path) -> Report:
    """October's report, computed once for the figure tests."""

    async def build() -> Report:
        store = SqliteStore(seeded)
        await store.open()
        try:
            return await build_report(sc.config(), store, OCTOBER, now=sc.NOW)
        finally:
            await store.aclose()

    return asyncio.run(build())


async def _report(path: Path, **kwargs: Any) -> Report:
    store = SqliteStore(path)
    await store.open()
    try:
        return await build_report(sc.config(), store, OCTOBER, **kwargs)
    finally:
        await store.aclose()


# --- what the test expects, computed from the scenario alone --------------------------------


def _day(minute: int) -> str:
    return dt.datetime.fromtimestamp(minute * 60, sc.ZONE).date().isoformat()


class Expected:
    """Per objective: counts per day and for the month, and the latencies counted."""

    def __init__(self) -> None:
        self.valid: dict[str, Counter[str]] = defaultdict(Counter)  # objective -> day -> n
        self.good: dict[str, Counter[str]] = defaultdict(Counter)
        self.latencies: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.states: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        self.minutes: Counter[str] = Counter()
        for minute in range(sc.FIRST, sc.AFTER):
            day = _day(minute)
            self.minutes[day] += 1
            if minute in sc.GAP:
                # Never decided: unmonitored unless service hours exclude the minute.
                self.states["core/availability"][day]["unmonitored"] += 1
                portal = "unmonitored" if sc.portal_open(minute) else "outside_hours"
                self.states["portal/availability"][day][portal] += 1
                continue
            self.states["core/availability"][day][sc.core_state(minute)] += 1
            self.states["portal/availability"][day][sc.portal_state(minute)] += 1
            if sc.core_excluded(minute) is None:
                self._count("core", day, sc.core_results(minute), {"online-1s": 1, "online-2s": 2})
            if sc.portal_open(minute):
                self._count("portal", day, sc.portal_results(minute), {"answer-4s": 4})

    def _count(
        self, service: str, day: str, samples: list[sc.Sample], thresholds: dict[str, float]
    ) -> None:
        for name, limit in thresholds.items():
            key = f"{service}/{name}"
            for ok, _, latency in samples:
                self.valid[key][day] += 1
                if ok:
                    self.good[key][day] += ok and latency <= limit
                    self.latencies[key][day].append(latency)


EXPECTED = Expected()
TARGETS = {
    "core/online-1s": 0.99,
    "core/online-2s": 0.995,
    "core/availability": 0.99,
    "portal/answer-4s": 0.99,
    "portal/availability": 0.99,
}
STATES = ("up", "down", "unmonitored", "outside_hours", "maintenance", "provider_unavailable")


def _objectives(report: Report) -> dict[str, Any]:
    return {f"{o.service}/{o.objective}": o for o in report.objectives()}


# --- the tests ------------------------------------------------------------------------------


def test_period_is_the_local_calendar_month_with_its_dst_day(report: Report) -> None:
    period = report.period
    assert (period.month, period.timezone) == ("2026-10", "Europe/Brussels")
    assert period.start == "2026-10-01T00:00:00+02:00"
    assert period.end == period.month_end == "2026-11-01T00:00:00+01:00"
    assert not period.provisional
    assert (period.days, period.minutes) == (31, 31 * 1440 + 60)
    days = _objectives(report)["core/online-1s"].days
    assert [d.date for d in days] == sorted(EXPECTED.minutes)
    assert {d.date: d.minutes for d in days} == dict(EXPECTED.minutes)
    assert EXPECTED.minutes["2026-10-25"] == 1500  # the clocks went back


def test_latency_objectives_every_figure(report: Report) -> None:
    for key in ("core/online-1s", "core/online-2s", "portal/answer-4s"):
        objective = _objectives(report)[key]
        valid = sum(EXPECTED.valid[key].values())
        good = sum(EXPECTED.good[key].values())
        target = TARGETS[key]
        assert (objective.valid, objective.good, objective.bad) == (valid, good, valid - good)
        assert objective.target == target
        assert objective.achieved == good / valid
        assert objective.margin == pytest.approx(good / valid - target, abs=1e-15)
        assert objective.verdict == ("PASS" if good / valid >= target else "FAIL")
        assert objective.budget.allowed == pytest.approx((1 - target) * valid)
        assert objective.budget.consumed == valid - good
        assert objective.budget.consumed_ratio == pytest.approx(
            (valid - good) / ((1 - target) * valid)
        )
        everything = [x for day in EXPECTED.latencies[key].values() for x in day]
        _check_quantiles(objective.quantiles_s, everything)
        for day in objective.days:
            valid_day = EXPECTED.valid[key][day.date]
            good_day = EXPECTED.good[key][day.date]
            assert (day.valid, day.good, day.bad) == (valid_day, good_day, valid_day - good_day)
            assert day.compliance == (good_day / valid_day if valid_day else None)
            assert day.met == (None if not valid_day else good_day / valid_day >= target)
            _check_quantiles(day.quantiles_s, EXPECTED.latencies[key][day.date])
    # The numbers the scenario was built to produce.
    core = _objectives(report)["core/online-1s"]
    assert core.valid == (44_700 - 120 - 150) * 6  # the gap and the maintenance are out
    portal = _objectives(report)["portal/answer-4s"]
    assert portal.days[4].valid == 10 * 60 * 6  # Monday 2026-10-05: open 08:00-18:00
    assert portal.days[3].valid == 0  # a Sunday: closed


def _check_quantiles(figures: dict[str, float | None] | None, latencies: list[float]) -> None:
    assert figures is not None
    buckets = Counter(bucket_index(x) for x in latencies)
    for key, q in (("p50", 0.5), ("p99", 0.99), ("p99_5", 0.995)):
        exact = exact_quantile(latencies, q)
        if exact is None:
            assert figures[key] is None
            continue
        assert figures[key] == estimate_quantile(buckets, q)
        assert figures[key] == pytest.approx(exact, rel=0.01)


def test_availability_every_figure(report: Report) -> None:
    for key in ("core/availability", "portal/availability"):
        objective = _objectives(report)[key]
        month: Counter[str] = Counter()
        for counts in EXPECTED.states[key].values():
            month.update(counts)
        up, down, unmonitored = month["up"], month["down"], month["unmonitored"]
        assert objective.minute_states == {state: month[state] for state in STATES}
        assert sum(month.values()) == 44_700
        assert (objective.valid, objective.good, objective.bad) == (up + down, up, down)
        assert objective.achieved == up / (up + down)
        assert objective.coverage == (up + down) / (up + down + unmonitored)
        assert objective.budget.consumed == down
        assert objective.verdict == "PASS"
        for day in objective.days:
            counts = EXPECTED.states[key][day.date]
            assert day.minute_states == {state: counts[state] for state in STATES}
            assert day.valid == counts["up"] + counts["down"]
            if day.valid:
                assert day.compliance == counts["up"] / day.valid
    core = _objectives(report)["core/availability"].minute_states
    portal = _objectives(report)["portal/availability"].minute_states
    assert core is not None
    assert portal is not None
    assert (core["down"], core["maintenance"], core["unmonitored"]) == (60, 150, 120)
    assert (portal["down"], portal["provider_unavailable"], portal["unmonitored"]) == (10, 30, 0)
    dst_day = _objectives(report)["core/availability"].days[24]
    assert (dst_day.date, dst_day.minutes, dst_day.minute_states) == (
        "2026-10-25",
        1500,
        {**dict.fromkeys(STATES, 0), "up": 1380, "unmonitored": 120},
    )


def test_incidents_maintenance_and_alerts(report: Report) -> None:
    core, portal = report.services
    assert [(i.start, i.end, i.duration_minutes, i.failures) for i in core.incidents] == [
        ("2026-10-14T10:00:00+02:00", "2026-10-14T10:30:00+02:00", 30, {"timeout": 180}),
        # The late announcement excluded nothing before 22:30: those minutes were down.
        ("2026-10-27T22:00:00+01:00", "2026-10-27T22:30:00+01:00", 30, {"status": 180}),
    ]
    assert core.incidents[0].cause.startswith("timeout: no answer within")
    assert [(i.start, i.duration_minutes, i.failures) for i in portal.incidents] == [
        ("2026-10-16T15:00:00+02:00", 10, {"connect": 60})
    ]
    assert [
        (m.start, m.end, m.announced_at, m.announced_late, m.minutes_excluded)
        for m in core.maintenance
    ] == [
        (
            "2026-10-20T02:00:00+02:00",
            "2026-10-20T04:00:00+02:00",
            "2026-10-10T12:00:00+02:00",
            False,
            120,
        ),
        (
            "2026-10-27T22:00:00+01:00",
            "2026-10-27T23:00:00+01:00",
            "2026-10-27T22:30:00+01:00",
            True,
            30,
        ),
    ]
    assert portal.maintenance == []
    assert [a.alert_id for a in core.alerts] == ["a1"]  # the September one is left out
    alert = core.alerts[0]
    assert (alert.acknowledged_by, alert.minutes_to_acknowledge, alert.minutes_to_resolve) == (
        "alice",
        7.0,
        30.0,
    )
    assert report.verdict == "PASS"
    assert report.counts == {"PASS": 5, "FAIL": 0, "INSUFFICIENT DATA": 0, "NO DATA": 0}
    assert [m.topic for m in report.method][:3] == [
        "Period",
        "Latency objectives",
        "Availability objectives",
    ]


async def test_hour_summaries_and_minutes_give_the_same_report(
    seeded: Path, tmp_path: Path
) -> None:
    """Without the compacted hours (a store written before compaction existed) every minute
    is read one by one: the figures are the same."""
    path = tmp_path / "minutes-only.sqlite3"
    shutil.copy(seeded, path)
    store = SqliteStore(path)
    await store.open()
    await store.db.execute("DELETE FROM hours")
    await store.db.commit()
    await store.aclose()
    by_hours = await _report(seeded, now=sc.NOW)
    by_minutes = await _report(path, now=sc.NOW)
    assert by_minutes.model_dump(exclude={"generated_at"}) == by_hours.model_dump(
        exclude={"generated_at"}
    )


async def test_the_report_agrees_with_the_daemons_previous_month(seeded: Path) -> None:
    """The daemon's own `previous_month` window, rebuilt from the same store."""
    config = sc.config()
    store = SqliteStore(seeded)
    await store.open()
    try:
        eligibility = Eligibility(config)
        eligibility.replace_stored_maintenance(await store.list_maintenance())
        ledger = Ledger(config, eligibility)
        await ledger.load(store, sc.NOW)
        report = await build_report(config, store, OCTOBER, now=sc.NOW)
    finally:
        await store.aclose()
    daemon = {
        f"{f.service}/{f.objective}": f.windows["previous_month"]
        for f in all_figures(config, ledger, sc.NOW)
    }
    for key, objective in _objectives(report).items():
        window = daemon[key]
        assert (objective.valid, objective.good) == (window.valid, window.good), key
        assert objective.achieved == window.compliance, key
        if objective.kind == "latency":
            assert objective.quantiles_s == {
                "p50": window.quantiles["p50"],
                "p99": window.quantiles["p99"],
                "p99_5": window.quantiles["p99_5"],
            }
        else:
            assert objective.minute_states == {
                state: window.minutes.get(state, 0) for state in STATES
            }
            assert objective.coverage == window.coverage


async def test_a_month_not_over_is_provisional_to_date(seeded: Path) -> None:
    now = sc.local("2026-10-20T12:00:30")
    report = await _report(seeded, now=now)
    assert report.period.provisional
    # Minutes are sealed a grace period after they end: the report runs to there.
    assert report.period.end == "2026-10-20T11:59:00+02:00"
    assert report.period.month_end == "2026-11-01T00:00:00+01:00"
    assert report.period.days == 20
    core = _objectives(report)["core/online-1s"]
    assert core.days[-1].date == "2026-10-20"
    assert core.days[-1].minutes == 11 * 60 + 59


async def test_a_month_without_data_is_an_error_not_an_empty_report(seeded: Path) -> None:
    store = SqliteStore(seeded)
    await store.open()
    try:
        with pytest.raises(NoDataError, match="no data for 2026-08"):
            await build_report(sc.config(), store, Month(2026, 8), now=sc.NOW)
        with pytest.raises(NoDataError, match="has not started"):
            await build_report(sc.config(), store, Month(2027, 1), now=sc.NOW)
        with pytest.raises(ReportError, match="unknown service"):
            await build_report(sc.config(), store, OCTOBER, now=sc.NOW, service="nope")
    finally:
        await store.aclose()


async def test_one_service(seeded: Path, report: Report) -> None:
    alone = await _report(seeded, now=sc.NOW, service="portal")
    assert [s.name for s in alone.services] == ["portal"]
    assert alone.services[0].model_dump() == report.services[1].model_dump()
    assert report.only("portal").model_dump(exclude={"generated_at"}) == alone.model_dump(
        exclude={"generated_at"}
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13", "the month must be 01 to 12"),
        ("2026-00", "the month must be 01 to 12"),
        ("last", "use YYYY-MM"),
        ("2026-1", "use YYYY-MM"),
        ("26-10", "use YYYY-MM"),
        ("1969-12", "the year must be"),
    ],
)
def test_bad_months(text: str, message: str) -> None:
    with pytest.raises(BadMonthError, match=message):
        Month.parse(text)


def test_months_and_years_parse() -> None:
    assert Month.parse(" 2026-10 ") == OCTOBER
    assert str(Month(2027, 1)) == "2027-01"
    assert len(Month(2026, 2).days()) == 28
    assert parse_year("2026") == 2026
    with pytest.raises(BadMonthError, match="bad year"):
        parse_year("26")
