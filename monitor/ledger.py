"""The ledger: rolling windows of minute rollups kept in memory for "now".

Every figure is a sum of minute rollups: the sealed minutes of each window (kept as a
running sum, slid forward by subtracting the minute that leaves, read back from the
store) plus the minutes still open in memory. A restart rebuilds the same sums from the
store, so figures before and after a restart are equal (DESIGN decisions 2, 5).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from monitor.config import AvailabilityObjective, Config, LatencyObjective
from monitor.results import Result
from monitor.sla import MinuteState, Rollup, minute_state
from monitor.store import RollupKey, Store

log = logging.getLogger(__name__)

#: Rolling windows, in minutes. The window "1h" at minute m holds minutes (m-60, m].
WINDOWS: dict[str, int] = {"1h": 60, "24h": 1440, "7d": 10080, "30d": 43200}
#: Sealed minutes kept in full for a while, so a result that arrives after its minute was
#: sealed (a long queue, a slow flush) still corrects that minute's availability state.
_RECENT_SEALED = 15

ProbeId = tuple[str, str]  # (service, probe)


@dataclass
class _ProbeLedger:
    """One probe's open minutes and the running sums of its sealed minutes per window."""

    thresholds: tuple[float, ...]
    open: dict[int, Rollup] = field(default_factory=dict)
    sums: dict[str, Rollup] = field(default_factory=lambda: {w: Rollup() for w in WINDOWS})


@dataclass(frozen=True, slots=True)
class ObjectiveKey:
    """Identifies an objective across the daemon."""

    service: str
    objective: str


def probe_thresholds(config: Config) -> dict[ProbeId, tuple[float, ...]]:
    """For every probe, the latency thresholds it is counted against (its objectives')."""
    thresholds: dict[ProbeId, set[float]] = {}
    for service in config.services:
        for probe in service.probes:
            thresholds[(service.name, probe.name)] = set()
        for objective in service.objectives:
            if isinstance(objective, LatencyObjective):
                for name in service.probes_of(objective):
                    thresholds[(service.name, name)].add(objective.threshold)
    return {key: tuple(sorted(values)) for key, values in thresholds.items()}


class Ledger:
    """In-memory windows over minute rollups, for every probe and availability objective.

    Args:
        config: the validated config (services, probes, objectives).
        grace_minutes: a minute is sealed once this many whole minutes have passed after
            it, by when every result that started in it has arrived (the longest probe
            timeout plus the flush interval fit well inside).
    """

    def __init__(self, config: Config, grace_minutes: int = 2) -> None:
        self.config = config
        self.grace_minutes = grace_minutes
        self._probes = {key: _ProbeLedger(t) for key, t in probe_thresholds(config).items()}
        self._availability: dict[ObjectiveKey, tuple[str, ...]] = {}
        for service in config.services:
            for objective in service.objectives:
                if isinstance(objective, AvailabilityObjective):
                    key = ObjectiveKey(service.name, objective.name)
                    self._availability[key] = tuple(service.probes_of(objective))
        #: Sealed minute states of each availability objective (30 days).
        self._states: dict[ObjectiveKey, dict[int, MinuteState]] = {
            key: {} for key in self._availability
        }
        self._recent: dict[int, dict[ProbeId, Rollup]] = {}
        self._window_end: int | None = None  # the current minute the sums are slid to
        self._sealed_through: int | None = None

    # --- feeding ----------------------------------------------------------------------

    def thresholds_of(self, service: str, probe: str) -> tuple[float, ...]:
        """The thresholds a probe's results are counted against."""
        return self._probes[(service, probe)].thresholds

    def add(self, result: Result) -> None:
        """Count a result in its minute (open, or already sealed if it arrived late)."""
        ledger = self._probes.get((result.service, result.probe))
        if ledger is None:
            log.warning("result of unknown probe %s/%s ignored", result.service, result.probe)
            return
        minute = result.minute
        if self._sealed_through is None or minute > self._sealed_through:
            rollup = ledger.open.get(minute)
            if rollup is None:
                rollup = ledger.open[minute] = Rollup()
            rollup.add(result.ok, result.outcome.value, result.latency_s, ledger.thresholds)
            return
        # Late: its minute is sealed. Add it to every window still holding that minute.
        late = Rollup()
        late.add(result.ok, result.outcome.value, result.latency_s, ledger.thresholds)
        end = self._window_end if self._window_end is not None else minute
        for window, length in WINDOWS.items():
            if minute > end - length:
                ledger.sums[window].merge(late)
        recent = self._recent.get(minute)
        if recent is not None:
            recent.setdefault((result.service, result.probe), Rollup()).merge(late)
            self._restate(minute, recent)
        else:
            log.warning(
                "result of %s/%s for minute %d arrived too late to correct availability",
                result.service,
                result.probe,
                minute,
            )

    # --- time ---------------------------------------------------------------------------

    async def advance(self, now: float, store: Store) -> None:
        """Slide every window to the minute of ``now`` and seal the minutes past grace.

        Minutes leaving a window are read back from ``store``, which must already hold
        every result of them (they are far older than the grace period).
        """
        current = int(now // 60)
        if self._window_end is None:
            self._window_end = current
        while self._window_end < current:
            self._window_end += 1
            await self._drop_leaving(self._window_end, store)
        seal_through = current - self.grace_minutes - 1
        if self._sealed_through is None:
            # Never loaded from a store: start sealing at the oldest open minute.
            oldest = min((m for p in self._probes.values() for m in p.open), default=None)
            start = seal_through if oldest is None else min(oldest - 1, seal_through)
            self._sealed_through = start
        while self._sealed_through < seal_through:
            self._sealed_through += 1
            self._seal(self._sealed_through)

    async def _drop_leaving(self, end: int, store: Store) -> None:
        """Subtract, from each window ending at minute ``end``, the minute that left it."""
        for window, length in WINDOWS.items():
            leaving = end - length
            for (service, probe, _), rollup in await store.rollups(leaving, leaving + 1):
                ledger = self._probes.get((service, probe))
                if ledger is not None:
                    ledger.sums[window].merge(rollup, sign=-1)
        oldest = end - max(WINDOWS.values())
        for states in self._states.values():
            states.pop(oldest, None)

    def _seal(self, minute: int) -> None:
        """Move a minute from open to the window sums and fix its availability state."""
        sealed: dict[ProbeId, Rollup] = {}
        end = self._window_end if self._window_end is not None else minute
        for key, ledger in self._probes.items():
            rollup = ledger.open.pop(minute, None)
            if rollup is None:
                continue
            sealed[key] = rollup
            for window, length in WINDOWS.items():
                if minute > end - length:
                    ledger.sums[window].merge(rollup)
        self._restate(minute, sealed)
        self._recent[minute] = sealed
        for old in [m for m in self._recent if m <= minute - _RECENT_SEALED]:
            del self._recent[old]

    def _restate(self, minute: int, rollups: Mapping[ProbeId, Rollup]) -> None:
        for key, probes in self._availability.items():
            total = _sum(rollups.get((key.service, p)) for p in probes)
            self._states[key][minute] = minute_state(total)

    # --- restart ------------------------------------------------------------------------

    async def load(self, store: Store, now: float) -> None:
        """Rebuild every window from the store, as if the daemon had never stopped."""
        current = int(now // 60)
        self._window_end = current
        self._sealed_through = current - self.grace_minutes - 1
        longest = max(WINDOWS.values())
        by_minute: dict[int, dict[ProbeId, Rollup]] = {}
        for (service, probe, minute), rollup in await store.rollups(
            current - longest + 1, current + 1
        ):
            ledger = self._probes.get((service, probe))
            if ledger is None:
                continue  # a probe removed from the config since
            if minute > self._sealed_through:
                ledger.open[minute] = rollup
                continue
            for window, length in WINDOWS.items():
                if minute > current - length:
                    ledger.sums[window].merge(rollup)
            by_minute.setdefault(minute, {})[(service, probe)] = rollup
        for minute, rollups in by_minute.items():
            self._restate(minute, rollups)
            if minute > self._sealed_through - _RECENT_SEALED:
                self._recent[minute] = rollups

    # --- reading ------------------------------------------------------------------------

    def window_rollup(self, service: str, probes: Iterable[str], window: str, now: float) -> Rollup:
        """The sum of the given probes' rollups over ``window`` ending at ``now``."""
        current = int(now // 60)
        length = WINDOWS[window]
        total = Rollup()
        for name in probes:
            ledger = self._probes[(service, name)]
            total.merge(ledger.sums[window])
            for minute, rollup in ledger.open.items():
                if current - length < minute <= current:
                    total.merge(rollup)
        return total

    def minute_states(self, key: ObjectiveKey, window: str, now: float) -> dict[MinuteState, int]:
        """Counts of up, down and unmonitored minutes of an availability objective over
        ``window`` ending at ``now``; the current, still open minutes count as they stand
        (a minute with no result yet is not counted as unmonitored until it is sealed)."""
        current = int(now // 60)
        length = WINDOWS[window]
        states = self._states[key]
        counts = dict.fromkeys(MinuteState, 0)
        first = current - length + 1
        sealed_end = min(
            self._sealed_through if self._sealed_through is not None else current, current
        )
        for minute in range(first, sealed_end + 1):
            counts[states.get(minute, MinuteState.UNMONITORED)] += 1
        probes = self._availability[key]
        for minute in range(max(first, sealed_end + 1), current + 1):
            total = _sum(self._probes[(key.service, p)].open.get(minute) for p in probes)
            if total.attempts:
                counts[minute_state(total)] += 1
        return counts


def _sum(rollups: Iterable[Rollup | None]) -> Rollup:
    total = Rollup()
    for rollup in rollups:
        if rollup is not None:
            total.merge(rollup)
    return total


__all__ = ["WINDOWS", "Ledger", "ObjectiveKey", "ProbeId", "RollupKey", "probe_thresholds"]
