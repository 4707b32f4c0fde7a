"""Day summaries: the 24 hour summaries of a UTC day joined into one row per service.

A restart rebuilds 30 days and two calendar months of windows; from hour summaries that is
~1,500 rows per probe, from day summaries ~60 plus the hours of the few days a window
boundary cuts. A day is compacted only once all its hours are, and only when it ended
long enough ago (``SETTLE_MINUTES``) that no late result can change one of its hours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from monitor.results import DaySummary, HourSummary
from monitor.sla.counts import Rollup
from monitor.sla.minutes import MinuteCode
from monitor.store import MinuteHistory, Store

MINUTES_PER_DAY = 1440
#: Late results change the summaries of the last two hours at most (the ledger keeps
#: those); a day is compacted once it ended this long ago.
SETTLE_MINUTES = 180
_UNMONITORED_HOUR = str(int(MinuteCode.UNMONITORED)) * 60


def day_summaries(day: int, hours: Sequence[HourSummary]) -> list[DaySummary]:
    """The summary of ``day`` for every service whose 24 hours are all in ``hours``."""
    by_service: dict[str, dict[int, HourSummary]] = {}
    for summary in hours:
        if summary.hour // 24 == day:
            by_service.setdefault(summary.service, {})[summary.hour] = summary
    days = []
    for service, found in sorted(by_service.items()):
        if len(found) != 24:
            continue
        ordered = [found[day * 24 + i] for i in range(24)]
        objectives = sorted({name for h in ordered for name in h.states})
        # An hour without an objective's codes reads as unmonitored, as the ledger does.
        states = {
            name: "".join(h.states.get(name) or _UNMONITORED_HOUR for h in ordered)
            for name in objectives
        }
        sums: dict[str, Rollup] = {}
        for h in ordered:
            for probe, body in h.rollups.items():
                sums.setdefault(probe, Rollup()).merge(Rollup.from_dict(body))
        days.append(
            DaySummary(
                service=service,
                day=day,
                exclusions="".join(h.exclusions for h in ordered),
                states=states,
                rollups={probe: rollup.to_dict() for probe, rollup in sorted(sums.items())},
            )
        )
    return days


async def compact_days(store: Store, since_minute: int, now_minute: int) -> int:
    """Write the summary of every settled day since ``since_minute`` that lacks one;
    the number of day rows written."""
    written = 0
    end_day = (now_minute - SETTLE_MINUTES) // MINUTES_PER_DAY  # days ended and settled
    for day in await store.days_to_compact(since_minute // MINUTES_PER_DAY, end_day):
        hours = await store.hours(day * 24, day * 24 + 24)
        # Off the event loop: a day of 100 services is ~0.1 s of merging.
        summaries = await asyncio.to_thread(day_summaries, day, hours)
        await store.write_days(summaries)
        written += len(summaries)
    return written


async def recompact_days(store: MinuteHistory, days: Iterable[int]) -> int:
    """Rewrite the summaries of ``days`` that have one, from their (rewritten) hours: a
    minute re-decided after its day was compacted must not stay counted the old way."""
    written = 0
    for day in sorted(days):
        if not await store.days(day, day + 1):
            continue  # not compacted yet: the housekeeping will, from the new hours
        summaries = day_summaries(day, await store.hours(day * 24, day * 24 + 24))
        await store.write_days(summaries)
        written += len(summaries)
    return written
