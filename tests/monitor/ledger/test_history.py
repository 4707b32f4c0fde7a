"""The one reader of sealed minutes (shared by the restart and the report), on both
stores: stored decisions are returned as stored; a minute never decided is decided by the
classifier from its results — reading the providers' results when the caller asked for one
service only — or, without results, is unmonitored and not persisted."""

from __future__ import annotations

import pytest

from monitor.ledger.history import History
from monitor.results import Result, ServiceMinute
from monitor.sla.counts import Rollup
from monitor.sla.eligibility import Eligibility
from monitor.sla.minutes import MinuteClassifier
from monitor.store import Store
from probes.base import Outcome
from tests.support import builders

CONFIG = builders.config(
    builders.service("core", availability=["up"]),
    builders.service("portal", probes=("q",), availability=["up"], depends_on=["core"]),
)
M = 29_700_000  # an epoch minute
WIDE = (M - 600, M + 600)  # most of it not asked: the reader goes service by service


async def _seed(store: Store) -> None:
    results = [Result("core", "p", "http", M * 60 + k, 5.0, Outcome.TIMEOUT) for k in (1, 2)]
    results += [Result("portal", "q", "http", M * 60 + k, 0.2, Outcome.OK) for k in (1, 2)]
    results += [Result("portal", "q", "http", (M + 2) * 60 + 1, 0.2, Outcome.OK)]
    deltas: dict[tuple[str, str, int], Rollup] = {}
    for r in results:
        deltas.setdefault((r.service, r.probe, r.minute), Rollup()).add(
            r.ok, r.outcome.value, r.latency_s, ()
        )
    await store.write_batch(results, deltas)
    await store.write_minute_states([ServiceMinute("portal", M + 2, None, {"up": "down"})])


def _history(store: Store) -> History:
    classifier = MinuteClassifier(CONFIG, Eligibility(CONFIG).exclusion)
    return History(store, classifier, {s.name: tuple(s.depends_on) for s in CONFIG.services})


async def test_one_service_asked_reads_its_providers_to_decide(store: Store) -> None:
    await _seed(store)
    span = await _history(store).minutes({"portal": [M, M + 1, M + 2]}, *WIDE, decide_until=M + 3)
    states = {m: span.decisions[("portal", m)].states["up"] for m in (M, M + 1, M + 2)}
    # Core was down in M: portal's minute is excused, which needs core's results.
    assert states == {M: "provider_unavailable", M + 1: "unmonitored", M + 2: "down"}
    assert [(d.service, d.minute) for d in span.decided_from_results] == [("portal", M)]
    assert span.stored == 1
    assert ("core", "p", M) in {key for key, _ in span.rollups}


async def test_every_service_asked_is_decided_in_one_pass(store: Store) -> None:
    await _seed(store)
    everything = dict.fromkeys(("core", "portal"), range(M, M + 3))
    span = await _history(store).minutes(everything, M, M + 3, decide_until=M + 3)
    assert span.decisions[("core", M)].states == {"up": "down"}
    assert span.decisions[("portal", M)].states == {"up": "provider_unavailable"}
    assert span.decisions[("core", M + 2)].states == {"up": "unmonitored"}
    assert span.decisions[("portal", M + 2)].states == {"up": "down"}  # as stored
    decided = sorted((d.service, d.minute) for d in span.decided_from_results)
    assert decided == [("core", M), ("portal", M)]


@pytest.mark.parametrize("until", [M, M + 1])
async def test_minutes_past_the_horizon_are_not_decided(store: Store, until: int) -> None:
    await _seed(store)
    span = await _history(store).minutes({"portal": [M, M + 1, M + 2]}, *WIDE, decide_until=until)
    assert {m for _, m in span.decisions} == set(range(M, until))
