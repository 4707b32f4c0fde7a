"""Fault profiles: how long a simulated endpoint takes and whether it answers.

A ``Behaviour`` turns a ``ProfileSettings`` into a reproducible sequence of ``Decision``s.
It is pure apart from its own ``random.Random``: the caller passes the time, so tests can
ask what happens at any instant without sleeping.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from simulator.settings import OutageSettings, ProfileSettings

#: What the endpoint does with one request.
Action = Literal["ok", "error", "drop"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The fate of one request: answer ``action`` after ``delay_s`` seconds.

    For ``drop`` no answer is sent at all; ``delay_s`` is still drawn (and unused) so that
    the latency sequence does not depend on when outages happen.
    """

    delay_s: float
    action: Action


def seeded_random(seed: int, endpoint: str) -> random.Random:
    """A generator seeded from the simulator's seed and an endpoint name.

    A string seed is hashed with SHA-512 by ``random.Random`` (not with ``hash()``), so the
    sequence is the same in every process whatever ``PYTHONHASHSEED`` is.
    """
    return random.Random(f"{seed}/{endpoint}")


class Behaviour:
    """Draws latency, errors and outages for one endpoint from its profile."""

    def __init__(self, profile: ProfileSettings, rng: random.Random) -> None:
        self.profile = profile
        self._rng = rng
        latency = profile.latency
        self._mu = math.log(latency.median)
        self._sigma = latency.sigma
        self._lognormal = latency.distribution == "lognormal"
        self._tail_p = latency.tail_probability
        self._tail_min = latency.tail_min
        self._tail_max = latency.tail_max
        self._max = latency.max
        self._error_rate = profile.error_rate
        # Drop outranks error when windows overlap: no answer is the worse failure.
        self._outages = sorted(profile.outages, key=lambda o: o.mode != "drop")

    @classmethod
    def seeded(cls, profile: ProfileSettings, seed: int, endpoint: str) -> Behaviour:
        """The behaviour of ``endpoint`` under the simulator's ``seed``."""
        return cls(profile, seeded_random(seed, endpoint))

    def draw(self, now: float) -> Decision:
        """Decide the next request's fate; ``now`` is UTC epoch seconds (for outages)."""
        rng = self._rng
        # Every draw consumes the same random variates whatever the outcome of the outage
        # check, so the latency sequence for a seed is the same at any time of day.
        if self._tail_p > 0.0 and rng.random() < self._tail_p:
            delay = rng.uniform(self._tail_min, self._tail_max)
        elif self._lognormal:
            delay = rng.lognormvariate(self._mu, self._sigma)
        else:
            delay = self.profile.latency.median
        delay = min(delay, self._max)
        action: Action = "error" if rng.random() < self._error_rate else "ok"
        outage = self.outage_at(now)
        if outage is not None:
            action = outage.mode
        return Decision(delay_s=delay, action=action)

    def outage_at(self, now: float) -> OutageSettings | None:
        """The outage window ``now`` falls in, if any (drop-mode windows first)."""
        for outage in self._outages:
            if (now - outage.offset) % outage.every < outage.duration:
                return outage
        return None
