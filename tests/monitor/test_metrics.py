"""The Prometheus instruments alone, on a fresh registry: outcomes, buckets at every
configured threshold, the attempt outcome label."""

from __future__ import annotations

import pytest

from monitor.metrics import Metrics, attempt_outcome
from monitor.results import Result
from probes.base import Outcome
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
    labels = {"service": "svc", "probe": "p", "kind": "http"}
    get = metrics.registry.get_sample_value
    for bound, text in ((0.25, "0.25"), (1.5, "1.5"), (4.0, "4.0")):
        expected = sum(latency <= bound for latency in latencies)
        assert get("sla_probe_duration_seconds_bucket", {**labels, "le": text}) == expected
    assert get("sla_probe_duration_seconds_count", labels) == len(latencies)
    assert get("sla_probe_attempts_total", {**labels, "outcome": "timeout"}) == 1
    assert (
        get("sla_probe_failures_total", {"service": "svc", "probe": "p", "error": "timeout"}) == 1
    )


def test_each_metrics_object_has_its_own_registry() -> None:
    config = builders.config(builders.service("svc", latency={"a": 1}))
    one, two = Metrics(config), Metrics(config)
    one.observe(Result("svc", "p", "http", 0.0, 0.5, Outcome.OK))
    labels = {"service": "svc", "probe": "p", "kind": "http", "outcome": "ok"}
    assert one.registry.get_sample_value("sla_probe_attempts_total", labels) == 1
    assert two.registry.get_sample_value("sla_probe_attempts_total", labels) == 0
