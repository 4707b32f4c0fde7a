"""The verifier's own reading of the calendar rules, against hand-worked cases the scenario
month does not reach: a rule past midnight, a public holiday closing the tail of the
evening before, a lead time, a config window in local time, traffic-only objectives."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.evidence import verify
from monitor.evidence.verify import (
    _Calendar,
    _Month,
    _recompute,
    _recompute_on_every_core,
    _Results,
    _Service,
)

ZONE = ZoneInfo("Europe/Brussels")


def _minute(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp() // 60)


NIGHT = {
    "name": "night",
    "probes": [{"name": "p", "kind": "http"}, {"name": "feed", "kind": "traffic"}],
    "objectives": [],
    # Monday 22:00 to Tuesday 06:00; 2026-12-08 (a Tuesday) is closed.
    "schedule": {
        "hours": [{"days": "mon", "start": "22:00", "end": "06:00"}],
        "holidays": {"extra_dates": ["2026-12-08"]},
    },
    "maintenance": [
        {
            "start": "2026-11-30T23:00:00",
            "end": "2026-12-01T01:00:00",
            "reason": "r",
            "announced_at": "2026-11-30T22:00:00",
        },
    ],
}


def test_a_rule_past_midnight_and_a_holiday_closing_the_evening_befores_tail() -> None:
    night = _Service(NIGHT, ZONE)
    assert not night.open_at(_minute("2026-11-30T21:59"))  # Monday
    assert night.open_at(_minute("2026-11-30T22:00"))
    assert night.open_at(_minute("2026-12-01T05:59"))  # Tuesday, the rule's tail
    assert not night.open_at(_minute("2026-12-01T06:00"))
    assert night.open_at(_minute("2026-12-07T23:59"))  # the Monday before the holiday
    assert not night.open_at(_minute("2026-12-08T00:00"))  # its tail falls on the holiday


def test_a_window_excludes_from_its_announcement_plus_the_lead_time() -> None:
    night = _Service(NIGHT, ZONE)
    start, end = _minute("2026-12-07T22:00") * 60.0, _minute("2026-12-07T23:00") * 60.0
    stored = [("night", start, end, _minute("2026-12-07T21:00") * 60.0)]
    calendar = _Calendar([night], stored, [], lead=90 * 60.0)
    # Config window announced 22:00 + 90 min lead: excludes from 23:30 (not 23:00).
    assert calendar.exclusion("night", _minute("2026-11-30T23:29")) is None
    assert calendar.exclusion("night", _minute("2026-11-30T23:30")) == "maintenance"
    assert calendar.exclusion("night", _minute("2026-12-01T00:59")) == "maintenance"
    assert calendar.exclusion("night", _minute("2026-12-01T01:00")) is None
    # Stored window announced 21:00 + 90 min: from 22:30 to its end at 23:00.
    assert calendar.exclusion("night", _minute("2026-12-07T22:29")) is None
    assert calendar.exclusion("night", _minute("2026-12-07T22:30")) == "maintenance"
    assert calendar.exclusion("night", _minute("2026-12-07T23:00")) is None
    # Outside hours comes first; a correction applies to every service when unnamed.
    span = (None, _minute("2026-12-01T02:00") * 60.0, _minute("2026-12-01T03:00") * 60.0)
    corrected = _Calendar([night], [], [span], lead=0.0)
    assert corrected.exclusion("night", _minute("2026-12-01T02:30")) == "corrected"
    assert corrected.exclusion("night", _minute("2026-12-01T07:00")) == "outside_hours"


def test_an_objectives_source_picks_probes_or_traffic_feeds() -> None:
    night = _Service(NIGHT, ZONE)
    assert night.probes_of({"kind": "latency"}) == ["p"]
    assert night.probes_of({"kind": "latency", "source": "traffic"}) == ["feed"]
    assert night.probes_of({"kind": "latency", "source": "both"}) == ["p", "feed"]
    assert night.probes_of({"kind": "latency", "probes": ["feed"]}) == ["feed"]


def test_the_decisions_split_across_cores_equal_those_made_in_one_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A provider and its dependant stay in one worker; four services, a day, seeded."""
    rng = random.Random(5)
    period = {"timezone": "Europe/Brussels", "start": "2026-11-30T00:00:00+01:00",
              "end": "2026-12-01T00:00:00+01:00"}  # fmt: skip
    month = _Month(period)
    objectives = [
        {"name": "fast", "kind": "latency", "threshold": "1s"},
        {"name": "up", "kind": "availability"},
    ]
    raw = [
        {"name": name, "probes": [{"name": "p", "kind": "http"}], "objectives": objectives,
         "depends_on": depends}
        for name, depends in (("core", []), ("portal", ["core"]), ("a", []), ("b", []))
    ]  # fmt: skip
    services = [_Service(s, ZONE) for s in raw]
    results = _Results()
    results.thresholds = {s.name: [1.0] for s in services}
    for s in services:
        for minute in month.minutes():
            n = rng.choice([0, 6, 6, 6])
            ok = n - rng.choice([0, 0, 1, 4, 6]) if n else 0
            results.counts[(s.name, "p", minute)] = [n, max(ok, 0), max(ok - 1, 0)]
    calendar = _Calendar(services, [], [], lead=0.0)
    alone = _recompute(services, calendar, results, month)
    monkeypatch.setattr(verify, "PARALLEL_FROM", 0)
    split = _recompute_on_every_core(services, calendar, results, month)

    def plain(figures: dict[tuple[str, str], verify._Figure]) -> dict[object, object]:
        return {
            key: (dict(f.month), {d: dict(c) for d, c in f.days.items()})
            for key, f in figures.items()
        }

    assert plain(split) == plain(alone)
    assert alone[("portal", "up")].month["provider_unavailable"] > 0  # the link mattered


def test_rows_with_quotes_commas_and_newlines_are_read_and_hashed_as_written(
    tmp_path: Path,
) -> None:
    month = _Month({"timezone": "Europe/Brussels", "start": "2026-11-30T00:00:00+01:00",
                    "end": "2026-12-01T00:00:00+01:00"})  # fmt: skip
    at = _minute("2026-11-30T10:00") * 60.0
    rows = [
        ["core", "p", "http", repr(at), "", "0.5", "ok", "", ""],
        ["core", "p", "http", repr(at + 10), "", "5.0", "timeout", 'no "answer", in 5 s', ""],
        ["core", "p", "http", repr(at + 20), "", "2.0", "ok", "line one\nline two", "id,1"],
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["service", "probe", "kind", "started_at", "started_at_utc", "latency_s",
                     "outcome", "detail", "request_id"])  # fmt: skip
    header = len(buffer.getvalue())
    writer.writerows(rows)
    (tmp_path / "results.csv").write_text(buffer.getvalue(), encoding="utf-8")
    body = buffer.getvalue()[header:].encode()
    service = _Service({"name": "core", "probes": [{"name": "p", "kind": "http"}],
                        "objectives": [{"name": "f", "kind": "latency", "threshold": "1s"}]},
                       ZONE)  # fmt: skip
    results = _Results.read(tmp_path / "results.csv", [service], month)
    assert results.rows == 3
    assert results.counts[("core", "p", int(at // 60))] == [3, 2, 1]  # 3 results, 2 ok, 1 <= 1 s
    assert results.days == {"2026-11-30": [3, hashlib.sha256(body).hexdigest()]}


def test_located_rows_count_apart_and_a_format_1_day_hashes_without_the_new_fields(
    tmp_path: Path,
) -> None:
    month = _Month({"timezone": "Europe/Brussels", "start": "2026-11-30T00:00:00+01:00",
                    "end": "2026-12-01T00:00:00+01:00"})  # fmt: skip
    at = _minute("2026-11-30T10:00") * 60.0
    old = [
        ["core", "p", "http", repr(at), "", "0.5", "ok", "", ""],
        ["core", "p", "http", repr(at + 10), "", "5.0", "timeout", 'no "answer", in 5 s', ""],
    ]
    old.append(["core", "p", "http", repr(at + 20), "", "0.2", "ok", "", ""])
    located = [[*old[0], "a", "0"], [*old[1], "b", "0"], [*old[2], "b", "1"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["service", "probe", "kind", "started_at", "started_at_utc", "latency_s",
                     "outcome", "detail", "request_id", "location", "late"])  # fmt: skip
    writer.writerows(located)
    (tmp_path / "results.csv").write_text(buffer.getvalue(), encoding="utf-8")
    # What a format 1 digest hashed: the same records without their last two fields.
    before = io.StringIO()
    csv.writer(before, lineterminator="\n").writerows(old)
    service = _Service({"name": "core", "probes": [{"name": "p", "kind": "http"}],
                        "objectives": [{"name": "f", "kind": "latency", "threshold": "1s"}]},
                       ZONE)  # fmt: skip
    results = _Results.read(
        tmp_path / "results.csv", [service], month, located=True, legacy=frozenset({"2026-11-30"})
    )
    minute = int(at // 60)
    assert results.rows == 2  # the late row is hashed, not counted
    assert results.counts == {("core", "p", minute, "a"): [1, 1, 1],
                              ("core", "p", minute, "b"): [1, 0, 0]}  # fmt: skip
    assert results.of("core", ["p"], minute) == (2, 1)
    assert results.of("core", ["p"], minute, "b") == (1, 0)
    expected = hashlib.sha256(before.getvalue().encode()).hexdigest()
    assert results.days == {"2026-11-30": [3, expected]}


@pytest.mark.parametrize(
    ("seen", "quorum", "state", "faults"),
    [
        # (results, ok) per location in one minute -> the minute, the locations at fault
        ({"a": (6, 0), "b": (6, 6)}, 2, "up", ["a"]),
        ({"a": (6, 1), "b": (6, 0)}, 2, "down", []),
        ({"b": (6, 0)}, 2, "unmonitored", []),
        ({"a": (6, 0), "b": (6, 6), "c": (6, 6)}, 2, "up", ["a"]),
        ({"a": (6, 0), "b": (6, 0), "c": (6, 6)}, 2, "down", []),
        ({"a": (6, 0), "b": (6, 6)}, 1, "down", []),  # quorum 1: one location is enough
    ],
)
def test_the_quorum_of_locations_decides_each_minute(
    tmp_path: Path,
    seen: dict[str, tuple[int, int]],
    quorum: int,
    state: str,
    faults: list[str],
) -> None:
    month = _Month({"timezone": "UTC", "start": "2026-11-30T00:00:00+00:00",
                    "end": "2026-11-30T00:02:00+00:00"})  # fmt: skip
    service = _Service({"name": "core", "probes": [{"name": "p", "kind": "http"}],
                        "objectives": [{"name": "up", "kind": "availability"}]}, ZONE)  # fmt: skip
    results = _Results()
    results.located, results.locations = True, sorted(seen)
    for location, (n, ok) in seen.items():
        results.counts[("core", "p", month.first, location)] = [n, ok]
    names = ["a", "b", "c"][: max(2, len(seen))]
    places = verify._Locations({"locations": {"names": names, "quorum": quorum}})
    calendar = _Calendar([service], [], [], 0.0)
    figure = _recompute([service], calendar, results, month, places)[("core", "up")]
    # The month's second minute has no result: unmonitored.
    assert dict(figure.month) | {"unmonitored": figure.month["unmonitored"] - 1} == {
        state: 1,
        "unmonitored": int(state == "unmonitored"),
        **{f"fault {location}": 1 for location in faults},
    }
