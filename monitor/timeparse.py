"""Times and durations typed by operators, and times shown to them, in the config's zone.

A time without an offset is local to the configured zone. Local times that do not exist
(clocks go forward) or happen twice (clocks go back) are refused rather than guessed:
planned maintenance is often scheduled at night, exactly where DST changes happen.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from probes.base import parse_duration

#: The instants anyone may write (maintenance, incidents, announcements): UTC epoch
#: seconds from 1970 to 2200. Wider than any contract, narrow enough that every zone can
#: show them (year 1 or 9999 shifted by an offset cannot be).
EARLIEST = 0.0
LATEST = datetime(2200, 1, 1, tzinfo=UTC).timestamp()
RANGE_TEXT = "1970-01-01 and 2200-01-01 UTC"


def in_range(epoch: float) -> bool:
    """True when ``epoch`` lies in the range anyone may write."""
    return math.isfinite(epoch) and EARLIEST <= epoch < LATEST


def parse_instant(text: str, zone: ZoneInfo, now: float) -> float:
    """UTC epoch seconds of ``now`` or an ISO 8601 time (naive = local to ``zone``).

    Raises ValueError with a message fit for the user.
    """
    cleaned = text.strip()
    if cleaned.lower() == "now":
        return now
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO 8601 such as 2026-12-01T02:00 (local to {zone.key}),"
            " 2026-12-01T02:00+01:00, 2026-12-01T01:00Z, or now"
        ) from None
    try:
        if moment.tzinfo is not None:
            epoch = moment.timestamp()
        else:
            epoch = _local_to_epoch(moment, zone, text)
    except (OverflowError, OSError):
        epoch = -1.0  # one side of year 1 or 9999 in the zone
    if not in_range(epoch):
        raise ValueError(f"{text!r} is out of range: times must lie between {RANGE_TEXT}")
    return epoch


def _local_to_epoch(naive: datetime, zone: ZoneInfo, text: str) -> float:
    """Epoch seconds of a wall-clock time in ``zone``, refusing gaps and folds."""
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.timestamp()
    # fold only matters at a DST change: either the wall time never happened (a gap, and
    # converting it round trip lands elsewhere) or it happened twice.
    back = datetime.fromtimestamp(first.timestamp(), zone).replace(tzinfo=None)
    if back != naive:
        raise ValueError(
            f"{text!r} does not exist in {zone.key}: the clocks skip it (daylight saving)"
        )
    offsets = " or ".join(_offset(d) for d in (first, second))
    raise ValueError(
        f"{text!r} happens twice in {zone.key} (daylight saving ends); add the offset you"
        f" mean: {offsets}"
    )


def _offset(moment: datetime) -> str:
    """``+02:00`` style offset of an aware datetime."""
    return moment.isoformat()[-6:]


def parse_duration_s(text: str) -> float:
    """Seconds in a positive duration such as ``90m``, ``2h``, ``30s`` or ``45`` (seconds).

    Raises ValueError with a message fit for the user.
    """
    try:
        seconds = float(parse_duration(text))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a duration (use a number with s, m or h, e.g. 90m or 2h)"
        ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


def local_datetime(epoch: float, zone: ZoneInfo) -> datetime:
    """The aware local datetime of an epoch time."""
    return datetime.fromtimestamp(epoch, UTC).astimezone(zone)


def format_local(epoch: float, zone: ZoneInfo) -> str:
    """``2026-12-01 02:00 CET``: minutes, or seconds when the time has some (a stored time
    no zone can show, written before inputs were bounded, reads ``invalid time``)."""
    try:
        moment = local_datetime(epoch, zone)
    except (ValueError, OverflowError, OSError):
        return f"invalid time ({epoch!r})"
    clock = "%H:%M:%S" if moment.second or moment.microsecond else "%H:%M"
    return moment.strftime(f"%Y-%m-%d {clock} %Z")


def iso_local(epoch: float, zone: ZoneInfo) -> str:
    """ISO 8601 with the zone's offset, to the second: ``2026-12-01T02:00:00+01:00``."""
    return local_datetime(epoch, zone).isoformat(timespec="seconds")


def iso_utc(epoch: float | None) -> str | None:
    """UTC epoch seconds as RFC 3339 (``Z``), or None (also for an infinite time, or one
    beyond what a datetime holds: a bad stored row never makes a page unrenderable)."""
    if epoch is None or not math.isfinite(epoch):
        return None
    try:
        text = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError):
        return None
    return text.replace("+00:00", "Z")
