"""Service hours, public holidays, maintenance windows and calendar months: tables whose
expectations were worked out by hand (Europe/Brussels, 2026: DST starts Sunday 29 March at
02:00 -> 03:00 and ends Sunday 25 October at 03:00 -> 02:00; 1 June 2026 is a Monday)."""

from __future__ import annotations

import datetime as dt
import textwrap
from zoneinfo import ZoneInfo

import pytest

from monitor.config import Config, parse_config
from monitor.errors import ConfigError
from monitor.sla.eligibility import Eligibility, MaintenanceWindow, maintenance_from_config
from monitor.sla.minutes import Exclusion
from monitor.sla.windows import month_bounds, month_of, next_month, previous_month

ZONE = ZoneInfo("Europe/Brussels")
HOUR_S = 3600.0


def minute_at(text: str) -> int:
    """The epoch minute of an ISO time; without an offset it is Brussels wall time."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZONE)
    return int(value.timestamp()) // 60


def seconds_at(text: str) -> float:
    return minute_at(text) * 60.0


def local_day(date: str) -> range:
    """The epoch minutes of one Brussels calendar day."""
    day = dt.date.fromisoformat(date)
    return range(minute_at(f"{day}T00:00"), minute_at(f"{day + dt.timedelta(days=1)}T00:00"))


def make_config(service_yaml: str = "", top_yaml: str = "") -> Config:
    """A one-service config ("online") with the given service keys and top-level keys."""
    text = (
        top_yaml
        + "services:\n"
        + "  - name: online\n"
        + "    probes:\n"
        + "      - {name: p1, kind: http, url: 'http://127.0.0.1:8181/'}\n"
        + textwrap.indent(textwrap.dedent(service_yaml), "    ")
    )
    return parse_config(text, "test.yaml")


def hours_config(schedule: str) -> Config:
    return make_config(f"schedule: {schedule}\n")


WEEKDAYS = "{hours: [{days: mon-fri, start: 06:00, end: 22:00}]}"
MONDAY_NIGHTS = "{hours: [{days: [mon], start: 22:00, end: 06:00}]}"
SUNDAY_NIGHTS = "{hours: [{days: sun, start: 22:00, end: 06:00}]}"
WEEKDAY_NIGHTS = "{hours: [{days: mon-fri, start: 22:00, end: 06:00}]}"
EVENINGS_TO_MIDNIGHT = "{hours: [{days: mon-fri, start: 18:00, end: 24:00}]}"
WHOLE_WEEKDAYS = "{hours: [{days: mon-fri, start: 00:00, end: 24:00}]}"
WEEKDAYS_AND_SATURDAY_MORNING = (
    "{hours: [{days: mon-fri, start: 06:00, end: 22:00}, {days: sat, start: 8:00, end: 12:00}]}"
)
LONG_WEEKEND = "{hours: [{days: fri-mon, start: 00:00, end: 24:00}]}"
SUNDAY_EARLY = "{hours: [{days: sun, start: 01:00, end: 04:00}]}"
SUNDAY_TWO_TO_THREE = "{hours: [{days: sun, start: 02:00, end: 03:00}]}"
BELGIAN_24X7 = "{holidays: {country: BE}}"
BELGIAN_WEEKDAYS = "{hours: [{days: mon-fri, start: 06:00, end: 22:00}], holidays: {country: BE}}"
BELGIAN_WEEKDAYS_XMAS_EVE = (
    "{hours: [{days: mon-fri, start: 06:00, end: 22:00}], "
    "holidays: {country: BE, extra_dates: [2026-12-24]}}"
)
BELGIAN_WEEKDAY_NIGHTS = (
    "{hours: [{days: mon-fri, start: 22:00, end: 06:00}], holidays: {country: BE}}"
)
GERMAN_24X7 = "{holidays: {country: DE}}"
BAVARIAN_24X7 = "{holidays: {country: DE, subdivision: BY}}"
EXTRA_DATE_ONLY = "{holidays: {extra_dates: [2026-06-03]}}"

#: (schedule, local time, open?)
OPEN_AT: list[tuple[str, str, str, bool]] = [
    ("weekdays-mon-0559", WEEKDAYS, "2026-06-01T05:59", False),
    ("weekdays-mon-0600", WEEKDAYS, "2026-06-01T06:00", True),
    ("weekdays-mon-2159", WEEKDAYS, "2026-06-01T21:59", True),
    ("weekdays-mon-2200", WEEKDAYS, "2026-06-01T22:00", False),
    ("weekdays-fri-2159", WEEKDAYS, "2026-06-05T21:59", True),
    ("weekdays-sat-noon", WEEKDAYS, "2026-06-06T12:00", False),
    ("weekdays-sun-noon", WEEKDAYS, "2026-06-07T12:00", False),
    ("mon-nights-mon-2159", MONDAY_NIGHTS, "2026-06-01T21:59", False),
    ("mon-nights-mon-2200", MONDAY_NIGHTS, "2026-06-01T22:00", True),
    ("mon-nights-tue-0000", MONDAY_NIGHTS, "2026-06-02T00:00", True),
    ("mon-nights-tue-0559", MONDAY_NIGHTS, "2026-06-02T05:59", True),
    ("mon-nights-tue-0600", MONDAY_NIGHTS, "2026-06-02T06:00", False),
    ("mon-nights-mon-0300-no-sunday-rule", MONDAY_NIGHTS, "2026-06-01T03:00", False),
    ("mon-nights-tue-2200", MONDAY_NIGHTS, "2026-06-02T22:00", False),
    ("sun-nights-sun-2159", SUNDAY_NIGHTS, "2026-06-07T21:59", False),
    ("sun-nights-sun-2200", SUNDAY_NIGHTS, "2026-06-07T22:00", True),
    ("sun-nights-mon-0000", SUNDAY_NIGHTS, "2026-06-08T00:00", True),
    ("sun-nights-mon-0559", SUNDAY_NIGHTS, "2026-06-08T05:59", True),
    ("sun-nights-mon-0600", SUNDAY_NIGHTS, "2026-06-08T06:00", False),
    ("sun-nights-sat-2300", SUNDAY_NIGHTS, "2026-06-06T23:00", False),
    ("weekday-nights-sat-0559-friday-spill", WEEKDAY_NIGHTS, "2026-06-06T05:59", True),
    ("weekday-nights-sat-2200", WEEKDAY_NIGHTS, "2026-06-06T22:00", False),
    ("weekday-nights-mon-0300", WEEKDAY_NIGHTS, "2026-06-08T03:00", False),
    ("to-2400-mon-2359", EVENINGS_TO_MIDNIGHT, "2026-06-01T23:59", True),
    ("to-2400-tue-0000", EVENINGS_TO_MIDNIGHT, "2026-06-02T00:00", False),
    ("to-2400-mon-1759", EVENINGS_TO_MIDNIGHT, "2026-06-01T17:59", False),
    ("whole-weekday-mon-0000", WHOLE_WEEKDAYS, "2026-06-01T00:00", True),
    ("whole-weekday-fri-2359", WHOLE_WEEKDAYS, "2026-06-05T23:59", True),
    ("whole-weekday-sat-0000", WHOLE_WEEKDAYS, "2026-06-06T00:00", False),
    ("two-rules-sat-0800", WEEKDAYS_AND_SATURDAY_MORNING, "2026-06-06T08:00", True),
    ("two-rules-sat-1200", WEEKDAYS_AND_SATURDAY_MORNING, "2026-06-06T12:00", False),
    ("fri-mon-sun", LONG_WEEKEND, "2026-06-07T12:00", True),
    ("fri-mon-tue", LONG_WEEKEND, "2026-06-02T12:00", False),
    # Spring forward: 01:59 CET is followed by 03:00 CEST.
    ("spring-0159", SUNDAY_EARLY, "2026-03-29T01:59", True),
    ("spring-0300-just-after-jump", SUNDAY_EARLY, "2026-03-29T03:00", True),
    ("spring-0359", SUNDAY_EARLY, "2026-03-29T03:59", True),
    ("spring-0400", SUNDAY_EARLY, "2026-03-29T04:00", False),
    # Fall back: 02:00-02:59 happens at +02:00 and again at +01:00; both are 02:xx.
    ("fall-0230-first", SUNDAY_TWO_TO_THREE, "2026-10-25T02:30+02:00", True),
    ("fall-0230-second", SUNDAY_TWO_TO_THREE, "2026-10-25T02:30+01:00", True),
    ("fall-0159", SUNDAY_TWO_TO_THREE, "2026-10-25T01:59", False),
    ("fall-0300", SUNDAY_TWO_TO_THREE, "2026-10-25T03:00+01:00", False),
    ("be-christmas-noon", BELGIAN_WEEKDAYS, "2026-12-25T12:00", False),
    ("be-christmas-eve-noon", BELGIAN_WEEKDAYS, "2026-12-24T12:00", True),
    ("be-christmas-eve-extra-date", BELGIAN_WEEKDAYS_XMAS_EVE, "2026-12-24T12:00", False),
    ("be-easter-monday", BELGIAN_WEEKDAYS, "2026-04-06T12:00", False),
    ("be-24x7-christmas-0000", BELGIAN_24X7, "2026-12-25T00:00", False),
    ("be-24x7-christmas-2359", BELGIAN_24X7, "2026-12-25T23:59", False),
    ("be-24x7-christmas-eve-2359", BELGIAN_24X7, "2026-12-24T23:59", True),
    ("be-24x7-boxing-day-0000", BELGIAN_24X7, "2026-12-26T00:00", True),
    # A holiday closes its whole date: the tail of Thursday night's rule too...
    ("be-nights-christmas-0030", BELGIAN_WEEKDAY_NIGHTS, "2026-12-25T00:30", False),
    ("be-nights-christmas-2200", BELGIAN_WEEKDAY_NIGHTS, "2026-12-25T22:00", False),
    # ... but a rule starting on the holiday still opens the next (ordinary) date.
    ("be-nights-boxing-day-0030", BELGIAN_WEEKDAY_NIGHTS, "2026-12-26T00:30", True),
    ("de-epiphany-not-national", GERMAN_24X7, "2026-01-06T12:00", True),
    ("de-by-epiphany", BAVARIAN_24X7, "2026-01-06T12:00", False),
    ("extra-date-only", EXTRA_DATE_ONLY, "2026-06-03T12:00", False),
    ("extra-date-only-next-day", EXTRA_DATE_ONLY, "2026-06-04T00:00", True),
    ("24x7", "{}", "2026-03-29T02:30+00:00", True),
]


@pytest.mark.parametrize(
    ("schedule", "local", "expected"),
    [case[1:] for case in OPEN_AT],
    ids=[case[0] for case in OPEN_AT],
)
def test_open_at(schedule: str, local: str, expected: bool) -> None:
    config = hours_config(schedule)
    eligibility = Eligibility(config)
    minute = minute_at(local)
    assert eligibility.service_hours("online").open_at(minute) is expected
    assert eligibility.exclusion("online", minute) == (
        None if expected else Exclusion.OUTSIDE_HOURS
    )


#: (schedule, local date, open minutes that day)
OPEN_MINUTES_PER_DAY: list[tuple[str, str, str, int]] = [
    ("24x7-spring-forward", "{}", "2026-03-29", 23 * 60),
    ("24x7-fall-back", "{}", "2026-10-25", 25 * 60),
    ("24x7-ordinary", "{}", "2026-06-01", 24 * 60),
    ("01-04-spring-forward", SUNDAY_EARLY, "2026-03-29", 60 + 60),  # 01:xx and 03:xx
    ("01-04-fall-back", SUNDAY_EARLY, "2026-10-25", 60 + 2 * 60 + 60),  # 02:xx twice
    ("02-03-spring-forward", SUNDAY_TWO_TO_THREE, "2026-03-29", 0),
    ("02-03-fall-back", SUNDAY_TWO_TO_THREE, "2026-10-25", 2 * 60),
    ("weekdays-monday", WEEKDAYS, "2026-06-01", 16 * 60),
    ("weekdays-saturday", WEEKDAYS, "2026-06-06", 0),
    # Saturday night spills 00:00-06:00 (02:xx missing / doubled) plus 22:00-24:00.
    (
        "nights-spring-forward",
        "{hours: [{days: mon-sun, start: 22:00, end: 06:00}]}",
        "2026-03-29",
        5 * 60 + 2 * 60,
    ),
    (
        "nights-fall-back",
        "{hours: [{days: mon-sun, start: 22:00, end: 06:00}]}",
        "2026-10-25",
        7 * 60 + 2 * 60,
    ),
    ("be-christmas", BELGIAN_24X7, "2026-12-25", 0),
    ("be-christmas-eve", BELGIAN_24X7, "2026-12-24", 24 * 60),
]


@pytest.mark.parametrize(
    ("schedule", "date", "expected"),
    [case[1:] for case in OPEN_MINUTES_PER_DAY],
    ids=[case[0] for case in OPEN_MINUTES_PER_DAY],
)
def test_open_minutes_per_local_day(schedule: str, date: str, expected: int) -> None:
    hours = Eligibility(hours_config(schedule)).service_hours("online")
    assert sum(hours.open_at(m) for m in local_day(date)) == expected


#: (schedule, first local date, last local date inclusive, open minutes)
OPEN_MINUTES_PER_PERIOD: list[tuple[str, str, str, str, int]] = [
    ("weekdays-one-week", WEEKDAYS, "2026-06-01", "2026-06-07", 5 * 16 * 60),
    ("weekdays-february", WEEKDAYS, "2026-02-01", "2026-02-28", 20 * 16 * 60),
    # 31 days, Christmas closed, no DST change in December.
    ("be-24x7-december", BELGIAN_24X7, "2026-12-01", "2026-12-31", 30 * 24 * 60),
    # 31 days, minus the skipped hour.
    ("24x7-march", "{}", "2026-03-01", "2026-03-31", 31 * 24 * 60 - 60),
]


@pytest.mark.parametrize(
    ("schedule", "first", "last", "expected"),
    [case[1:] for case in OPEN_MINUTES_PER_PERIOD],
    ids=[case[0] for case in OPEN_MINUTES_PER_PERIOD],
)
def test_open_minutes_per_period(schedule: str, first: str, last: str, expected: int) -> None:
    hours = Eligibility(hours_config(schedule)).service_hours("online")
    end_day = dt.date.fromisoformat(last) + dt.timedelta(days=1)
    minutes = range(minute_at(f"{first}T00:00"), minute_at(f"{end_day}T00:00"))
    assert sum(hours.open_at(m) for m in minutes) == expected


# --- maintenance ----------------------------------------------------------------------------

MAINTENANCE_YAML = """\
maintenance:
  # A, and B overlapping its end.
  - {start: 2026-05-02T22:00:00, end: 2026-05-03T02:00:00, reason: network upgrade}
  - {start: 2026-05-03T01:00:00, end: 2026-05-03T03:00:00, reason: database upgrade}
  # C: announced an hour after it started.
  - start: 2026-05-09T22:00:00
    end: 2026-05-10T02:00:00
    reason: emergency patch
    announced_at: 2026-05-09T23:00:00
  # F: announced 30 minutes before it starts.
  - start: 2026-05-23T10:00:00
    end: 2026-05-23T12:00:00
    reason: certificate renewal
    announced_at: 2026-05-23T09:30:00
  # G: in UTC: 08:00Z is 10:00 in Brussels in summer.
  - {start: 2026-05-30T08:00:00Z, end: 2026-05-30T09:00:00Z, reason: provider test}
"""


def stored_windows() -> list[MaintenanceWindow]:
    """D (announced long before) and E (announced 30 minutes into it), as the store has them."""
    return [
        MaintenanceWindow(
            id="1",
            service="online",
            start=seconds_at("2026-05-16T10:00"),
            end=seconds_at("2026-05-16T11:00"),
            reason="storage move",
            announced_at=seconds_at("2026-05-01T09:00"),
        ),
        MaintenanceWindow(
            id="2",
            service="online",
            start=seconds_at("2026-05-16T14:00"),
            end=seconds_at("2026-05-16T16:00"),
            reason="failover test",
            announced_at=seconds_at("2026-05-16T14:30"),
        ),
    ]


def maintenance_eligibility(lead_time: str = "0") -> Eligibility:
    config = make_config(MAINTENANCE_YAML, f"maintenance_lead_time: {lead_time}\n")
    eligibility = Eligibility(config)
    eligibility.replace_stored_maintenance(stored_windows())
    return eligibility


M = Exclusion.MAINTENANCE

#: (lead time, local time, exclusion)
MAINTENANCE_CASES: list[tuple[str, str, str, Exclusion | None]] = [
    ("a-before-start", "0", "2026-05-02T21:59", None),
    ("a-at-start", "0", "2026-05-02T22:00", M),
    ("a-midnight", "0", "2026-05-03T00:00", M),
    ("a-and-b-overlap", "0", "2026-05-03T01:30", M),
    ("a-end-inside-b", "0", "2026-05-03T02:00", M),
    ("b-last-minute", "0", "2026-05-03T02:59", M),
    ("b-at-end", "0", "2026-05-03T03:00", None),
    ("c-late-at-start", "0", "2026-05-09T22:00", None),
    ("c-late-before-announcement", "0", "2026-05-09T22:59", None),
    ("c-late-at-announcement", "0", "2026-05-09T23:00", M),
    ("c-late-last-minute", "0", "2026-05-10T01:59", M),
    ("c-late-at-end", "0", "2026-05-10T02:00", None),
    ("c-lead-1h-before", "1h", "2026-05-09T23:59", None),
    ("c-lead-1h-at", "1h", "2026-05-10T00:00", M),
    ("a-lead-1h-announced-long-before", "1h", "2026-05-02T22:00", M),
    ("f-announced-early-enough", "0", "2026-05-23T10:00", M),
    ("f-lead-1h-before", "1h", "2026-05-23T10:29", None),
    ("f-lead-1h-at", "1h", "2026-05-23T10:30", M),
    ("g-utc-before", "0", "2026-05-30T09:59", None),
    ("g-utc-start", "0", "2026-05-30T10:00", M),
    ("g-utc-at-end", "0", "2026-05-30T11:00", None),
    ("d-stored-before", "0", "2026-05-16T09:59", None),
    ("d-stored-start", "0", "2026-05-16T10:00", M),
    ("d-stored-last-minute", "0", "2026-05-16T10:59", M),
    ("d-stored-at-end", "0", "2026-05-16T11:00", None),
    ("e-stored-late-before-announcement", "0", "2026-05-16T14:29", None),
    ("e-stored-late-at-announcement", "0", "2026-05-16T14:30", M),
    ("e-stored-lead-1h-before", "1h", "2026-05-16T15:29", None),
    ("e-stored-lead-1h-at", "1h", "2026-05-16T15:30", M),
    ("e-stored-lead-1h-last-minute", "1h", "2026-05-16T15:59", M),
    ("e-stored-lead-1h-at-end", "1h", "2026-05-16T16:00", None),
    ("e-stored-lead-2h-never", "2h", "2026-05-16T15:59", None),
]


@pytest.mark.parametrize(
    ("lead_time", "local", "expected"),
    [case[1:] for case in MAINTENANCE_CASES],
    ids=[case[0] for case in MAINTENANCE_CASES],
)
def test_maintenance_exclusion(lead_time: str, local: str, expected: Exclusion | None) -> None:
    eligibility = maintenance_eligibility(lead_time)
    minute = minute_at(local)
    assert eligibility.exclusion("online", minute) == expected
    window = eligibility.maintenance_at("online", minute * 60.0 + 30)
    assert (window is not None) == (expected is M)


#: Weekdays 06:00-22:00 with maintenance from Friday 21:00 to Saturday 09:00.
HOURS_AND_MAINTENANCE_YAML = """\
schedule: {hours: [{days: mon-fri, start: 06:00, end: 22:00}]}
maintenance:
  - {start: 2026-06-05T21:00:00, end: 2026-06-06T09:00:00, reason: rack move}
"""

HOURS_FIRST: list[tuple[str, str, Exclusion | None]] = [
    ("fri-2059-open", "2026-06-05T20:59", None),
    ("fri-2100-maintenance", "2026-06-05T21:00", Exclusion.MAINTENANCE),
    ("fri-2200-closed-wins", "2026-06-05T22:00", Exclusion.OUTSIDE_HOURS),
    ("sat-0800-closed-wins", "2026-06-06T08:00", Exclusion.OUTSIDE_HOURS),
]


@pytest.mark.parametrize(
    ("local", "expected"),
    [case[1:] for case in HOURS_FIRST],
    ids=[case[0] for case in HOURS_FIRST],
)
def test_outside_hours_comes_before_maintenance(local: str, expected: Exclusion | None) -> None:
    eligibility = Eligibility(make_config(HOURS_AND_MAINTENANCE_YAML))
    assert eligibility.exclusion("online", minute_at(local)) == expected


def test_config_windows_are_converted_from_local_time() -> None:
    config = make_config(MAINTENANCE_YAML)
    windows = maintenance_from_config(config.services[0], ZONE)
    assert [w.id for w in windows] == [f"cfg-online-{i}" for i in range(5)]
    assert {w.source for w in windows} == {"config"}
    first = windows[0]
    # 2026-05-02 22:00 CEST is 20:00 UTC.
    assert first.start == dt.datetime(2026, 5, 2, 20, 0, tzinfo=dt.UTC).timestamp()
    assert first.announced_at == float("-inf")
    assert windows[2].announced_at == dt.datetime(2026, 5, 9, 21, 0, tzinfo=dt.UTC).timestamp()
    assert windows[4].start == dt.datetime(2026, 5, 30, 8, 0, tzinfo=dt.UTC).timestamp()


def test_windows_are_sorted_and_stored_ones_replaced() -> None:
    eligibility = maintenance_eligibility()
    ids = ["cfg-online-0", "cfg-online-1", "cfg-online-2", "1", "2", "cfg-online-3"]
    assert [w.id for w in eligibility.windows("online")] == [*ids, "cfg-online-4"]
    assert [w.id for w in eligibility.windows()] == [*ids, "cfg-online-4"]
    assert eligibility.windows("elsewhere") == []

    eligibility.replace_stored_maintenance([])
    assert eligibility.exclusion("online", minute_at("2026-05-16T10:00")) is None
    # Config windows stay.
    assert eligibility.exclusion("online", minute_at("2026-05-02T22:00")) is M
    assert "1" not in [w.id for w in eligibility.windows()]


def test_maintenance_at_returns_the_window() -> None:
    eligibility = maintenance_eligibility("1h")
    window = eligibility.maintenance_at("online", seconds_at("2026-05-16T15:45"))
    assert window is not None
    assert (window.id, window.reason) == ("2", "failover test")
    assert eligibility.maintenance_at("online", seconds_at("2026-05-16T15:00")) is None
    assert eligibility.maintenance_at("online", seconds_at("2026-05-16T16:00")) is None


# --- calendar months ------------------------------------------------------------------------

#: (year, month, first minute as UTC, minutes in the month)
MONTHS: list[tuple[str, int, int, str, int]] = [
    ("2026-01", 2026, 1, "2025-12-31T23:00+00:00", 31 * 1440),  # 44640
    ("2026-02-28-days", 2026, 2, "2026-01-31T23:00+00:00", 28 * 1440),  # 40320
    ("2026-03-spring-forward", 2026, 3, "2026-02-28T23:00+00:00", 31 * 1440 - 60),  # 44580
    ("2026-04-30-days", 2026, 4, "2026-03-31T22:00+00:00", 30 * 1440),  # 43200
    ("2026-10-fall-back", 2026, 10, "2026-09-30T22:00+00:00", 31 * 1440 + 60),  # 44700
    ("2026-12-year-end", 2026, 12, "2026-11-30T23:00+00:00", 31 * 1440),
    ("2028-02-leap", 2028, 2, "2028-01-31T23:00+00:00", 29 * 1440),
]


@pytest.mark.parametrize(
    ("year", "month", "first_utc", "minutes"),
    [case[1:] for case in MONTHS],
    ids=[case[0] for case in MONTHS],
)
def test_month_bounds(year: int, month: int, first_utc: str, minutes: int) -> None:
    first, end = month_bounds(year, month, ZONE)
    assert first == minute_at(first_utc)
    assert end - first == minutes


def test_month_bound_literals() -> None:
    counts = {
        m: month_bounds(2026, m, ZONE)[1] - month_bounds(2026, m, ZONE)[0] for m in (1, 2, 3, 4, 10)
    }
    assert counts == {1: 44640, 2: 40320, 3: 44580, 4: 43200, 10: 44700}


MONTH_OF: list[tuple[str, str, tuple[int, int]]] = [
    ("march-last-minute", "2026-03-31T23:59", (2026, 3)),
    ("april-first-minute", "2026-04-01T00:00", (2026, 4)),
    ("april-first-minute-in-utc", "2026-03-31T22:00+00:00", (2026, 4)),
    ("march-in-utc-an-hour-before", "2026-03-31T21:59+00:00", (2026, 3)),
    ("new-year-local", "2026-01-01T00:00", (2026, 1)),
    ("old-year-last-minute", "2025-12-31T23:59", (2025, 12)),
    ("new-year-while-utc-is-still-2025", "2025-12-31T23:30+00:00", (2026, 1)),
]


@pytest.mark.parametrize(
    ("local", "expected"),
    [case[1:] for case in MONTH_OF],
    ids=[case[0] for case in MONTH_OF],
)
def test_month_of(local: str, expected: tuple[int, int]) -> None:
    assert month_of(minute_at(local), ZONE) == expected


@pytest.mark.parametrize(
    ("month", "before", "after"),
    [
        ((2026, 1), (2025, 12), (2026, 2)),
        ((2026, 3), (2026, 2), (2026, 4)),
        ((2026, 12), (2026, 11), (2027, 1)),
    ],
    ids=["january", "march", "december"],
)
def test_previous_and_next_month(
    month: tuple[int, int], before: tuple[int, int], after: tuple[int, int]
) -> None:
    assert previous_month(*month) == before
    assert next_month(*month) == after


# --- what the new config keys accept and reject (files with line numbers: test_config) ----

DAY_SPELLINGS: list[tuple[str, str, set[int]]] = [
    ("range-mon-fri", "mon-fri", {0, 1, 2, 3, 4}),
    ("range-sat-sun", "sat-sun", {5, 6}),
    ("range-mon-sun", "mon-sun", {0, 1, 2, 3, 4, 5, 6}),
    ("range-wraps", "fri-mon", {4, 5, 6, 0}),
    ("single", "wed", {2}),
    ("capitals", "Mon-Fri", {0, 1, 2, 3, 4}),
    ("list", "[mon, wed, mon]", {0, 2}),
]


@pytest.mark.parametrize(
    ("days", "weekdays"),
    [case[1:] for case in DAY_SPELLINGS],
    ids=[case[0] for case in DAY_SPELLINGS],
)
def test_days_spellings(days: str, weekdays: set[int]) -> None:
    config = hours_config(f"{{hours: [{{days: {days}, start: 06:00, end: 22:00}}]}}")
    hours = config.services[0].schedule.hours
    assert hours is not None
    assert hours[0].weekdays == weekdays


CLOCK_SPELLINGS: list[tuple[str, str, str, int, int]] = [
    ("unquoted-base-60-lookalike", "22:00", "06:00", 22 * 60, 30 * 60),
    ("single-digit-hour", "6:00", "22:00", 6 * 60, 22 * 60),
    ("quoted", '"06:30"', '"24:00"', 6 * 60 + 30, 24 * 60),
    ("whole-day", "00:00", "24:00", 0, 24 * 60),
]


@pytest.mark.parametrize(
    ("start", "end", "start_minute", "end_minute"),
    [case[1:] for case in CLOCK_SPELLINGS],
    ids=[case[0] for case in CLOCK_SPELLINGS],
)
def test_clock_spellings(start: str, end: str, start_minute: int, end_minute: int) -> None:
    config = hours_config(f"{{hours: [{{days: mon, start: {start}, end: {end}}}]}}")
    hours = config.services[0].schedule.hours
    assert hours is not None
    assert (hours[0].start_minute, hours[0].end_minute) == (start_minute, end_minute)


def test_defaults_keep_old_configs_valid() -> None:
    config = make_config("objectives:\n  - {name: availability, kind: availability, target: 99}\n")
    service = config.services[0]
    assert service.schedule.hours is None
    assert service.schedule.holidays is None
    assert service.maintenance == []
    assert service.depends_on == []
    assert config.maintenance_lead_time == 0
    assert service.objectives[0].kind == "availability"
    assert service.objectives[0].down_ratio == 0.5


def test_lead_time_and_dependencies_parse() -> None:
    config = parse_config(
        "maintenance_lead_time: 48h\n"
        "services:\n"
        "  - name: a\n"
        "    depends_on: [b, c]\n"
        "    probes: [{name: p, kind: http, url: 'http://127.0.0.1:1/'}]\n"
        "  - name: b\n"
        "    depends_on: [c]\n"
        "    probes: [{name: p, kind: http, url: 'http://127.0.0.1:1/'}]\n"
        "  - name: c\n"
        "    probes: [{name: p, kind: http, url: 'http://127.0.0.1:1/'}]\n",
        "deps.yaml",
    )
    assert config.maintenance_lead_time == 48 * HOUR_S
    assert config.service("a").depends_on == ["b", "c"]


#: (service keys, top-level keys, the error after "test.yaml:")
REJECTED: list[tuple[str, str, str, str]] = [
    (
        "start-2400",
        "schedule: {hours: [{days: mon, start: 24:00, end: 06:00}]}\n",
        "",
        "5: services[0].schedule.hours[0].start: a start of 24:00 is the next day's 00:00",
    ),
    (
        "minute-60",
        "schedule: {hours: [{days: mon, start: 06:00, end: 12:60}]}\n",
        "",
        "5: services[0].schedule.hours[0].end: not a time of day: "
        "use HH:MM from 00:00 to 24:00 (got '12:60')",
    ),
    (
        "time-as-number",
        "schedule: {hours: [{days: mon, start: 6, end: 22:00}]}\n",
        "",
        "5: services[0].schedule.hours[0].start: not a time of day: "
        "use HH:MM from 00:00 to 24:00 (got 6)",
    ),
    (
        "no-days",
        "schedule: {hours: [{days: [], start: 06:00, end: 22:00}]}\n",
        "",
        "5: services[0].schedule.hours[0].days: name at least one day "
        "(use mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri)",
    ),
    (
        "unknown-day-in-range",
        "schedule: {hours: [{days: mon-fry, start: 06:00, end: 22:00}]}\n",
        "",
        "5: services[0].schedule.hours[0].days: unknown weekday 'fry' "
        "(use mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri) (got 'mon-fry')",
    ),
    (
        "no-rules",
        "schedule: {hours: []}\n",
        "",
        "5: services[0].schedule.hours: List should have at least 1 item after validation, not 0",
    ),
    (
        "subdivision-without-country",
        "schedule: {holidays: {subdivision: BY}}\n",
        "",
        "5: services[0].schedule.holidays.subdivision: a subdivision needs a country",
    ),
    (
        "blank-reason",
        "maintenance: [{start: 2026-05-02T22:00:00, end: 2026-05-02T23:00:00, reason: ' '}]\n",
        "",
        "5: services[0].maintenance[0].reason: give the reason users are told (got ' ')",
    ),
    (
        "naive-and-aware",
        "maintenance: [{start: 2026-05-02T22:00:00, end: 2026-05-02T23:00:00Z, reason: x}]\n",
        "",
        "5: services[0].maintenance[0].end: "
        "give start and end both with a UTC offset or both without one",
    ),
    (
        "down-ratio-1",
        "objectives: [{name: a, kind: availability, target: 99, down_ratio: 1}]\n",
        "",
        "5: services[0].objectives[0].down_ratio: Input should be less than 1 (got 1)",
    ),
    (
        "negative-lead-time",
        "",
        "maintenance_lead_time: -5\n",
        "1: maintenance_lead_time: Input should be greater than or equal to 0 (got -5)",
    ),
]


@pytest.mark.parametrize(
    ("service_yaml", "top_yaml", "error"),
    [case[1:] for case in REJECTED],
    ids=[case[0] for case in REJECTED],
)
def test_new_keys_reject(service_yaml: str, top_yaml: str, error: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        make_config(service_yaml, top_yaml)
    assert str(excinfo.value) == f"test.yaml:{error}"
