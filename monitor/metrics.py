"""Prometheus metrics: probe instruments updated per result, the SLA core's post-exclusion
counters updated per sealed minute, and SLA gauges computed at scrape.

The counters ``sla_objective_events_total`` and ``sla_availability_seconds_total`` count
exactly what the daemon's own figures count (the ledger tells them as it seals), so
Prometheus reproduces ``/api/sla`` over any window and sums them across instances. The raw
probe instruments count every attempt, for debugging.

The registry is built here and passed around; nothing registers into prometheus_client's
global REGISTRY, so two daemons (or tests) in one process never collide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.config import AvailabilityObjective, Config, LatencyObjective
from monitor.results import Result
from monitor.sla.counts import Rollup
from monitor.sla.figures import ObjectiveFigures
from monitor.sla.minutes import STATE_LABELS, MinuteCode, ObjectiveKey, ProbeId
from probes.base import Outcome

# A `_created` series per counter doubles the series count and no query here uses it.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

#: What a sealed availability minute can count as: the SLA core's labels.
AVAILABILITY_STATES = STATE_LABELS

#: Latency buckets besides the configured thresholds (every threshold is added as a
#: bucket bound, so `le="<threshold>"` counts exactly what the contract counts).
BASE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 4.0, 5.0, 10.0, 30.0)


def bucket_bounds(config: Config) -> list[float]:
    """Histogram bounds: the base set plus every latency threshold of the config."""
    bounds = set(BASE_BUCKETS_S)
    for service in config.services:
        for objective in service.objectives:
            if isinstance(objective, LatencyObjective):
                bounds.add(float(objective.threshold))
    return sorted(bounds)


def attempt_outcome(outcome: Outcome) -> str:
    """The coarse ``outcome`` label of ``sla_probe_attempts_total``: ok, timeout or error
    (the failure class itself is ``sla_probe_failures_total``'s ``error`` label)."""
    if outcome is Outcome.OK:
        return "ok"
    if outcome is Outcome.TIMEOUT:
        return "timeout"
    return "error"


class Metrics:
    """Every instrument of the daemon, on one registry."""

    def __init__(self, config: Config, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.duration = Histogram(
            "sla_probe_duration_seconds",
            "Latency of successful probe exchanges (monotonic clock, exchange only).",
            ["service", "probe", "kind", "location"],
            buckets=bucket_bounds(config),
            registry=r,
        )
        self.attempts = Counter(
            "sla_probe_attempts",
            "Probe exchanges by outcome; every attempt is a valid SLA event.",
            ["service", "probe", "kind", "outcome", "location"],
            registry=r,
        )
        self.failures = Counter(
            "sla_probe_failures",
            "Failed probe exchanges by error class (timeout, connect, status, body, ...).",
            ["service", "probe", "error", "location"],
            registry=r,
        )
        self.up = Gauge(
            "sla_probe_up",
            "1 when the probe's last exchange succeeded.",
            ["service", "probe", "location"],
            registry=r,
        )
        self.lag = Histogram(
            "sla_scheduler_lag_seconds",
            "How late probe runs start against their schedule.",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
            registry=r,
        )
        self.skipped = Counter(
            "sla_scheduler_skipped_runs",
            "Probe runs not started because the previous schedule slot was still waiting.",
            ["service", "probe"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "sla_collector_queue_depth", "Results waiting for the collector.", registry=r
        )
        self.accepted = Counter(
            "sla_collector_results", "Results taken from the queue by the collector.", registry=r
        )
        self.written = Counter(
            "sla_store_written_results", "Results committed to the store.", registry=r
        )
        self.write_seconds = Histogram(
            "sla_store_write_seconds",
            "Duration of one store transaction (a batch of results and its rollups).",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=r,
        )
        self.clock_step = Gauge(
            "sla_clock_step_seconds",
            "The wall clock's step against the monotonic clock (0 while it keeps pace); "
            "pruning and archiving pause while it is not 0.",
            registry=r,
        )
        self.spooled = Gauge(
            "sla_spool_results",
            "Results in the spool: the store could not take them yet.",
            registry=r,
        )
        self.lost = Counter(
            "sla_results_lost",
            "Results neither the store nor the spool could take (the daemon says so and "
            "exits non-zero).",
            registry=r,
        )
        self.events = Counter(
            "sla_events",
            "Events of real traffic posted, by what became of them: stored (counted), "
            "duplicate (an id stored before: counted once), invalid, late (minute closed).",
            ["result"],
            registry=r,
        )
        for result in ("stored", "duplicate", "invalid", "late"):
            self.events.labels(result)
        self.canary_errors = Counter(
            "sla_batch_canary_errors",
            "Synthetic batches that could not be handed in (no answer, an error status).",
            ["service", "objective"],
            registry=r,
        )
        self.ingest_seconds = Histogram(
            "sla_ingest_store_seconds",
            "Time from handing a request's events to the collector to their commit.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.store_errors = Counter(
            "sla_store_errors",
            "Store writes that failed (the batch is kept and retried).",
            registry=r,
        )
        self.results_too_late = Counter(
            "sla_results_too_late",
            "Results whose minute had been sealed beyond the re-decision horizon (a "
            "backward step of the wall clock, a long stall): counted once in latency, "
            "not in that minute's availability; with several locations, a result written "
            "after the locations decided its minute, kept raw and counted in no figure.",
            ["service", "probe"],
            registry=r,
        )
        self.leader = Gauge(
            "sla_instance_leader",
            "1 while this daemon leads the daemons on its store: it alone sends alerts, "
            "detects incidents, writes the monthly report and digests, and prunes.",
            registry=r,
        )
        self.previous_run_killed = Gauge(
            "sla_previous_run_killed",
            "1 when this run started after one that ended without a clean stop (SIGKILL, "
            "a crash): see sla_previous_run_lost_results_max.",
            registry=r,
        )
        self.previous_run_lost_max = Gauge(
            "sla_previous_run_lost_results_max",
            "At most this many probe runs the killed previous run measured after its last "
            "write and lost (per probe, from its last stored result to two seconds after "
            "the run's last sign of life).",
            registry=r,
        )
        self.broker_connected = Gauge(
            "sla_broker_connected",
            "1 while the MQTT connection to the broker is up.",
            ["broker"],
            registry=r,
        )
        Info("sla_build", "The running sla-monitor.", registry=r).info({"version": __version__})
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.objective_events = Counter(
            "sla_objective_events",
            "Results a latency objective counts, after exclusions (maintenance and "
            "outside-hours minutes left out, as the daemon does), by whether they met its "
            "threshold; added when their minute is sealed.",
            ["service", "objective", "result"],
            registry=r,
        )
        self.availability_seconds = Counter(
            "sla_availability_seconds",
            "Sealed time of an availability objective by what it counted as (60 s per "
            "sealed minute); availability is up / (up + down).",
            ["service", "objective", "state"],
            registry=r,
        )
        self.sealed_timestamp = Gauge(
            "sla_objective_sealed_timestamp_seconds",
            "End of the last minute the daemon sealed (decided) for the objective; the "
            "post-exclusion counters are complete up to it (0 before the first seal).",
            ["service", "objective"],
            registry=r,
        )
        self.location_fault_seconds = Counter(
            "sla_location_fault_seconds",
            "Sealed time of an availability objective counted up although this location "
            "saw it down: the location's own path failed, not the service (60 s per minute; "
            "every daemon of the store counts every location's, as the minute is decided "
            "once for all: take max across daemons, never sum).",
            ["service", "objective", "location"],
            registry=r,
        )
        self.location_fault = Gauge(
            "sla_location_fault",
            "1 when the last sealed minute of the objective was a fault of this location "
            "(it alone, or too few to make a quorum, saw the service down).",
            ["service", "objective", "location"],
            registry=r,
        )
        self._faulty: set[tuple[str, str, str]] = set()
        if config.shared_minutes:  # every series from the first scrape, as for the others
            for service in config.services:
                for objective in service.objectives:
                    if isinstance(objective, AvailabilityObjective):
                        for loc in config.locations.of(config.instance.location):
                            labels = (service.name, objective.name, loc)
                            self.location_fault_seconds.labels(*labels)
                            self.location_fault.labels(*labels).set(0)
        #: Per probe: the (threshold, good, bad) counter children of its latency objectives.
        self._latency: dict[ProbeId, list[tuple[float, Counter, Counter]]] = {}
        self._seconds: dict[tuple[ObjectiveKey, MinuteCode], Counter] = {}
        self._sealed: list[Gauge] = []
        for service in config.services:
            for objective in service.objectives:
                self._sealed.append(self.sealed_timestamp.labels(service.name, objective.name))
                if isinstance(objective, LatencyObjective):
                    good = self.objective_events.labels(service.name, objective.name, "good")
                    bad = self.objective_events.labels(service.name, objective.name, "bad")
                    for name in service.series_of(objective):
                        self._latency.setdefault((service.name, name), []).append(
                            (float(objective.threshold), good, bad)
                        )
                elif isinstance(objective, AvailabilityObjective):
                    key = ObjectiveKey(service.name, objective.name)
                    for code in MinuteCode:
                        if code is not MinuteCode.UNKNOWN:
                            self._seconds[(key, code)] = self.availability_seconds.labels(
                                service.name, objective.name, code.label
                            )
        self._children: dict[tuple[str, str], _ProbeChildren] = {}
        for service in config.services:
            for probe in service.probes:
                # location: where this daemon probes from (instance.location), so the
                # series of daemons in several locations stay apart.
                self._children[(service.name, probe.name)] = _ProbeChildren(
                    self, service.name, probe.name, probe.kind, config.instance.location
                )

    def observe(self, result: Result) -> None:
        """Count one result (children are cached: a label lookup per result costs ~30 %)."""
        children = self._children.get((result.service, result.probe))
        if children is None:
            return
        children.attempts[attempt_outcome(result.outcome)].inc()
        if result.ok:
            children.duration.observe(result.latency_s)
            children.up.set(1)
        else:
            children.failure(result.outcome).inc()
            children.up.set(0)

    def observe_many(self, results: Sequence[Result]) -> None:
        """Count results in one go (a body of events): one increment per probe and
        outcome, the latencies observed one by one (the histogram has no bulk update)."""
        outcomes: dict[tuple[str, str, Outcome], int] = {}
        last: dict[tuple[str, str], bool] = {}
        for result in results:
            key = (result.service, result.probe, result.outcome)
            outcomes[key] = outcomes.get(key, 0) + 1
            ok = result.outcome is Outcome.OK
            last[(result.service, result.probe)] = ok
            if ok:
                children = self._children.get((result.service, result.probe))
                if children is not None:
                    children.duration.observe(result.latency_s)
        for (service, probe, outcome), count in outcomes.items():
            children = self._children.get((service, probe))
            if children is None:
                continue
            children.attempts[attempt_outcome(outcome)].inc(count)
            if outcome is not Outcome.OK:
                children.failure(outcome).inc(count)
        for probe_id, ok in last.items():
            children = self._children.get(probe_id)
            if children is not None:
                children.up.set(1 if ok else 0)

    # --- the ledger's SealListener -----------------------------------------------------

    def minute_sealed(self, minute: int, codes: Mapping[ObjectiveKey, MinuteCode]) -> None:
        """Count one sealed minute of every availability objective."""
        for key, code in codes.items():
            child = self._seconds.get((key, code))
            if child is not None:
                child.inc(60)
        end = (minute + 1) * 60.0
        for gauge in self._sealed:
            gauge.set(end)

    def rollup_counted(self, probe: ProbeId, rollup: Rollup) -> None:
        """Count a sealed, eligible rollup into each latency objective of its probe."""
        for threshold, good, bad in self._latency.get(probe, ()):
            within = rollup.good_within(threshold)
            if within:
                good.inc(within)
            if rollup.attempts > within:
                bad.inc(rollup.attempts - within)

    def location_faults(self, minute: int, faults: Mapping[ObjectiveKey, tuple[str, ...]]) -> None:
        """Count the sealed minute's location faults and show them as the current ones."""
        now = {(key.service, key.objective, loc) for key, locs in faults.items() for loc in locs}
        for labels in self._faulty - now:
            self.location_fault.labels(*labels).set(0)
        for labels in now:
            self.location_fault.labels(*labels).set(1)
            self.location_fault_seconds.labels(*labels).inc(60)
        self._faulty = now

    def result_too_late(self, probe: ProbeId) -> None:
        """Count a result too late to change its minute's availability decision."""
        self.results_too_late.labels(*probe).inc()


class _ProbeChildren:
    """Label children of one probe, created up front so every series exists from the
    first scrape (a counter that appears late loses its first increase in rate())."""

    def __init__(
        self, metrics: Metrics, service: str, probe: str, kind: str, location: str
    ) -> None:
        self._metrics = metrics
        self._service = service
        self._probe = probe
        self._location = location
        self.duration = metrics.duration.labels(service, probe, kind, location)
        self.attempts = {
            outcome: metrics.attempts.labels(service, probe, kind, outcome, location)
            for outcome in ("ok", "error", "timeout")
        }
        self.up = metrics.up.labels(service, probe, location)
        self._failures: dict[Outcome, Counter] = {}

    def failure(self, outcome: Outcome) -> Counter:
        """The failure counter child of one error class."""
        child = self._failures.get(outcome)
        if child is None:
            child = self._metrics.failures.labels(
                self._service, self._probe, outcome.value, self._location
            )
            self._failures[outcome] = child
        return child


_SLA_GAUGES = (
    "sla_objective_compliance_ratio",
    "sla_objective_target_ratio",
    "sla_error_budget_remaining_ratio",
    "sla_error_budget_burn_rate",
    "sla_latency_quantile_seconds",
    "sla_availability_window_seconds",
    "sla_monitoring_coverage_ratio",
    "sla_objective_coverage_floor_ratio",
    "sla_maintenance_active",
)


class SlaCollector(Collector):
    """Yields the SLA gauges from the ledger at scrape time."""

    def __init__(
        self,
        figures: Callable[[], list[ObjectiveFigures]],
        maintenance_active: Callable[[str], bool] | None = None,
    ) -> None:
        self._figures = figures
        self._maintenance_active = maintenance_active

    def describe(self) -> Iterable[Metric]:
        """The names this collector yields (so registering it does not compute figures)."""
        for name in _SLA_GAUGES:
            yield GaugeMetricFamily(name, name)

    def collect(self) -> Iterable[Metric]:
        """Build the gauges of every objective and window."""
        compliance = GaugeMetricFamily(
            "sla_objective_compliance_ratio",
            "Share of valid events (or eligible minutes) that met the objective.",
            labels=["service", "objective", "window"],
        )
        target = GaugeMetricFamily(
            "sla_objective_target_ratio", "The objective's target.", labels=["service", "objective"]
        )
        budget = GaugeMetricFamily(
            "sla_error_budget_remaining_ratio",
            "1 - bad/allowed over the window (negative once overspent).",
            labels=["service", "objective", "window"],
        )
        # Not a summary's `quantile` label: these are estimates over a window, not a
        # streaming summary, and promtool rejects `quantile` on a gauge.
        quantile = GaugeMetricFamily(
            "sla_latency_quantile_seconds",
            "Latency percentile estimates (relative error <= 1 %) over the window.",
            labels=["service", "percentile", "window"],
        )
        maintenance = GaugeMetricFamily(
            "sla_maintenance_active",
            "1 while a planned maintenance window is open.",
            labels=["service"],
        )
        burn = GaugeMetricFamily(
            "sla_error_budget_burn_rate",
            "Bad ratio over the allowed bad ratio in the window (1 spends the budget exactly).",
            labels=["service", "objective", "window"],
        )
        seconds = GaugeMetricFamily(
            "sla_availability_window_seconds",
            "Time of an availability objective over the window by what it counted as "
            "(whole minutes).",
            labels=["service", "objective", "window", "state"],
        )
        coverage = GaugeMetricFamily(
            "sla_monitoring_coverage_ratio",
            "Share of the window the monitor saw: monitored over eligible minutes "
            "(availability), results over expected probe runs (latency).",
            labels=["service", "objective", "window"],
        )
        floor = GaugeMetricFamily(
            "sla_objective_coverage_floor_ratio",
            "Below this coverage the objective's verdict is insufficient data.",
            labels=["service", "objective"],
        )
        at_risk = GaugeMetricFamily(
            "sla_batch_at_risk",
            "Batch objectives: records (or batches) still unprocessed within the margin of "
            "their deadline.",
            labels=["service", "objective"],
        )
        services_seen: set[str] = set()
        quantiles_done: set[tuple[str, str, str]] = set()
        for figures in self._figures():
            target.add_metric([figures.service, figures.objective], figures.target_ratio)
            if figures.kind == "batch":
                at_risk.add_metric([figures.service, figures.objective], figures.at_risk)
            month = figures.windows.get("month")
            if month is not None:
                floor.add_metric([figures.service, figures.objective], month.coverage_floor)
            if figures.service not in services_seen:
                services_seen.add(figures.service)
                active = self._maintenance_active and self._maintenance_active(figures.service)
                maintenance.add_metric([figures.service], 1.0 if active else 0.0)
            for window, values in figures.windows.items():
                if values.compliance is not None:
                    compliance.add_metric(
                        [figures.service, figures.objective, window], values.compliance
                    )
                if values.budget_remaining_ratio is not None:
                    budget.add_metric(
                        [figures.service, figures.objective, window], values.budget_remaining_ratio
                    )
                labels = [figures.service, figures.objective, window]
                if values.burn_rate is not None:
                    burn.add_metric(labels, values.burn_rate)
                for state, count in values.minutes.items():
                    seconds.add_metric([*labels, state], count * 60.0)
                if values.coverage is not None:
                    coverage.add_metric(labels, values.coverage)
                for name, value in values.quantiles.items():
                    key = (figures.service, name, window)
                    # Objectives of one service over the same probes share quantiles.
                    if value is not None and key not in quantiles_done:
                        quantiles_done.add(key)
                        quantile.add_metric([figures.service, percentile(name), window], value)
        yield from (
            at_risk,
            compliance,
            target,
            budget,
            burn,
            quantile,
            seconds,
            coverage,
            floor,
            maintenance,
        )


def percentile(name: str) -> str:
    """The ``percentile`` label of a quantile name: ``p99_5`` is ``99.5``."""
    return name.removeprefix("p").replace("_", ".")
