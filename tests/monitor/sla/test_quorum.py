"""Several locations deciding a minute: the quorum rule worked out by hand."""

from __future__ import annotations

import pytest

from monitor.sla.counts import Rollup
from monitor.sla.minutes import MinuteClassifier, MinuteCode, ObjectiveKey, quorum_state
from tests.support import builders

UP, DOWN, UNMON = MinuteCode.UP, MinuteCode.DOWN, MinuteCode.UNMONITORED


@pytest.mark.parametrize(
    ("states", "quorum", "expected"),
    [
        # One location, quorum 1: the location's own verdict (today's behaviour).
        ({"a": DOWN}, 1, (DOWN, ())),
        ({"a": UP}, 1, (UP, ())),
        ({"a": UNMON}, 1, (UNMON, ())),
        # Two locations, a majority (2): down only when both saw it down.
        ({"a": DOWN, "b": UP}, 2, (UP, ("a",))),
        ({"a": DOWN, "b": DOWN}, 2, (DOWN, ())),
        ({"a": UP, "b": UP}, 2, (UP, ())),
        # Fewer than the quorum measured it: unmonitored, nobody at fault.
        ({"a": DOWN, "b": UNMON}, 2, (UNMON, ())),
        ({"a": UP}, 2, (UNMON, ())),
        # Two locations, quorum 1: either seeing it down makes it down.
        ({"a": DOWN, "b": UP}, 1, (DOWN, ())),
        # Three locations, quorum 2.
        ({"a": DOWN, "b": UP, "c": UP}, 2, (UP, ("a",))),
        ({"a": DOWN, "b": DOWN, "c": UP}, 2, (DOWN, ())),
        ({"a": DOWN, "b": UP, "c": UNMON}, 2, (UP, ("a",))),
    ],
)
def test_quorum_state(
    states: dict[str, MinuteCode], quorum: int, expected: tuple[MinuteCode, tuple[str, ...]]
) -> None:
    assert quorum_state(states, quorum) == expected


def _counts(attempts: int, ok: int) -> Rollup:
    return Rollup(attempts=attempts, ok=ok)


def _classifier(quorum: int | None = None) -> MinuteClassifier:
    config = builders.config(
        builders.service("front", probes=("p1", "p2"), availability=["avail"], depends_on=["db"]),
        builders.service("db", probes=("p",), availability=["avail"]),
        locations={"names": ["a", "b", "c"], **({"quorum": quorum} if quorum else {})},
        instance={"location": "a"},
        storage={"path": ":memory:", "url": "postgresql://sla@127.0.0.1/sla"},
    )
    return MinuteClassifier(config, lambda service, minute: None)


FRONT, DB = ObjectiveKey("front", "avail"), ObjectiveKey("db", "avail")


def test_a_location_alone_seeing_failures_is_its_fault_not_the_services() -> None:
    classifier = _classifier()
    assert classifier.quorum == 2  # a majority of three
    ok = {
        ("front", "p1"): _counts(6, 6),
        ("front", "p2"): _counts(6, 6),
        ("db", "p"): _counts(6, 6),
    }
    broken = {
        ("front", "p1"): _counts(6, 0),
        ("front", "p2"): _counts(6, 0),
        ("db", "p"): _counts(6, 0),
    }
    decision = classifier.decide(0, {}, by_location={"a": broken, "b": ok, "c": ok})
    assert decision.codes == {FRONT: UP, DB: UP}
    assert decision.faults == {FRONT: ("a",), DB: ("a",)}


def test_a_provider_down_by_quorum_excuses_its_dependant() -> None:
    classifier = _classifier()
    ok = {("front", "p1"): _counts(6, 6), ("front", "p2"): _counts(6, 6)}
    db_down = {**ok, ("db", "p"): _counts(6, 1)}
    decision = classifier.decide(0, {}, by_location={"a": db_down, "b": db_down, "c": ok})
    assert decision.codes == {DB: DOWN, FRONT: MinuteCode.PROVIDER}
    assert decision.faults == {}


def test_each_location_judges_the_objectives_probes_together() -> None:
    """Location a: p1 all failed, p2 all fine: 6 of 12 failed is not more than half, so a
    saw it up; b saw it down; c measured nothing. Quorum 2 of the two that measured: up,
    b at fault."""
    classifier = _classifier()
    a = {("front", "p1"): _counts(6, 0), ("front", "p2"): _counts(6, 6), ("db", "p"): _counts(1, 1)}
    b = {("front", "p1"): _counts(6, 0), ("front", "p2"): _counts(6, 2), ("db", "p"): _counts(1, 1)}
    decision = classifier.decide(0, {}, by_location={"a": a, "b": b, "c": {}})
    assert decision.codes[FRONT] is UP
    assert decision.faults == {FRONT: ("b",)}
    # With quorum 1 the same minute is down.
    strict = _classifier(quorum=1).decide(0, {}, by_location={"a": a, "b": b, "c": {}})
    assert strict.codes[FRONT] is DOWN


def test_without_locations_the_pooled_rollups_decide_as_before() -> None:
    config = builders.config(builders.service("s", probes=("p",), availability=["avail"]))
    classifier = MinuteClassifier(config, lambda service, minute: None)
    assert classifier.quorum == 1
    decision = classifier.decide(0, {("s", "p"): _counts(4, 1)})
    assert decision.codes == {ObjectiveKey("s", "avail"): DOWN}
    assert decision.faults == {}
