"""The batch objective's arithmetic (monitor/sla/batch.py), against figures worked out by
hand for a small scenario: partial processing, a batch processed late, one never
processed, a processed event before its submission, days pending then final."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from monitor.results import BatchRecord
from monitor.sla.batch import BatchBook, at_risk, batch_days

ZONE = ZoneInfo("Europe/Brussels")
DAY = 86400.0
DEADLINE = 4 * DAY


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


def events() -> list[BatchRecord]:
    def ev(n: int, batch: str, kind: str, when: str, records: int) -> BatchRecord:
        return BatchRecord("files", f"e{n}", batch, kind, at(when), records)

    return [
        # 2 Nov: A (1,000 records) processed 600 after 1 day and 400 after 3 days: in time;
        # B (500) processed after 5 days: late.
        ev(1, "A", "submitted", "2026-11-02T09:00", 1000),
        ev(2, "A", "processed", "2026-11-03T09:00", 600),
        ev(3, "A", "processed", "2026-11-05T09:00", 400),
        ev(4, "B", "submitted", "2026-11-02T23:30", 500),
        ev(5, "B", "processed", "2026-11-07T23:31", 500),
        # 3 Nov: C (200) processed in time, its processed event sent before its submission;
        # D (300) never processed.
        ev(7, "C", "processed", "2026-11-04T10:00", 200),
        ev(6, "C", "submitted", "2026-11-03T10:00", 200),
        ev(8, "D", "submitted", "2026-11-03T12:00", 300),
        # 9 Nov: E (100) half processed so far.
        ev(9, "E", "submitted", "2026-11-09T08:00", 100),
        ev(10, "E", "processed", "2026-11-09T20:00", 50),
    ]


def test_days_by_records_as_computed_by_hand() -> None:
    book = BatchBook()
    book.add(events())
    now = at("2026-11-10T12:00")
    days = {
        d.date.isoformat(): d for d in batch_days(book.of("files"), DEADLINE, "records", ZONE, now)
    }
    nov2, nov3, nov9 = days["2026-11-02"], days["2026-11-03"], days["2026-11-09"]
    # 2 Nov: 1,500 handed in, A's 1,000 in time, B late; final (all processed).
    assert (nov2.submitted, nov2.in_time, nov2.final, nov2.unprocessed) == (1500, 1000, True, 0)
    # 3 Nov: 500 handed in, C's 200 in time; its deadline (8 Nov 00:00 + 4 d) has passed.
    assert (nov3.submitted, nov3.in_time, nov3.final, nov3.unprocessed) == (500, 200, True, 300)
    # 9 Nov: pending: 50 of 100 so far, the deadline is 14 Nov.
    assert (nov9.submitted, nov9.in_time, nov9.final, nov9.unprocessed) == (100, 50, False, 50)


def test_days_by_batches_and_a_day_still_pending() -> None:
    book = BatchBook()
    book.add(events())
    now = at("2026-11-06T12:00")  # 3 Nov's deadline (its end + 4 days) not yet passed
    days = {
        d.date.isoformat(): d for d in batch_days(book.of("files"), DEADLINE, "batches", ZONE, now)
    }
    nov2, nov3 = days["2026-11-02"], days["2026-11-03"]
    # 2 Nov: A done in time; B not yet processed and its deadline not past: pending.
    assert (nov2.submitted, nov2.in_time, nov2.final, nov2.unprocessed) == (2, 1, False, 1)
    assert (nov3.submitted, nov3.in_time, nov3.final, nov3.unprocessed) == (2, 1, False, 1)


def test_a_processed_event_of_an_unsubmitted_batch_counts_nowhere_until_it_is() -> None:
    book = BatchBook()
    book.add([BatchRecord("files", "p", "Z", "processed", at("2026-11-02T10:00"), 10)])
    assert not book.known("files", "Z")
    assert batch_days(book.of("files"), DEADLINE, "records", ZONE, at("2026-11-03T00:00")) == []
    book.add([BatchRecord("files", "s", "Z", "submitted", at("2026-11-02T09:00"), 10)])
    assert book.known("files", "Z")
    [day] = batch_days(book.of("files"), DEADLINE, "records", ZONE, at("2026-11-03T00:00"))
    assert (day.submitted, day.in_time, day.final) == (10, 10, True)


def test_at_risk_counts_what_is_unprocessed_within_the_margin_of_its_deadline() -> None:
    book = BatchBook()
    book.add(events())
    # 6 Nov 10:00: B (due 6 Nov 23:30) is within a day of its deadline with 500 left;
    # D (due 7 Nov 12:00) is not yet within a day; A and C are done.
    now = at("2026-11-06T10:00")
    assert at_risk(book.of("files"), DEADLINE, DAY, "records", now) == 500
    assert at_risk(book.of("files"), DEADLINE, DAY, "batches", now) == 1
    # 7 Nov 11:00: D (300 left, due 12:00) is at risk; B's deadline has passed (missed).
    assert at_risk(book.of("files"), DEADLINE, DAY, "records", at("2026-11-07T11:00")) == 300
