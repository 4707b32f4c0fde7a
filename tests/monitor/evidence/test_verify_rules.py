"""The verifier's own reading of the calendar rules, against hand-worked cases the scenario
month does not reach: a rule past midnight, a public holiday closing the tail of the
evening before, a lead time, a config window in local time, traffic-only objectives."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from monitor.evidence.verify import _Calendar, _Service

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
