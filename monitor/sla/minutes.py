"""The one minute classifier: what a minute counts as for availability.

The contract counts availability "during the periods in which the network services are
available", without planned unavailability announced in advance, and the monitor's own
downtime is not the service's (DESIGN decision 3). Every consumer — the ledger sealing a
minute, a restart deciding a minute the daemon never persisted, the monthly report, the
status page — classifies with this module and spells the states with ``MinuteCode``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING

from monitor.sla.counts import Rollup

if TYPE_CHECKING:
    from monitor.config import Config

#: (service, probe)
ProbeId = tuple[str, str]


class Exclusion(StrEnum):
    """Why a minute does not count for a service's objectives."""

    OUTSIDE_HOURS = "outside_hours"  # outside the service's schedule, or a public holiday
    MAINTENANCE = "maintenance"  # inside announced planned maintenance
    PROVIDER = "provider_unavailable"  # a provider service was down or in maintenance
    #: A report correction declared the monitor faulty then: its results say nothing, so
    #: the minute is unmonitored and its results count nowhere.
    CORRECTED = "corrected"


class MinuteCode(IntEnum):
    """What a minute counts as for one availability objective (one byte; the digit is
    what compacted hour and day summaries store)."""

    UNKNOWN = 0  # not decided (no result yet, or before the ledger's reach)
    UP = 1
    DOWN = 2
    UNMONITORED = 3  # the monitor produced no result: neither up nor down
    OUTSIDE_HOURS = 4
    MAINTENANCE = 5
    PROVIDER = 6

    @property
    def label(self) -> str:
        """The name used in the API, the store, the metrics and reports."""
        return _LABELS[self]

    @property
    def digit(self) -> str:
        """The one-character form in compacted summaries."""
        return str(int(self))

    @classmethod
    def from_label(cls, label: str) -> MinuteCode:
        """The inverse of ``label``."""
        return _BY_LABEL[label]


_LABELS = {
    MinuteCode.UNKNOWN: "unknown",
    MinuteCode.UP: "up",
    MinuteCode.DOWN: "down",
    MinuteCode.UNMONITORED: "unmonitored",
    MinuteCode.OUTSIDE_HOURS: Exclusion.OUTSIDE_HOURS.value,
    MinuteCode.MAINTENANCE: Exclusion.MAINTENANCE.value,
    MinuteCode.PROVIDER: Exclusion.PROVIDER.value,
}
_BY_LABEL = {label: code for code, label in _LABELS.items()}

#: Every decided state's label, in report order.
STATE_LABELS: tuple[str, ...] = tuple(code.label for code in MinuteCode if code.value)

#: The code of an exclusion (None: the minute is eligible, stored as UP in the service's
#: exclusion ring).
EXCLUSION_CODE: dict[Exclusion | None, MinuteCode] = {
    None: MinuteCode.UP,
    Exclusion.OUTSIDE_HOURS: MinuteCode.OUTSIDE_HOURS,
    Exclusion.MAINTENANCE: MinuteCode.MAINTENANCE,
    Exclusion.PROVIDER: MinuteCode.PROVIDER,
    Exclusion.CORRECTED: MinuteCode.UNMONITORED,
}


def minute_state(rollup: Rollup | None, down_ratio: float = 0.5) -> MinuteCode:
    """UP, DOWN or UNMONITORED from a minute's results alone: down when more than
    ``down_ratio`` of its results failed (and at least one did), unmonitored with none."""
    if rollup is None or rollup.attempts == 0:
        return MinuteCode.UNMONITORED
    failed = rollup.attempts - rollup.ok
    if failed >= 1 and failed > down_ratio * rollup.attempts:
        return MinuteCode.DOWN
    return MinuteCode.UP


def classify(
    exclusion: Exclusion | None, provider_out: bool, rollup: Rollup | None, down_ratio: float
) -> MinuteCode:
    """What one minute counts as for one availability objective.

    Order matters: the service's own schedule and maintenance first; then a minute with
    no result is unmonitored whatever its providers did; then a provider that was down or
    in maintenance excuses the minute; only then is it up or down.
    """
    if exclusion is not None:
        return EXCLUSION_CODE[exclusion]
    return classify_state(None, provider_out, minute_state(rollup, down_ratio))


def classify_state(
    exclusion: Exclusion | None, provider_out: bool, state: MinuteCode
) -> MinuteCode:
    """``classify`` for a minute whose results were already judged UP, DOWN or
    UNMONITORED (by one location, or by the quorum of several)."""
    if exclusion is not None:
        return EXCLUSION_CODE[exclusion]
    if state is MinuteCode.UNMONITORED:
        return MinuteCode.UNMONITORED
    if provider_out:
        return MinuteCode.PROVIDER
    return state


def quorum_state(
    states: Mapping[str, MinuteCode], quorum: int
) -> tuple[MinuteCode, tuple[str, ...]]:
    """The minute as several locations saw it (each location's own UP, DOWN or
    UNMONITORED), and the locations at fault.

    Unmonitored when fewer than ``quorum`` locations measured it; down when at least
    ``quorum`` of them saw it down; else up, and the locations that saw it down are at
    fault: their own network path failed, not the service (DESIGN decision 9).
    """
    measured = {loc: s for loc, s in states.items() if s is not MinuteCode.UNMONITORED}
    if len(measured) < quorum:
        return MinuteCode.UNMONITORED, ()
    down = tuple(sorted(loc for loc, s in measured.items() if s is MinuteCode.DOWN))
    if len(down) >= quorum:
        return MinuteCode.DOWN, ()
    return MinuteCode.UP, down


@dataclass(frozen=True, slots=True)
class ObjectiveKey:
    """Identifies an objective across the daemon."""

    service: str
    objective: str


@dataclass(frozen=True, slots=True)
class _Availability:
    key: ObjectiveKey
    probes: tuple[str, ...]
    down_ratio: float


@dataclass(frozen=True, slots=True)
class MinuteDecision:
    """One minute decided for the services asked for (and their providers)."""

    #: Per service: why the minute does not count for its latency objectives, or None.
    exclusions: dict[str, Exclusion | None]
    #: Per availability objective: the minute's code.
    codes: dict[ObjectiveKey, MinuteCode]
    #: Per availability objective counted up although some locations saw it down: those
    #: locations (location faults; empty with one location).
    faults: dict[ObjectiveKey, tuple[str, ...]] = field(default_factory=dict)


ExclusionOf = Callable[[str, int], Exclusion | None]


class MinuteClassifier:
    """Decides a minute for every service, providers first, from its probes' rollups.

    Args:
        config: services, probes, availability objectives and dependencies.
        exclusion: ``(service, minute) -> Exclusion | None`` (service hours and announced
            maintenance: ``Eligibility.exclusion``).
    """

    def __init__(self, config: Config, exclusion: ExclusionOf) -> None:
        self._exclusion = exclusion
        #: Locations that must agree for a minute to be down (or measured at all).
        self.quorum = config.locations.quorum_of(config.instance.location)
        self._depends_on = {s.name: tuple(s.depends_on) for s in config.services}
        self._probes = {s.name: tuple(p.name for p in s.probes) for s in config.services}
        self.order = _provider_order(self._depends_on)
        #: Per service: itself and its providers (transitively), providers first.
        self._chains = {name: self._chain(name) for name in self.order}
        #: Per service: itself and the services that depend on it (transitively): whose
        #: decisions a change of its minute can change.
        self.affected = {
            name: frozenset(s for s in self.order if name in self._chains[s]) for name in self.order
        }
        self._availability: dict[str, list[_Availability]] = {s.name: [] for s in config.services}
        for service in config.services:
            for objective in service.objectives:
                if objective.kind == "availability":
                    self._availability[service.name].append(
                        _Availability(
                            ObjectiveKey(service.name, objective.name),
                            tuple(service.probes_of(objective)),
                            objective.down_ratio,
                        )
                    )

    def objectives_of(self, service: str) -> list[ObjectiveKey]:
        """The availability objectives of ``service``."""
        return [a.key for a in self._availability[service]]

    def chain(self, service: str) -> list[str]:
        """``service`` and every provider it depends on, providers first."""
        return self._chains[service]

    def decide(
        self,
        minute: int,
        rollups: Mapping[ProbeId, Rollup],
        only: str | Iterable[str] | None = None,
        by_location: Mapping[str, Mapping[ProbeId, Rollup]] | None = None,
    ) -> MinuteDecision:
        """Classify ``minute`` for every service, or only for ``only`` (a service, or
        several) and their providers.

        A provider is "out" in a minute it was down (any of its availability objectives,
        or all its probes together) or in maintenance; the dependant's eligible minutes
        with results then count as ``provider_unavailable``.

        With ``by_location`` (each location's attempts and successes per probe) up and down
        are decided by the quorum of locations (``quorum_state``) instead of from
        ``rollups``, which then only carry latency.
        """
        exclusions: dict[str, Exclusion | None] = {}
        out: dict[str, bool] = {}
        codes: dict[ObjectiveKey, MinuteCode] = {}
        faults: dict[ObjectiveKey, tuple[str, ...]] = {}
        for service in self._services(only):
            exclusion = self._exclusion(service, minute)
            exclusions[service] = exclusion
            whole, _ = self._judge(service, self._probes[service], 0.5, rollups, by_location)
            out[service] = exclusion is Exclusion.MAINTENANCE or whole is MinuteCode.DOWN
            provider_out = any(out.get(p, False) for p in self._depends_on[service])
            for objective in self._availability[service]:
                state, at_fault = self._judge(
                    service, objective.probes, objective.down_ratio, rollups, by_location
                )
                code = classify_state(exclusion, provider_out, state)
                codes[objective.key] = code
                if code is MinuteCode.DOWN:
                    out[service] = True
                elif code is MinuteCode.UP and at_fault:
                    faults[objective.key] = at_fault
        return MinuteDecision(exclusions, codes, faults)

    def _judge(
        self,
        service: str,
        probes: Iterable[str],
        down_ratio: float,
        rollups: Mapping[ProbeId, Rollup],
        by_location: Mapping[str, Mapping[ProbeId, Rollup]] | None,
    ) -> tuple[MinuteCode, tuple[str, ...]]:
        """UP, DOWN or UNMONITORED for these probes of ``service``, and the locations at
        fault."""
        if by_location is None:
            return minute_state(_sum(rollups.get((service, p)) for p in probes), down_ratio), ()
        states = {
            location: minute_state(_sum(seen.get((service, p)) for p in probes), down_ratio)
            for location, seen in by_location.items()
        }
        return quorum_state(states, self.quorum)

    def _services(self, only: str | Iterable[str] | None) -> list[str]:
        """The services a decision covers, providers first."""
        if only is None:
            return self.order
        if isinstance(only, str):
            return self._chains[only]
        needed = {s for name in only for s in self._chains[name]}
        return [name for name in self.order if name in needed]

    def exclusion(self, service: str, minute: int) -> Exclusion | None:
        """Why ``minute`` does not count for ``service`` (its hours, maintenance), or None."""
        return self._exclusion(service, minute)

    def without_results(self, service: str, minute: int) -> MinuteDecision:
        """A minute of ``service`` no probe reported (the monitor was down): excluded by
        its hours or maintenance, else unmonitored."""
        exclusion = self._exclusion(service, minute)
        code = EXCLUSION_CODE[exclusion] if exclusion is not None else MinuteCode.UNMONITORED
        return MinuteDecision(
            {service: exclusion}, {key: code for key in self.objectives_of(service)}
        )

    def _chain(self, service: str) -> list[str]:
        needed = {service}
        stack = [service]
        while stack:
            for provider in self._depends_on[stack.pop()]:
                if provider not in needed:
                    needed.add(provider)
                    stack.append(provider)
        return [name for name in self.order if name in needed]


def _provider_order(depends_on: Mapping[str, Iterable[str]]) -> list[str]:
    """Services with their providers first, so a minute's provider states are known."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for provider in depends_on[name]:
            visit(provider)
        order.append(name)

    for name in depends_on:
        visit(name)
    return order


def _sum(rollups: Iterable[Rollup | None]) -> Rollup:
    total = Rollup()
    for rollup in rollups:
        if rollup is not None:
            total.merge(rollup)
    return total
