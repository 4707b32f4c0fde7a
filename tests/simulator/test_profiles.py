"""Fault profiles: reproducible draws, the configured distribution, outage windows."""

from __future__ import annotations

import math

import pytest

from simulator.profiles import Behaviour, Decision
from simulator.settings import LatencySettings, OutageSettings, ProfileSettings

N = 20_000
#: Allowed deviation of a share, in binomial standard deviations (two-sided p ~ 6e-5).
K = 4.0


def share_tolerance(p: float, n: int = N) -> float:
    """K standard deviations of the share of successes in n Bernoulli(p) trials."""
    return K * math.sqrt(p * (1 - p) / n)


def draws(
    profile: ProfileSettings, n: int = N, endpoint: str = "e", now: float = 0.0
) -> list[Decision]:
    behaviour = Behaviour.seeded(profile, seed=7, endpoint=endpoint)
    return [behaviour.draw(now) for _ in range(n)]


def phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def test_same_seed_and_endpoint_give_the_same_sequence() -> None:
    profile = ProfileSettings(
        latency=LatencySettings(median=0.1, sigma=0.7, tail_probability=0.1), error_rate=0.1
    )
    assert draws(profile, 500) == draws(profile, 500)
    assert draws(profile, 500) != draws(profile, 500, endpoint="other")
    other_seed = Behaviour.seeded(profile, seed=8, endpoint="e")
    assert [other_seed.draw(0.0) for _ in range(500)] != draws(profile, 500)


def test_latency_sequence_does_not_depend_on_outages() -> None:
    profile = ProfileSettings(
        latency=LatencySettings(tail_probability=0.1),
        error_rate=0.1,
        outages=[OutageSettings(every=10, duration=5)],
    )
    inside = draws(profile, 200, now=1.0)
    outside = draws(profile, 200, now=7.0)
    assert [d.delay_s for d in inside] == [d.delay_s for d in outside]
    assert {d.action for d in inside} == {"drop"}


def test_lognormal_median_and_sigma() -> None:
    median, sigma = 0.15, 0.5
    delays = [
        d.delay_s
        for d in draws(ProfileSettings(latency=LatencySettings(median=median, sigma=sigma)))
    ]
    below_median = sum(d <= median for d in delays) / N
    assert below_median == pytest.approx(0.5, abs=share_tolerance(0.5))
    # One sigma above the median in log space holds Phi(1) of the mass: this checks sigma.
    p_one_sigma = phi(1.0)
    below_one_sigma = sum(d <= median * math.exp(sigma) for d in delays) / N
    assert below_one_sigma == pytest.approx(p_one_sigma, abs=share_tolerance(p_one_sigma))


def test_tail_share_and_range() -> None:
    p_tail = 0.05
    latency = LatencySettings(
        median=0.1, sigma=0.5, tail_probability=p_tail, tail_min=2, tail_max=3
    )
    delays = [d.delay_s for d in draws(ProfileSettings(latency=latency))]
    # The lognormal body reaches 2 s with probability ~1e-9: everything above 1 s is tail.
    tail = [d for d in delays if d > 1.0]
    assert len(tail) / N == pytest.approx(p_tail, abs=share_tolerance(p_tail))
    assert all(2.0 <= d <= 3.0 for d in tail)
    # Uniform on [2, 3]: mean 2.5, standard deviation 1/sqrt(12).
    assert sum(tail) / len(tail) == pytest.approx(2.5, abs=K / math.sqrt(12 * len(tail)))


def test_error_rate_share() -> None:
    rate = 0.02
    actions = [d.action for d in draws(ProfileSettings(error_rate=rate))]
    assert actions.count("error") / N == pytest.approx(rate, abs=share_tolerance(rate))
    assert set(actions) == {"ok", "error"}


def test_constant_latency_and_cap() -> None:
    constant = draws(
        ProfileSettings(latency=LatencySettings(distribution="constant", median=0.2)), 100
    )
    assert {d.delay_s for d in constant} == {0.2}
    capped = draws(
        ProfileSettings(
            latency=LatencySettings(
                median=0.1, tail_probability=0.5, tail_min=1, tail_max=2, max=0.5
            )
        ),
        2_000,
    )
    assert max(d.delay_s for d in capped) == 0.5


@pytest.mark.parametrize("mode", ["drop", "error"])
@pytest.mark.parametrize(
    ("now", "in_outage"),
    [
        (4.999, False),  # just before the window (offset 5 into each 60 s period)
        (5.0, True),
        (14.999, True),
        (15.0, False),  # the window is [offset, offset + duration)
        (64.0, False),
        (65.0, True),
        (1_800_000_005.0, True),  # periods count from the Unix epoch
        (1_800_000_030.0, False),
    ],
)
def test_outage_window(mode: str, now: float, in_outage: bool) -> None:
    outage = OutageSettings.model_validate({"every": 60, "duration": 10, "offset": 5, "mode": mode})
    behaviour = Behaviour.seeded(ProfileSettings(outages=[outage]), seed=1, endpoint="e")
    assert behaviour.draw(now).action == (mode if in_outage else "ok")


def test_overlapping_outages_drop_wins() -> None:
    profile = ProfileSettings(
        outages=[
            OutageSettings(every=60, duration=30, mode="error"),
            OutageSettings(every=60, duration=10, offset=20, mode="drop"),
        ]
    )
    behaviour = Behaviour.seeded(profile, seed=1, endpoint="e")
    assert [behaviour.draw(t).action for t in (10, 25, 29.9, 35)] == ["error", "drop", "drop", "ok"]
