"""Properties of the SLA math: log buckets, quantile estimates, rollups, budgets, states.

Every expectation is computed here from first principles (sorting, counting), never by
calling the function under test.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.sla.counts import (
    GAMMA,
    RELATIVE_ACCURACY,
    Rollup,
    availability,
    bucket_index,
    bucket_value,
    compliance,
    error_budget,
    estimate_quantile,
    exact_quantile,
    quantile_rank,
)
from monitor.sla.minutes import MinuteCode, minute_state

#: Relative accuracy with room for the last bits of float rounding.
TOLERANCE = RELATIVE_ACCURACY * (1 + 1e-9)
THRESHOLDS = (0.25, 1.0, 2.0, 4.0)
QUANTILES = (0.5, 0.9, 0.99, 0.995)

latencies = st.floats(min_value=1e-5, max_value=1e3, allow_nan=False, allow_infinity=False)
#: Thresholds included so that "latency exactly equal to a threshold" happens often.
latencies_near_thresholds = st.one_of(latencies, st.sampled_from(THRESHOLDS))
failure_outcomes = st.sampled_from(["timeout", "connect", "status", "body", "error"])
#: (ok, outcome, latency_s) as a probe would report it.
results = st.one_of(
    st.tuples(st.just(True), st.just("ok"), latencies_near_thresholds),
    st.tuples(st.just(False), failure_outcomes, latencies),
)
result_lists = st.lists(results, max_size=60)
#: Bucket indexes whose bounds span 1e-5 .. 1e3 s.
bucket_indexes = st.integers(
    min_value=math.floor(math.log(1e-5, GAMMA)), max_value=math.ceil(math.log(1e3, GAMMA))
)


def rollup_of(items: list[tuple[bool, str, float]]) -> Rollup:
    """A rollup with every result added."""
    rollup = Rollup()
    for ok, outcome, latency_s in items:
        rollup.add(ok, outcome, latency_s, THRESHOLDS)
    return rollup


def nearest_rank(values: list[float], q: float) -> float:
    """The smallest value with at least a share q of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, math.ceil(Fraction(str(q)) * len(ordered)))
    return ordered[rank - 1]


def assert_sparse(rollup: Rollup) -> None:
    for counts in (rollup.failures, rollup.good, rollup.buckets):
        assert 0 not in counts.values(), counts


def assert_same_counts(actual: Rollup, expected: Rollup) -> None:
    """Equal counts exactly, the latency sum (integer microseconds) included."""
    assert actual.attempts == expected.attempts
    assert actual.ok == expected.ok
    assert actual.failures == expected.failures
    assert actual.good == expected.good
    assert actual.buckets == expected.buckets
    assert actual.latency_sum_us == expected.latency_sum_us


# --- log buckets ----------------------------------------------------------------------------


@given(latencies)
def test_bucket_holds_latency_and_represents_it_within_accuracy(latency_s: float) -> None:
    index = bucket_index(latency_s)
    assert GAMMA ** (index - 1) < latency_s <= GAMMA**index
    assert abs(bucket_value(index) - latency_s) / latency_s <= TOLERANCE


@given(bucket_indexes)
def test_latency_exactly_on_a_bound_is_in_the_lower_bucket(index: int) -> None:
    bound = GAMMA**index
    assert bucket_index(bound) == index
    assert bucket_index(math.nextafter(bound, 0.0)) == index
    assert bucket_index(math.nextafter(bound, math.inf)) == index + 1


@given(bucket_indexes)
def test_bucket_value_is_within_accuracy_of_both_bounds(index: int) -> None:
    value = bucket_value(index)
    upper = GAMMA**index
    lower = math.nextafter(GAMMA ** (index - 1), math.inf)
    assert lower < value <= upper
    assert abs(value - upper) / upper <= TOLERANCE
    assert abs(value - lower) / lower <= TOLERANCE


# --- quantiles ------------------------------------------------------------------------------


@pytest.mark.parametrize("q", QUANTILES)
@given(values=st.lists(latencies, min_size=1, max_size=400))
def test_estimated_quantile_is_within_relative_accuracy(values: list[float], q: float) -> None:
    rollup = Rollup()
    for value in values:
        rollup.add(True, "ok", value, ())
    exact = exact_quantile(values, q)
    assert exact == nearest_rank(values, q)
    estimate = estimate_quantile(rollup.buckets, q)
    assert estimate is not None
    assert abs(estimate - exact) / exact <= TOLERANCE


@given(count=st.integers(min_value=1, max_value=10_000), q=st.sampled_from(QUANTILES))
def test_quantile_rank_is_the_nearest_rank(count: int, q: float) -> None:
    rank = quantile_rank(q, count)
    share = Fraction(str(q))
    assert Fraction(rank, count) >= share
    assert rank == 1 or Fraction(rank - 1, count) < share


def test_quantiles_of_nothing_are_none() -> None:
    assert exact_quantile([], 0.99) is None
    assert estimate_quantile({}, 0.99) is None


@pytest.mark.parametrize("q", [0.0, -0.5, 1.01])
def test_quantile_outside_zero_one_is_rejected(q: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        quantile_rank(q, 10)


# --- rollups --------------------------------------------------------------------------------


@given(result_lists)
def test_rollup_counts_match_an_independent_count(items: list[tuple[bool, str, float]]) -> None:
    rollup = rollup_of(items)
    successes = [latency for ok, _, latency in items if ok]
    assert rollup.attempts == len(items)
    assert rollup.ok == len(successes)
    assert rollup.failures == dict(Counter(outcome for ok, outcome, _ in items if not ok))
    assert sum(rollup.buckets.values()) == len(successes)
    assert rollup.latency_sum_us == sum(round(latency * 1_000_000) for latency in successes)
    assert_sparse(rollup)


@given(result_lists, result_lists)
def test_merge_then_unmerge_restores_the_original(
    first: list[tuple[bool, str, float]], second: list[tuple[bool, str, float]]
) -> None:
    rollup = rollup_of(first)
    original = rollup.copy()
    other = rollup_of(second)
    rollup.merge(other)
    assert_sparse(rollup)
    rollup.merge(other, sign=-1)
    assert_sparse(rollup)
    # Counts come back exactly; the float latency sum only up to rounding (x + y - y).
    assert_same_counts(rollup, original)
    assert rollup_of(second) == other  # the merged-in rollup is untouched


@given(result_lists)
def test_unmerging_everything_leaves_an_empty_sparse_rollup(
    items: list[tuple[bool, str, float]],
) -> None:
    rollup = rollup_of(items)
    rollup.merge(rollup.copy(), sign=-1)
    assert_same_counts(rollup, Rollup())


@given(result_lists, result_lists)
def test_merging_two_rollups_equals_adding_all_results_to_one(
    first: list[tuple[bool, str, float]], second: list[tuple[bool, str, float]]
) -> None:
    merged = rollup_of(first)
    merged.merge(rollup_of(second))
    assert_same_counts(merged, rollup_of(first + second))


@given(result_lists, st.sampled_from(THRESHOLDS))
def test_compliance_counts_ok_results_at_or_below_the_threshold(
    items: list[tuple[bool, str, float]], threshold_s: float
) -> None:
    rollup = rollup_of(items)
    good = sum(1 for ok, _, latency in items if ok and latency <= threshold_s)
    assert rollup.good_within(threshold_s) == good
    if items:
        assert compliance(rollup, threshold_s) == good / len(items)
    else:
        assert compliance(rollup, threshold_s) is None


def test_latency_exactly_on_the_threshold_is_within() -> None:
    rollup = Rollup()
    rollup.add(True, "ok", 1.0, [1.0])
    rollup.add(True, "ok", math.nextafter(1.0, math.inf), [1.0])
    assert rollup.good_within(1.0) == 1
    assert compliance(rollup, 1.0) == 0.5


@given(st.lists(st.tuples(failure_outcomes, latencies), min_size=1, max_size=30))
def test_failures_never_count_as_good(failures: list[tuple[str, float]]) -> None:
    rollup = Rollup()
    for outcome, latency_s in failures:
        # Fast failures too: a quick error is still a bad event.
        rollup.add(False, outcome, min(latency_s, 0.001), THRESHOLDS)
    for threshold in THRESHOLDS:
        assert rollup.good_within(threshold) == 0
        assert compliance(rollup, threshold) == 0.0
    assert rollup.ok == 0
    assert rollup.buckets == {}
    assert rollup.good == {}


@given(result_lists)
def test_to_dict_from_dict_round_trips_through_json(items: list[tuple[bool, str, float]]) -> None:
    rollup = rollup_of(items)
    restored = Rollup.from_dict(json.loads(json.dumps(rollup.to_dict())))
    assert restored == rollup
    assert all(isinstance(index, int) for index in restored.buckets)


# --- error budgets --------------------------------------------------------------------------


def test_budget_untouched_without_bad_events() -> None:
    budget = error_budget(valid=1000, good=1000, target_ratio=0.99)
    assert budget.bad == 0
    assert budget.allowed == pytest.approx(10.0)
    assert budget.remaining_ratio == 1.0
    assert budget.burn_rate == 0.0


def test_budget_spent_when_bad_equals_allowed() -> None:
    budget = error_budget(valid=1000, good=990, target_ratio=0.99)
    assert budget.bad == 10
    assert budget.remaining_ratio == pytest.approx(0.0, abs=1e-12)
    assert budget.burn_rate == pytest.approx(1.0)


def test_budget_overspent_is_negative() -> None:
    budget = error_budget(valid=1000, good=970, target_ratio=0.99)
    assert budget.remaining_ratio == pytest.approx(1 - 30 / 10)
    assert budget.burn_rate == pytest.approx(3.0)


@given(
    multiple=st.integers(min_value=1, max_value=10_000),
    bad_per_thousand=st.sampled_from([500, 100, 10, 5, 1]),
)
def test_burn_rate_is_one_when_bad_ratio_equals_one_minus_target(
    multiple: int, bad_per_thousand: int
) -> None:
    valid = 1000 * multiple
    bad = bad_per_thousand * multiple
    target_ratio = 1 - bad_per_thousand / 1000  # e.g. 0.99 for 10 bad per thousand
    budget = error_budget(valid=valid, good=valid - bad, target_ratio=target_ratio)
    assert budget.valid == valid
    assert budget.bad == bad
    assert budget.allowed == pytest.approx(bad)
    assert budget.burn_rate == pytest.approx(1.0, rel=1e-9)
    assert budget.remaining_ratio == pytest.approx(0.0, abs=1e-9)


@given(
    valid=st.integers(min_value=1, max_value=10**12),
    bad_share=st.fractions(min_value=0, max_value=1),
    target_ratio=st.sampled_from([0.5, 0.9, 0.99, 0.995, 0.999, 0.9999, 0.999999, 0.123456]),
)
def test_budget_figures_are_the_exact_ratios_rounded_once(
    valid: int, bad_share: Fraction, target_ratio: float
) -> None:
    """Each figure is the exact rational (the target as written, e.g. 99.5 % = 199/200)
    rounded to a float once: no float noise from 1 - 0.995."""
    bad = int(valid * bad_share)
    allowed_ratio = 1 - Fraction(str(target_ratio))
    budget = error_budget(valid=valid, good=valid - bad, target_ratio=target_ratio)
    assert budget.allowed == float(valid * allowed_ratio)
    assert budget.remaining_ratio == float(1 - bad / (valid * allowed_ratio))
    assert budget.burn_rate == float(Fraction(bad, valid) / allowed_ratio)


def test_budget_of_no_events_is_undefined() -> None:
    budget = error_budget(valid=0, good=0, target_ratio=0.99)
    assert budget.remaining_ratio is None
    assert budget.burn_rate is None


@pytest.mark.parametrize("target_ratio", [1.0, 0.0, 1.5, -0.1])
def test_budget_rejects_targets_outside_zero_one(target_ratio: float) -> None:
    with pytest.raises(ValueError, match="target ratio"):
        error_budget(valid=100, good=99, target_ratio=target_ratio)


# --- minute states and availability ---------------------------------------------------------


def minute_of(ok: int, failed: int) -> Rollup:
    """A minute with ``ok`` successes and ``failed`` timeouts."""
    return rollup_of([(True, "ok", 0.1)] * ok + [(False, "timeout", 5.0)] * failed)


@pytest.mark.parametrize(
    ("rollup", "state"),
    [
        pytest.param(None, MinuteCode.UNMONITORED, id="no-rollup"),
        pytest.param(Rollup(), MinuteCode.UNMONITORED, id="no-results"),
        pytest.param(minute_of(ok=6, failed=0), MinuteCode.UP, id="all-ok"),
        pytest.param(minute_of(ok=3, failed=3), MinuteCode.UP, id="exactly-half-failed"),
        pytest.param(minute_of(ok=2, failed=3), MinuteCode.DOWN, id="more-than-half-failed"),
        pytest.param(minute_of(ok=0, failed=1), MinuteCode.DOWN, id="one-of-one-failed"),
        pytest.param(minute_of(ok=0, failed=6), MinuteCode.DOWN, id="all-failed"),
    ],
)
def test_minute_state(rollup: Rollup | None, state: MinuteCode) -> None:
    assert minute_state(rollup) == state


@given(ok=st.integers(min_value=0, max_value=50), failed=st.integers(min_value=0, max_value=50))
def test_minute_is_down_exactly_when_more_than_half_failed(ok: int, failed: int) -> None:
    if ok + failed == 0:
        expected = MinuteCode.UNMONITORED
    elif 2 * failed > ok + failed:
        expected = MinuteCode.DOWN
    else:
        expected = MinuteCode.UP
    assert minute_state(minute_of(ok, failed)) == expected


@given(st.lists(st.sampled_from(list(MinuteCode)), max_size=200))
def test_availability_ignores_excluded_and_unmonitored_minutes(
    states: list[MinuteCode],
) -> None:
    up = states.count(MinuteCode.UP)
    down = states.count(MinuteCode.DOWN)
    result = availability(up, down)
    if up + down == 0:
        assert result is None
    else:
        assert result == up / (up + down)


def test_availability_examples() -> None:
    assert availability(99, 1) == 0.99
    assert availability(0, 5) == 0.0
    assert availability(5, 0) == 1.0
    assert availability(0, 0) is None


@pytest.mark.parametrize(
    ("valid", "target_percent", "shown"),
    [(48, 99, "0.48"), (1000, 99.5, "5.0"), (7, 99.9, "0.007"), (3, 99, "0.03")],
)
def test_the_allowed_budget_has_no_float_noise(
    valid: int, target_percent: float, shown: str
) -> None:
    """(1 - 0.99) * 48 is 0.4800000000000004 in binary floating point; the budget is the
    decimal the contract's target implies, as JSON shows it."""
    budget = error_budget(valid=valid, good=valid, target_ratio=target_percent / 100)
    assert json.dumps(budget.allowed) == shown
