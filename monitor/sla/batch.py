"""The batch objective: the share of the volume handed in on a day that was processed
within the deadline ("99 % of the data handed in daily is processed within 4 days").

A batch belongs to the day (config time zone) it was submitted on. Its records count as
processed in time when a ``processed`` event at or before ``submitted + deadline`` says
so (several partial events add up, never beyond the batch's volume). A day is **pending**
until its deadline has passed (the end of the day + the deadline), or until it is over
and every batch of it is wholly processed; then it is **final** and never changes. A
month counts the days submitted in it: its figure is over the final days, the pending
ones are shown beside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from monitor.results import BatchRecord

Measure = Literal["records", "batches"]


@dataclass(slots=True)
class Batch:
    """What is known of one batch: when and how much was handed in, what was processed."""

    service: str
    batch: str
    submitted_at: float | None = None
    volume: int = 0
    #: (processed at, records) of each processed event.
    processed: list[tuple[float, int]] = field(default_factory=list)

    def add(self, event: BatchRecord) -> None:
        """Take one event of this batch (in any order)."""
        if event.event == "submitted":
            self.volume += event.records
            if self.submitted_at is None or event.at < self.submitted_at:
                self.submitted_at = event.at
        else:
            self.processed.append((event.at, event.records))

    def processed_by(self, moment: float) -> int:
        """Records processed at or before ``moment`` (at most the volume)."""
        return min(self.volume, sum(r for at, r in self.processed if at <= moment))

    def complete_at(self, moment: float) -> bool:
        """Every record processed by ``moment`` (in time or not)."""
        return self.volume > 0 and self.processed_by(moment) >= self.volume


@dataclass(frozen=True, slots=True)
class BatchDay:
    """One submission day of one objective."""

    date: dt.date
    #: Records (or batches) submitted that day, and processed within the deadline.
    submitted: int
    in_time: int
    #: Pending until the deadline has passed or all of the day's volume is processed.
    final: bool
    #: Records (or batches) not yet processed (still possible in time while pending).
    unprocessed: int

    @property
    def compliance(self) -> float | None:
        """In time / submitted, or None for a day with nothing submitted."""
        return self.in_time / self.submitted if self.submitted else None


def batch_days(
    batches: Iterable[Batch], deadline_s: float, measure: Measure, zone: ZoneInfo, now: float
) -> list[BatchDay]:
    """Every submission day of ``batches``, oldest first."""
    days: dict[dt.date, list[Batch]] = {}
    for batch in batches:
        if batch.submitted_at is None:  # processed events of a batch not yet submitted
            continue
        day = dt.datetime.fromtimestamp(batch.submitted_at, zone).date()
        days.setdefault(day, []).append(batch)
    out = []
    for day, members in sorted(days.items()):
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).timestamp()
        submitted = in_time = unprocessed = 0
        for batch in members:
            assert batch.submitted_at is not None
            deadline = batch.submitted_at + deadline_s
            done = batch.processed_by(min(deadline, now))
            left = batch.volume - batch.processed_by(now)
            if measure == "records":
                submitted += batch.volume
                in_time += done
                unprocessed += left
            else:
                submitted += 1
                in_time += 1 if done >= batch.volume else 0
                unprocessed += 1 if left > 0 else 0
        # Final once nothing can change it: its deadline has passed, or the day is over
        # (no more batches of it can come) and all of it is processed.
        final = now >= end + deadline_s or (now >= end and all(b.complete_at(now) for b in members))
        out.append(BatchDay(day, submitted, in_time, final, unprocessed))
    return out


def at_risk(
    batches: Iterable[Batch], deadline_s: float, margin_s: float, measure: Measure, now: float
) -> int:
    """Records (or batches) not yet processed whose deadline is less than ``margin_s``
    away: what can still be saved."""
    total = 0
    for batch in batches:
        if batch.submitted_at is None:
            continue
        due = batch.submitted_at + deadline_s
        left = batch.volume - batch.processed_by(now)
        if due - margin_s <= now < due and left > 0:
            total += left if measure == "records" else 1
    return total


def span_text(seconds: float) -> str:
    """A deadline in words: ``4 days``, ``6 h``, ``30 min``."""
    if seconds >= 86_400 and seconds % 86_400 == 0:
        days = seconds / 86_400
        return f"{days:g} day" if days == 1 else f"{days:g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"


class BatchBook:
    """The batches of every service, kept in memory (a few per institution and day) and
    fed by the batch events as they are stored."""

    def __init__(self) -> None:
        self._batches: dict[tuple[str, str], Batch] = {}

    def add(self, events: Iterable[BatchRecord]) -> None:
        """Take stored events."""
        for event in events:
            key = (event.service, event.batch)
            batch = self._batches.get(key)
            if batch is None:
                batch = self._batches[key] = Batch(event.service, event.batch)
            batch.add(event)

    def known(self, service: str, batch: str) -> bool:
        """Whether the batch's submission is known."""
        found = self._batches.get((service, batch))
        return found is not None and found.submitted_at is not None

    def of(self, service: str) -> list[Batch]:
        """The batches of one service."""
        return [b for (s, _), b in self._batches.items() if s == service]
