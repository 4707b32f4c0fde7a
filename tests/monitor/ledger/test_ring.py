"""Kept window counts (monitor/ledger/ring.py) always equal counting the minutes anew:
windows that slide, jump and shrink, between writes of single minutes and of whole
spans, inside and outside the window, checked against a plain count of a plain list."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.ledger.ring import RING, MinuteRing

START = 29_000_000  # an epoch minute (2025)

#: One step: write a minute, write a day's span, or count a window ending at ``end``.
_minute = st.integers(START - 3000, START + 3000)
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _minute, st.integers(0, 6)),
        st.tuples(st.just("span"), st.integers(-2, 2), st.integers(0, 6)),
        st.tuples(
            st.just("count"),
            st.sampled_from(["5m", "1h", "day", "month"]),
            st.integers(START - 2000, START + 3000),
        ),
    ),
    max_size=80,
)
_LENGTH = {"5m": 5, "1h": 60, "day": 1440}


def _truth(written: dict[int, int], first: int, last: int) -> dict[int, int]:
    """The counts from the minutes as written, one by one (never-written minutes: 0)."""
    counts = Counter(written.get(m, 0) for m in range(first, last + 1))
    return {code: n for code, n in counts.items() if n}


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_kept_counts_equal_counting_anew(steps: list[tuple[str, int, int]]) -> None:
    ring = MinuteRing()
    written: dict[int, int] = {}
    for kind, a, b in steps:
        if kind == "set":
            ring[a] = b
            written[a] = b
        elif kind == "span":
            day = (START // 1440 + a) * 1440
            ring.put_span(day, str(b) * 1440)
            written.update(dict.fromkeys(range(day, day + 1440), b))
        else:
            window, end = str(a), int(b)
            first = START - 2500 if window == "month" else end - _LENGTH[window] + 1
            assert ring.window_count(window, first, end) == _truth(written, first, end)


def test_a_rewrite_inside_a_kept_window_is_counted() -> None:
    ring = MinuteRing()
    for minute in range(START, START + 60):
        ring[minute] = 1
    assert ring.window_count("1h", START, START + 59) == {1: 60}
    ring[START + 10] = 2  # a late result re-decides a sealed minute
    ring[START + 60] = 1  # and the next minute is sealed
    assert ring.window_count("1h", START + 1, START + 60) == {1: 59, 2: 1}


def test_a_window_older_than_the_remembered_rewrites_is_counted_anew() -> None:
    ring = MinuteRing()
    assert ring.window_count("1h", START, START + 59) == {0: 60}  # never written
    for n in range(300):  # more writes than are remembered, one inside the window
        ring[START + 30 if n == 0 else START + 100 + n] = 3
    assert ring.window_count("1h", START + 1, START + 60) == {0: 59, 3: 1}
    assert len(ring.codes) == RING
