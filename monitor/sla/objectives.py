"""Per-objective selection: which probes an objective counts, which thresholds each probe
is counted against, and when a minute is final (the sealing grace)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.sla.minutes import ProbeId

if TYPE_CHECKING:
    from monitor.config import AvailabilityObjective, Config, LatencyObjective

#: Seconds added to the longest timeout and two flushes before a minute is sealed: the
#: time a result needs from the end of its exchange to the collector.
_SEAL_MARGIN_S = 5


def grace_minutes(config: Config) -> int:
    """Whole minutes after which a minute is sealed: by then every result that started in
    it has timed out or arrived and been flushed. The daemon seals with it and the report
    calls a month over with it, so both agree on which minutes are final."""
    longest_timeout = max((p.timeout for s in config.services for p in s.probes), default=0.0)
    return int((longest_timeout + 2 * config.storage.flush_interval + _SEAL_MARGIN_S) // 60) + 1


def probe_thresholds(config: Config) -> dict[ProbeId, tuple[float, ...]]:
    """For every probe (and every series of one location's results, ``series_of``), the
    latency thresholds it is counted against (its objectives')."""
    thresholds: dict[ProbeId, set[float]] = {}
    for service in config.services:
        for probe in service.probes:
            thresholds[(service.name, probe.name)] = set()
        for objective in service.objectives:
            if objective.kind == "latency":
                for name in service.series_of(objective):
                    thresholds.setdefault((service.name, name), set()).add(objective.threshold)
    return {key: tuple(sorted(values)) for key, values in thresholds.items()}


def location_series(config: Config) -> dict[tuple[str, str, str], str]:
    """(service, probe, location) -> the series that counts that probe's results from that
    location alone, for the latency objectives of one location (empty when there are
    none: every result then counts in its probe's series only)."""
    series: dict[tuple[str, str, str], str] = {}
    for service in config.services:
        for objective in service.objectives:
            location = getattr(objective, "location", None)
            if location is None:
                continue
            for probe, name in zip(
                service.probes_of(objective), service.series_of(objective), strict=True
            ):
                series[(service.name, probe, location)] = name
    return series


def coverage_floor(config: Config, objective: LatencyObjective | AvailabilityObjective) -> float:
    """The objective's coverage floor as a ratio (its own, else the config's)."""
    floor = objective.coverage_floor
    return (config.coverage_floor if floor is None else floor) / 100.0


def runs_per_minute(config: Config, service: str, probes: tuple[str, ...] | list[str]) -> float:
    """Probe runs expected per eligible minute from ``probes`` of ``service`` (60 / interval
    each): the denominator of a latency objective's coverage, at today's intervals."""
    settings = config.service(service)
    measured = {name.partition("@")[0] for name in probes}  # a series of one location
    return sum(60.0 / p.interval for p in settings.probes if p.name in measured)
