"""One byte per minute for the last ``RING`` minutes: the sealed minutes' codes of one
service (its exclusion) or one availability objective (its state), and their counts over
the windows, kept from one figure computation to the next.

Every scrape, alert evaluation and API call counts the codes of every window (a month is
~44,000 minutes): counting them anew each time was most of ``all_figures``
(bench/RESULTS.md). A window slides forward a minute at a time, so its counts are kept and
updated by the minutes that entered and left it; a rewrite of a minute inside it (a late
result, a maintenance window registered after the fact, a correction) makes the next call
count it anew.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from monitor.sla.counts import add_counts
from monitor.sla.minutes import MinuteCode

_DAY = 1440  # minutes in a UTC day
#: Minutes of decisions kept in memory: the previous month is at most 62 days back.
RING = 64 * _DAY
#: Digits of a compacted hour ("0".."6") to minute codes, in C.
_DIGITS = bytes.maketrans(b"0123456", bytes(range(7)))
#: Rewrites remembered to tell whether a kept count still holds (more: count anew).
_REWRITES_KEPT = 256


class MinuteRing:
    """Minute codes indexed by epoch minute, and the kept counts of named windows."""

    def __init__(self) -> None:
        self.codes = bytearray(RING)
        #: Bumped by every write.
        self._version = 0
        #: (version, first minute, last minute) of the latest writes.
        self._writes: deque[tuple[int, int, int]] = deque(maxlen=_REWRITES_KEPT)
        #: Per window name: (first, last, version, counts) as last counted.
        self._kept: dict[str, tuple[int, int, int, dict[int, int]]] = {}

    def __getitem__(self, minute: int) -> int:
        return self.codes[minute % RING]

    def __setitem__(self, minute: int, code: int) -> None:
        self.codes[minute % RING] = code
        self._wrote(minute, minute)

    def put_span(self, first_minute: int, digits: str) -> None:
        """Set the minutes from ``first_minute`` from digit text: an hour or a UTC day, so
        the span never straddles the ring's end (its length is a multiple of 1,440)."""
        at = first_minute % RING
        self.codes[at : at + len(digits)] = digits.encode().translate(_DIGITS)
        self._wrote(first_minute, first_minute + len(digits) - 1)

    def _wrote(self, first: int, last: int) -> None:
        self._version += 1
        self._writes.append((self._version, first, last))

    def count(self, first: int, last: int, codes: Iterable[int] = MinuteCode) -> dict[int, int]:
        """Counts of each code (of ``codes``) over minutes [first, last] (at most ``RING``
        minutes); codes that do not occur are left out."""
        if last < first:
            return {}
        a, b = first % RING, last % RING
        if last - first + 1 >= RING:
            chunks = [self.codes]
        elif a <= b:
            chunks = [self.codes[a : b + 1]]
        else:
            chunks = [self.codes[a:], self.codes[: b + 1]]
        counts: dict[int, int] = {}
        for code in codes:
            total = sum(chunk.count(code) for chunk in chunks)
            if total:
                counts[code] = total
        return counts

    def window_count(self, window: str, first: int, last: int) -> dict[int, int]:
        """``count(first, last)`` of a window that slides forward (``window`` names it):
        the kept counts of its last call, updated by the minutes that entered and left
        it, unless a minute it held was rewritten since (then counted anew)."""
        kept = self._kept.get(window)
        if kept is not None:
            old_first, old_last, version, counts = kept
            if (old_first, old_last, version) == (first, last, self._version):
                return dict(counts)
            if self._slid(old_first, old_last, version, first, last):
                counts = dict(counts)
                add_counts(counts, self.count(max(old_last + 1, first), last), 1)
                add_counts(counts, self.count(old_first, min(first - 1, old_last)), -1)
                self._kept[window] = (first, last, self._version, counts)
                return dict(counts)
        counts = self.count(first, last)
        self._kept[window] = (first, last, self._version, counts)
        return dict(counts)

    def _slid(self, old_first: int, old_last: int, version: int, first: int, last: int) -> bool:
        """True when [first, last] is [old_first, old_last] moved forward, cheaper to
        update than to count, and no minute of the old range was written since."""
        if first < old_first or last < old_last or first > old_last:
            return False
        if last - old_first >= RING:  # the ring reused slots the update would read
            return False
        if (first - old_first) + (last - old_last) > last - first:  # counting is cheaper
            return False
        if self._writes and version < self._writes[0][0] - 1:
            return False  # writes since are no longer all remembered
        for v, lo, hi in reversed(self._writes):  # newest first: usually one or two
            if v <= version:
                break
            if lo <= old_last and hi >= old_first:
                return False
        return True
