"""The Prometheus instruments on a fresh registry: outcomes, buckets at every configured
threshold, the attempt outcome label; and the post-exclusion counters, fed by a real
ledger, against counts made here from the results fed and the minutes known excluded."""

from __future__ import annotations

import asyncio

import pytest

from monitor.collector import Collector
from monitor.config import Config
from monitor.ledger.windows import Ledger
from monitor.metrics import Metrics, attempt_outcome
from monitor.results import Result
from monitor.sla.eligibility import Eligibility
from monitor.store import MemoryStore
from probes.base import Outcome
from tests.fakes import FakeClock
from tests.support import builders


@pytest.mark.parametrize(
    ("outcome", "label"),
    [
        (Outcome.OK, "ok"),
        (Outcome.TIMEOUT, "timeout"),
        (Outcome.CONNECT, "error"),
        (Outcome.STATUS, "error"),
        (Outcome.BODY, "error"),
        (Outcome.PROTOCOL, "error"),
        (Outcome.ERROR, "error"),
    ],
)
def test_attempt_outcome_label(outcome: Outcome, label: str) -> None:
    assert attempt_outcome(outcome) == label


def test_every_threshold_is_a_bucket_bound_and_failures_are_not_observed() -> None:
    config = builders.config(builders.service("svc", latency={"a": 0.25, "b": 1.5, "c": 4}))
    metrics = Metrics(config)
    latencies = [0.1, 0.25, 0.26, 1.5, 3.0, 4.0, 4.5]
    for latency in latencies:
        metrics.observe(Result("svc", "p", "http", 0.0, latency, Outcome.OK))
    metrics.observe(Result("svc", "p", "http", 0.0, 5.0, Outcome.TIMEOUT))
    labels = {"service": "svc", "probe": "p", "kind": "http", "location": "default"}
    get = metrics.registry.get_sample_value
    for bound, text in ((0.25, "0.25"), (1.5, "1.5"), (4.0, "4.0")):
        expected = sum(latency <= bound for latency in latencies)
        assert get("sla_probe_duration_seconds_bucket", {**labels, "le": text}) == expected
    assert get("sla_probe_duration_seconds_count", labels) == len(latencies)
    assert get("sla_probe_attempts_total", {**labels, "outcome": "timeout"}) == 1
    assert (
        get(
            "sla_probe_failures_total",
            {"service": "svc", "probe": "p", "error": "timeout", "location": "default"},
        )
        == 1
    )


def test_counting_a_body_of_results_at_once_equals_counting_them_one_by_one() -> None:
    config = builders.config(builders.service("svc", latency={"a": 0.25, "b": 1.5}))
    outcomes = [Outcome.OK, Outcome.TIMEOUT, Outcome.OK, Outcome.STATUS, Outcome.OK]
    results = [
        Result("svc", "p", "http", 60.0 * n, 0.1 * n, outcome)
        for n, outcome in enumerate(outcomes * 3)
    ] + [Result("svc", "p", "http", 0.0, 9.0, Outcome.CONNECT)]  # the last one: down

    def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in metrics.registry.collect()
            for s in family.samples
            # The process's own figures (CPU seconds...) move between the two reads.
            if not s.name.endswith("_created") and not s.name.startswith(("process_", "python_"))
        }

    one_by_one, at_once = Metrics(config), Metrics(config)
    for result in results:
        one_by_one.observe(result)
    at_once.observe_many(results)
    assert samples(at_once) == samples(one_by_one)
    labels = {"service": "svc", "probe": "p", "location": "default"}
    assert at_once.registry.get_sample_value("sla_probe_up", labels) == 0


def test_each_metrics_object_has_its_own_registry() -> None:
    config = builders.config(builders.service("svc", latency={"a": 1}))
    one, two = Metrics(config), Metrics(config)
    one.observe(Result("svc", "p", "http", 0.0, 0.5, Outcome.OK))
    labels = {
        "service": "svc",
        "probe": "p",
        "kind": "http",
        "outcome": "ok",
        "location": "default",
    }
    assert one.registry.get_sample_value("sla_probe_attempts_total", labels) == 1
    assert two.registry.get_sample_value("sla_probe_attempts_total", labels) == 0


# --- the post-exclusion counters ----------------------------------------------------------

#: 2026-11-30 10:00 UTC, a Monday: minute 0 of the scenario below.
START = 1_796_032_800.0
#: Minutes (from START) outside svc's hours, in maintenance, and where its provider is down
#: (the last excluded from availability only: the daemon counts their latency).
OUTSIDE = {5, 6}
MAINTENANCE = {10, 11}
PROVIDER_DOWN = {14}
#: Minutes where svc's own probes all fail.
SVC_DOWN = {3, 6, 11}
MINUTES = 18


def _excluding_config() -> Config:
    svc = builders.service(
        "svc",
        probes=("a", "b"),
        schedule={"hours": [{"days": "mon-sun", "start": "10:07", "end": "10:05"}]},
        maintenance=[
            {
                "start": "2026-11-30T10:10:00+00:00",
                "end": "2026-11-30T10:12:00+00:00",
                "reason": "upgrade",
            }
        ],
        depends_on=["prov"],
    )
    svc["objectives"] = [
        {"name": "fast", "kind": "latency", "threshold": 0.5, "target": 99, "probes": ["a"]},
        {"name": "all", "kind": "latency", "threshold": 1.0, "target": 99},
        {"name": "up", "kind": "availability", "target": 99},
    ]
    return builders.config(svc, builders.service("prov", availability=["up"]), timezone="UTC")


def _fed(minute: int) -> list[Result]:
    """Three results of each svc probe (0.3 s, 0.7 s, 1.2 s; all failed when down) and one
    of prov, in the minute."""
    at = START + minute * 60
    results = []
    for probe in ("a", "b"):
        for i, latency in enumerate((0.3, 0.7, 1.2)):
            outcome = Outcome.STATUS if minute in SVC_DOWN else Outcome.OK
            results.append(Result("svc", probe, "http", at + 5 + i, latency, outcome))
    prov = Outcome.CONNECT if minute in PROVIDER_DOWN else Outcome.OK
    results.append(Result("prov", "p", "http", at + 1, 0.1, prov))
    return results


def _counter(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


async def test_counters_hold_exactly_what_the_daemon_counts() -> None:
    """Maintenance and outside-hours minutes add nothing to the latency counters; they
    and provider-unavailable minutes add their own state to availability; a late result
    of a counted minute is added; the daemon's own 1h figure equals the counters."""
    config = _excluding_config()
    metrics = Metrics(config)
    ledger = Ledger(config, Eligibility(config), grace_minutes=1, listener=metrics)
    store = MemoryStore()
    late = Result("svc", "a", "http", START + 2 * 60 + 50, 0.2, Outcome.OK)
    for minute in range(MINUTES):
        await ledger.advance(START + minute * 60, store)
        for result in _fed(minute):
            ledger.add(result)
        if minute == 5:  # minute 2 is sealed by now: its late result still counts
            ledger.add(late)
    now = START + (MINUTES + 2) * 60
    await ledger.advance(now, store)

    counted = [m for m in range(MINUTES) if m not in OUTSIDE | MAINTENANCE]
    for objective, probes, threshold in (("fast", ["a"], 0.5), ("all", ["a", "b"], 1.0)):
        results = [r for m in counted for r in _fed(m) if r.probe in probes]
        results += [late] if "a" in probes else []
        good = sum(1 for r in results if r.ok and r.latency_s <= threshold)
        labels = {"service": "svc", "objective": objective}
        events = "sla_objective_events_total"
        assert _counter(metrics, events, **labels, result="good") == good
        assert _counter(metrics, events, **labels, result="bad") == len(results) - good
        daemon = ledger.window_rollup("svc", probes, "1h", now)
        assert (daemon.good_within(threshold), daemon.attempts) == (good, len(results))

    seconds = "sla_availability_seconds_total"
    eligible = [m for m in counted if m not in PROVIDER_DOWN]
    expected = {
        "up": 60 * sum(1 for m in eligible if m not in SVC_DOWN),
        "down": 60 * sum(1 for m in eligible if m in SVC_DOWN),
        "outside_hours": 60 * len(OUTSIDE),
        "maintenance": 60 * len(MAINTENANCE),
        "provider_unavailable": 60 * len(PROVIDER_DOWN),
        # Sealed before the first result and after the last: nobody measured them.
        "unmonitored": 60 * 2,
    }
    for state, value in expected.items():
        assert _counter(metrics, seconds, service="svc", objective="up", state=state) == value
    sealed = _counter(
        metrics, "sla_objective_sealed_timestamp_seconds", service="svc", objective="up"
    )
    # At minute MINUTES + 2 with a grace of 1, minutes up to MINUTES are sealed.
    assert sealed == START + (MINUTES + 1) * 60


async def test_minutes_a_killed_daemon_never_sealed_are_counted_after_the_restart() -> None:
    """The first daemon seals minutes 0-1 and is killed; the second decides 2-4 from the
    store on loading and counts them: between the two, every result counts once."""
    config = builders.config(
        builders.service("svc", probes=("a",), latency={"fast": 0.5}, availability=["up"]),
        timezone="UTC",
    )
    store = MemoryStore()
    clock = FakeClock(start=START)
    first = Metrics(config)
    ledger = Ledger(config, grace_minutes=1, listener=first)
    collector = Collector(asyncio.Queue(), ledger, store, first, clock)
    fed = [
        Result("svc", "a", "http", START + m * 60 + 10 + i, latency, Outcome.OK)
        for m in range(5)
        for i, latency in enumerate((0.2, 0.7))
    ]
    for result in fed:
        collector.accept(result)
    await ledger.advance(START + 3 * 60, store)  # seals minutes up to 1
    await collector.flush()
    await collector.write_decisions()

    second = Metrics(config)
    restarted = Ledger(config, grace_minutes=1, listener=second)
    await restarted.load(store, START + 6 * 60)  # sealed through 4: 2-4 decided now

    def events(metrics: Metrics, result: str) -> float:
        labels = {"service": "svc", "objective": "fast", "result": result}
        return _counter(metrics, "sla_objective_events_total", **labels)

    def up_seconds(metrics: Metrics) -> float:
        labels = {"service": "svc", "objective": "up", "state": "up"}
        return _counter(metrics, "sla_availability_seconds_total", **labels)

    assert (events(first, "good"), events(second, "good")) == (2, 3)
    assert events(first, "good") + events(second, "good") == sum(r.latency_s <= 0.5 for r in fed)
    assert events(first, "bad") + events(second, "bad") == sum(r.latency_s > 0.5 for r in fed)
    assert (up_seconds(first), up_seconds(second)) == (120, 180)
