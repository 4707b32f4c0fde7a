"""SLA counting, pure and without I/O: minute rollups, exact threshold compliance,
percentile estimates from log-spaced buckets, error budgets.

Every figure anyone shows is a ratio of counts made here (through ``monitor.sla.figures``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TypeVar

K = TypeVar("K", str, int)

#: Relative accuracy of percentile estimates (DESIGN decision 1: <= 1 %).
RELATIVE_ACCURACY = 0.01
#: Ratio between consecutive bucket bounds: bucket i holds (GAMMA**(i-1), GAMMA**i].
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
#: Latencies below this (1 µs) share the lowest bucket; nothing real is that fast.
MIN_LATENCY_S = 1e-6
_MIN_INDEX = math.ceil(math.log(MIN_LATENCY_S) / _LOG_GAMMA)


def bucket_index(latency_s: float) -> int:
    """The log bucket holding ``latency_s``: the smallest i with latency <= GAMMA**i."""
    if latency_s <= MIN_LATENCY_S:
        return _MIN_INDEX
    index = math.ceil(math.log(latency_s) / _LOG_GAMMA)
    # Guard the float edges: log() may land a hair above an exact bound, or exactly on a
    # bound for a latency a hair above it.
    if GAMMA ** (index - 1) >= latency_s:
        index -= 1
    elif GAMMA**index < latency_s:
        index += 1
    return index


def bucket_value(index: int) -> float:
    """The value that represents bucket ``index``: within RELATIVE_ACCURACY of any
    latency in (GAMMA**(index-1), GAMMA**index]."""
    return 2 * GAMMA**index / (GAMMA + 1)


def quantile_rank(q: float, count: int) -> int:
    """The 1-based nearest rank of quantile ``q`` among ``count`` values: the smallest
    value such that at least a share ``q`` of the values are at or below it."""
    if not 0 < q <= 1:
        raise ValueError(f"quantile {q} is not in (0, 1]")
    return max(1, math.ceil(q * count - 1e-9))


def exact_quantile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank quantile of ``values`` (what ``estimate_quantile`` estimates)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[quantile_rank(q, len(ordered)) - 1]


def estimate_quantile(buckets: Mapping[int, int], q: float) -> float | None:
    """Estimate the nearest-rank quantile from log-bucket counts (relative error <= 1 %)."""
    total = sum(buckets.values())
    if total == 0:
        return None
    rank = quantile_rank(q, total)
    seen = 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= rank:
            return bucket_value(index)
    raise AssertionError("unreachable: ranks never exceed the total")


def threshold_key(threshold_s: float) -> str:
    """The stable text form of a threshold, used as a key in stored rollups."""
    return repr(float(threshold_s))


@dataclass(frozen=True, slots=True)
class Counted:
    """One result's contribution to a rollup, worked out once (its log bucket and the
    thresholds it met) and added to as many rollups as count it (the ledger's minute, the
    store's batch)."""

    ok: bool
    outcome: str
    latency_us: int
    bucket: int
    good: tuple[str, ...]

    def __reduce__(self) -> tuple[type[Counted], tuple[object, ...]]:
        # Pickled as its fields (ingest workers send one per event): faster to load.
        return (Counted, (self.ok, self.outcome, self.latency_us, self.bucket, self.good))


def count_result(ok: bool, outcome: str, latency_s: float, thresholds: Iterable[float]) -> Counted:
    """What one result adds to a rollup counted against ``thresholds``."""
    if not ok:
        return Counted(False, outcome, 0, 0, ())
    return Counted(
        True,
        outcome,
        round(latency_s * 1_000_000),
        bucket_index(latency_s),
        tuple(threshold_key(t) for t in thresholds if latency_s <= t),
    )


@dataclass(slots=True)
class Rollup:
    """Counts of one probe (or a sum of probes) over one minute (or a window of minutes).

    ``good`` counts successful exchanges at or below each threshold (the contract's
    "within 1 s"); ``buckets`` holds the log-bucket counts of successful exchanges.
    Failures are counted in ``attempts`` but never in ``good``: they are bad events.
    """

    attempts: int = 0
    ok: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    good: dict[str, int] = field(default_factory=dict)
    buckets: dict[int, int] = field(default_factory=dict)
    #: Sum of successful latencies in whole microseconds: an integer, so subtracting a
    #: minute from a window restores the sum exactly (floats would drift).
    latency_sum_us: int = 0

    def add(self, ok: bool, outcome: str, latency_s: float, thresholds: Iterable[float]) -> None:
        """Count one result against the given thresholds."""
        self.add_counted(count_result(ok, outcome, latency_s, thresholds))

    def add_counted(self, counted: Counted) -> None:
        """Count one result worked out by ``count_result``."""
        self.attempts += 1
        if not counted.ok:
            self.failures[counted.outcome] = self.failures.get(counted.outcome, 0) + 1
            return
        self.ok += 1
        self.latency_sum_us += counted.latency_us
        index = counted.bucket
        self.buckets[index] = self.buckets.get(index, 0) + 1
        for key in counted.good:
            self.good[key] = self.good.get(key, 0) + 1  # sparse: no zero entries

    def merge(self, other: Rollup, sign: int = 1) -> None:
        """Add (``sign=1``) or remove (``sign=-1``) another rollup's counts, in place."""
        self.attempts += sign * other.attempts
        self.ok += sign * other.ok
        self.latency_sum_us += sign * other.latency_sum_us
        add_counts(self.failures, other.failures, sign)
        add_counts(self.good, other.good, sign)
        add_counts(self.buckets, other.buckets, sign)

    def copy(self) -> Rollup:
        """An independent copy."""
        return Rollup(
            self.attempts,
            self.ok,
            dict(self.failures),
            dict(self.good),
            dict(self.buckets),
            self.latency_sum_us,
        )

    @property
    def latency_sum_s(self) -> float:
        """Sum of successful latencies, in seconds (microsecond resolution)."""
        return self.latency_sum_us / 1_000_000

    def good_within(self, threshold_s: float) -> int:
        """Successful exchanges at or below ``threshold_s`` (must be a counted threshold)."""
        return self.good.get(threshold_key(threshold_s), 0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (bucket indexes become strings)."""
        return {
            "attempts": self.attempts,
            "ok": self.ok,
            "failures": self.failures,
            "good": self.good,
            "buckets": {str(k): v for k, v in self.buckets.items()},
            "latency_sum_us": self.latency_sum_us,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rollup:
        """The inverse of ``to_dict`` (counts as JSON decodes them: ints)."""
        buckets = data.get("buckets", {})
        # zip/map rather than a comprehension: a restart decodes ~100 k of these.
        return cls(
            attempts=int(data["attempts"]),
            ok=int(data["ok"]),
            failures=dict(data.get("failures", {})),
            good=dict(data.get("good", {})),
            buckets=dict(zip(map(int, buckets), buckets.values(), strict=True)),
            latency_sum_us=int(data.get("latency_sum_us", 0)),
        )


def add_counts(target: dict[K, int], source: Mapping[K, int], sign: int) -> None:
    """Add (``sign=1``) or remove (``sign=-1``) counts per key, in place; a count that
    reaches zero is dropped."""
    for key, count in source.items():
        value = target.get(key, 0) + sign * count
        if value:
            target[key] = value
        else:
            target.pop(key, None)  # keep rollups sparse: zero counts are not stored


def compliance(rollup: Rollup, threshold_s: float) -> float | None:
    """Share of attempts that succeeded within the threshold; None with no attempts."""
    if rollup.attempts == 0:
        return None
    return rollup.good_within(threshold_s) / rollup.attempts


@dataclass(frozen=True, slots=True)
class Budget:
    """The error budget of an objective over a window.

    Attributes:
        valid: events (or eligible minutes) counted.
        bad: events (or minutes) that missed the objective.
        allowed: bad events the target allows over ``valid`` events.
        remaining_ratio: 1 - bad/allowed (negative once the budget is overspent).
        burn_rate: observed bad ratio over the allowed bad ratio (1 = on budget).
    """

    valid: int
    bad: int
    allowed: float
    remaining_ratio: float | None
    burn_rate: float | None


def error_budget(valid: int, good: int, target_ratio: float) -> Budget:
    """The budget of ``valid`` events of which ``good`` met the objective."""
    if not 0 < target_ratio < 1:
        raise ValueError(f"target ratio {target_ratio} is not in (0, 1)")
    bad = valid - good
    if valid == 0:
        return Budget(0, 0, 0.0, None, None)
    # The allowed bad ratio p / q exactly; each figure is then one ratio of integers,
    # which Python's int division rounds correctly: the same floats as with Fractions
    # (and ~6x faster: every window of every objective at every scrape).
    p, q = _allowed_ratio(target_ratio)
    remaining = (valid * p - bad * q) / (valid * p)
    burn = (bad * q) / (valid * p)
    return Budget(valid, bad, (valid * p) / q, remaining, burn)


@functools.lru_cache(maxsize=256)
def _allowed_ratio(target_ratio: float) -> tuple[int, int]:
    """1 - target as the fraction it was written as (numerator, denominator).

    As the target was written (99.5 %, 99.9 %): in binary floating point 1 - 0.995 is
    0.0050000000000000044, which would show as noise in every budget. Targets have at most
    six decimals as a ratio, so the nearest fraction of denominator <= 10**6 is it."""
    allowed = 1 - Fraction(target_ratio).limit_denominator(1_000_000)
    return allowed.numerator, allowed.denominator


def availability(up_minutes: int, down_minutes: int) -> float | None:
    """up / (up + down); excluded and unmonitored minutes are in neither."""
    total = up_minutes + down_minutes
    return up_minutes / total if total else None
