"""The ledger: rolling and calendar windows over minute rollups, kept in memory for "now".

Every figure is a sum of minute rollups: the sealed minutes of each window (kept as a
running sum; a rolling window slides by subtracting the minute that leaves it, read back
from the store) plus the minutes still open in memory. Sealing a minute decides, once, what
it counts as (eligible, outside service hours, in maintenance; up, down, unmonitored,
provider unavailable); the decision is persisted so a restart rebuilds the same sums
(DESIGN decisions 2, 3, 5). Minutes are classified by ``monitor.sla.minutes`` only.

One piece (~950 lines): sealing, the restart that rebuilds the sums and the re-decision of
sealed minutes all change the same running sums and minute rings, and each must leave them
as the other two would; kept together so those invariants are read in one place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo

from monitor.config import Config
from monitor.ledger.history import History
from monitor.ledger.ring import RING, MinuteRing
from monitor.results import DaySummary, HourSummary, Result, ServiceMinute
from monitor.sla.counts import Counted, Rollup, count_result
from monitor.sla.eligibility import Eligibility
from monitor.sla.figures import CoverageBasis
from monitor.sla.minutes import (
    EXCLUSION_CODE,
    Exclusion,
    MinuteClassifier,
    MinuteCode,
    MinuteDecision,
    ObjectiveKey,
    ProbeId,
)
from monitor.sla.objectives import probe_thresholds
from monitor.sla.windows import (
    ROLLING,
    WINDOWS,
    month_bounds,
    month_of,
    next_month,
    previous_month,
    window_range,
)
from monitor.store import HistoryReader, RollupKey, RollupReader, SharedMinute, SharedMinutes
from monitor.store.base import DecideMinute

log = logging.getLogger(__name__)

_DAY = 1440  # minutes in a UTC day
#: Sealed minutes kept in full for a while, so a result that arrives after its minute was
#: sealed (a long queue, a slow flush) still corrects that minute's availability state.
_RECENT_SEALED = 15
#: Sealed minutes whose location faults are kept (for the location-fault alert).
_FAULTS_KEPT = 60
#: At most this many minutes are sealed per ``advance``: after a forward step of the wall
#: clock (or a long stall) the backlog is sealed over several ticks, not in one blocking
#: loop, and the event loop is yielded to every ``_SEAL_YIELD`` minutes.
SEAL_PER_ADVANCE = _DAY
_SEAL_YIELD = 60


@dataclass
class _ProbeLedger:
    """One probe's open minutes, and the probe groups its sealed minutes are summed into."""

    thresholds: tuple[float, ...]
    open: dict[int, Rollup] = field(default_factory=dict)
    groups: list[dict[str, Rollup]] = field(default_factory=list)

    def add_sealed(self, windows: Iterable[str], rollup: Rollup, sign: int = 1) -> None:
        """Add (or remove) a sealed minute to the sums of every group of this probe."""
        for sums in self.groups:
            for window in windows:
                sums[window].merge(rollup, sign)


class SealListener(Protocol):
    """Told what sealing counts, as it is counted (Prometheus's post-exclusion counters)."""

    def minute_sealed(self, minute: int, codes: Mapping[ObjectiveKey, MinuteCode]) -> None:
        """A minute was sealed with these availability codes."""

    def rollup_counted(self, probe: ProbeId, rollup: Rollup) -> None:
        """A sealed, eligible rollup of ``probe`` entered the window sums (at sealing, or
        a late result of a sealed minute)."""

    def result_too_late(self, probe: ProbeId) -> None:
        """A result came for a minute sealed beyond the re-decision horizon (a backward
        step of the wall clock, a long stall): counted in latency, not in availability."""

    def location_faults(self, minute: int, faults: Mapping[ObjectiveKey, tuple[str, ...]]) -> None:
        """A minute was sealed up for these objectives although these locations saw it
        down (their own path failed); called for every sealed minute, empty when none."""


class Ledger:
    """In-memory windows over minute rollups, for every probe and availability objective.

    Args:
        config: the validated config (services, probes, objectives).
        eligibility: service hours and maintenance (shared with the daemon, which reloads
            stored maintenance windows into it).
        grace_minutes: a minute is sealed once this many whole minutes have passed after
            it, by when every result that started in it has arrived.
        listener: told of each sealed minute and of each rollup it counts.
    """

    def __init__(
        self,
        config: Config,
        eligibility: Eligibility | None = None,
        grace_minutes: int = 2,
        listener: SealListener | None = None,
    ) -> None:
        self.config = config
        #: Told once per sealed minute and once per rollup counted (for counters).
        self.listener = listener
        self.zone = ZoneInfo(config.timezone)
        self.eligibility = eligibility if eligibility is not None else Eligibility(config)
        self.grace_minutes = grace_minutes
        self._probes = {key: _ProbeLedger(t) for key, t in probe_thresholds(config).items()}
        #: The one minute classifier (monitor.sla.minutes), on this ledger's eligibility.
        self.classifier = MinuteClassifier(config, self.eligibility.exclusion)
        self._order = self.classifier.order
        #: Per service: its probes' series (and those of one location's results).
        self._service_probes: dict[str, list[str]] = {s.name: [] for s in config.services}
        for name, probe in self._probes:
            self._service_probes[name].append(probe)
        self._objectives_of = {
            s.name: self.classifier.objectives_of(s.name) for s in config.services
        }
        self._depends_on = {s.name: tuple(s.depends_on) for s in config.services}
        #: Bumped by every result of an open minute: the open minutes' decisions, made
        #: for each window of each figure computation, are kept until it changes.
        self._open_stamp = 0
        self._open_memo: dict[tuple[str, int], dict[ObjectiveKey, MinuteCode] | None] = {}
        self._open_sums: dict[tuple[str, tuple[str, ...], int, int], Rollup] = {}
        self._memo_of: tuple[int, int | None, int] = (-1, None, -1)
        availability = [key for keys in self._objectives_of.values() for key in keys]
        #: Per service: was the sealed minute eligible (UP) or excluded (its reason)?
        self._exclusions = {s.name: MinuteRing() for s in config.services}
        #: Per availability objective: the sealed minute's code.
        self._states = {key: MinuteRing() for key in availability}
        self._recent: dict[int, dict[ProbeId, Rollup]] = {}
        self._window_end: int | None = None  # the current minute the sums are slid to
        self._sealed_through: int | None = None
        self._late_warned: int | None = None  # sealed_through when late results were logged
        self._month: tuple[int, int] | None = None  # (year, month) of the "month" sums
        self._month_first = 0  # first minute of that month, and of the one before
        self._previous_month_first = 0
        #: Decisions made since the last call of ``take_decisions`` (to persist).
        self._decisions: list[ServiceMinute] = []
        #: Eligible sealed rollups of the hour being sealed, and the last complete hours
        #: (kept for late results), for the compacted hour summaries.
        self._hour_acc: dict[ProbeId, Rollup] = {}
        self._recent_hours: dict[int, dict[ProbeId, Rollup]] = {}
        self._hours_out: dict[tuple[str, int], HourSummary] = {}
        #: Running sums of sealed, eligible minutes per window, kept per group of probes an
        #: objective counts (objectives over the same probes share one), so reading a
        #: figure never sums probes.
        self._groups: dict[tuple[str, tuple[str, ...]], dict[str, Rollup]] = {}
        self._staged: dict[tuple[ProbeId, tuple[str, ...]], Rollup] = {}
        #: With several locations: the store deciding each minute once for all of them,
        #: and whether this daemon's own results of a minute are all written.
        self._shared: tuple[SharedMinutes, Callable[[int], bool]] | None = None
        #: The location faults of the last sealed minutes (several locations only).
        self._faults: dict[int, dict[ObjectiveKey, tuple[str, ...]]] = {}
        for service in config.services:
            for objective in service.objectives:
                self._group(service.name, tuple(service.series_of(objective)))

    def share(self, store: SharedMinutes, written: Callable[[int], bool]) -> None:
        """Decide minutes with the other locations: each is sealed from what every location
        wrote to ``store`` (pooled rollups, the quorum of the locations' verdicts), once
        ``written(minute)`` says this daemon's own results of it are in the store; a result
        arriving after its minute was decided counts in no figure (the store counts it)."""
        self._shared = (store, written)

    def _group(self, service: str, probes: tuple[str, ...]) -> dict[str, Rollup]:
        key = (service, probes)
        sums = self._groups.get(key)
        if sums is None:
            sums = self._groups[key] = {w: Rollup() for w in WINDOWS}
            for probe in probes:
                self._probes[(service, probe)].groups.append(sums)
        return sums

    # --- feeding ----------------------------------------------------------------------

    def count(self, result: Result) -> Counted:
        """What the result adds to a rollup of its probe (against its thresholds)."""
        ledger = self._probes.get((result.service, result.probe))
        return _count(result, ledger)

    def add(self, result: Result, counted: Counted | None = None, series: bool = False) -> Counted:
        """Count a result in its minute (open, or already sealed if it arrived late);
        returns its counts, worked out once (or given: ``count`` of it), for the store's
        rollup of the same minute. ``series``: it is a result counted again in the series
        of its location alone, so a late one re-decides nothing and is not counted late
        twice (its probe's own result did both)."""
        ledger = self._probes.get((result.service, result.probe))
        if counted is None:
            counted = _count(result, ledger)
        if ledger is None:
            log.warning("result of unknown probe %s/%s ignored", result.service, result.probe)
            return counted
        minute = result.minute
        if self._sealed_through is None or minute > self._sealed_through:
            rollup = ledger.open.get(minute)
            if rollup is None:
                rollup = ledger.open[minute] = Rollup()
            rollup.add_counted(counted)
            self._open_stamp += 1
            return counted
        if self._shared is not None:
            return counted  # decided for every location: the store counts it as late
        # Late: its minute is sealed. Count it where that minute was counted.
        late = Rollup()
        late.add_counted(counted)
        key = (result.service, result.probe)
        if self._exclusions[result.service][minute] == MinuteCode.UP:
            ledger.add_sealed(self._windows_holding(minute), late)
            if self.listener is not None:
                self.listener.rollup_counted(key, late)
            hour = minute // 60
            if hour in self._recent_hours:
                self._recent_hours[hour].setdefault(key, Rollup()).merge(late)
            elif (self._sealed_through + 1) % 60 and hour == self._sealed_through // 60:
                self._hour_acc.setdefault(key, Rollup()).merge(late)  # the hour being sealed
        if series:
            return counted
        recent = self._recent.get(minute)
        # Only the services whose decision this result can change: its own and those that
        # depend on it (a provider's late failure may excuse its dependants' minute).
        affected = self.classifier.affected[result.service]
        if recent is not None:
            recent.setdefault(key, Rollup()).merge(late)
            self._decide(minute, recent, sealed=True, only=affected)
        if minute // 60 in self._recent_hours:
            self._emit_hour(minute // 60, services=affected)  # the compacted hour changed
        if recent is None:
            if self.listener is not None:
                self.listener.result_too_late(key)
            # Once while the sealing stands still (a step back), not once per result.
            if self._sealed_through != self._late_warned:
                self._late_warned = self._sealed_through
                log.warning(
                    "results of minute %d (%s/%s, ...) arrived %d minutes after it was "
                    "sealed: counted in latency, too late to correct availability",
                    minute,
                    result.service,
                    result.probe,
                    self._sealed_through - minute,
                )
        return counted

    def _windows_holding(self, minute: int) -> list[str]:
        """The windows whose sealed sums include ``minute``."""
        end = self._window_end if self._window_end is not None else minute
        windows = [w for w, length in ROLLING.items() if minute > end - length]
        if self._month is not None:
            if minute >= self._month_first:
                windows.append("month")
            elif minute >= self._previous_month_first:
                windows.append("previous_month")
        return windows

    def _set_month(self, month: tuple[int, int]) -> None:
        self._month = month
        self._month_first = month_bounds(*month, self.zone)[0]
        self._previous_month_first = month_bounds(*previous_month(*month), self.zone)[0]

    # --- time ---------------------------------------------------------------------------

    async def advance(self, now: float, store: RollupReader) -> None:
        """Slide every window to the minute of ``now`` and seal the minutes past grace.

        Minutes leaving a window are read back from ``store``, which must already hold
        every result of them (they are far older than the grace period).
        """
        current = int(now // 60)
        if self._window_end is None:
            self._window_end = current
        if self._sealed_through is not None and current - self._window_end > max(ROLLING.values()):
            # Every minute sealed so far has left every rolling window: empty them at
            # once rather than reading back minute by minute what leaves.
            self._window_end = current
            for sums in self._groups.values():
                for window in ROLLING:
                    sums[window] = Rollup()
        while self._window_end < current:
            self._window_end += 1
            await self._drop_leaving(self._window_end, store)
        seal_through = current - self.grace_minutes - 1
        if self._sealed_through is None:
            # Never loaded from a store: start sealing at the oldest open minute.
            oldest = min((m for p in self._probes.values() for m in p.open), default=None)
            start = seal_through if oldest is None else min(oldest - 1, seal_through)
            self._sealed_through = start
        seal_through = min(seal_through, self._sealed_through + SEAL_PER_ADVANCE)
        while self._sealed_through < seal_through:
            minute = self._sealed_through + 1
            shared = None
            if self._shared is not None:
                store_of_all, written = self._shared
                if not written(minute):
                    break  # this daemon's own results of it are not all in the store yet
                shared = await store_of_all.decide_minute(minute, self._decider(minute))
            self._sealed_through = minute
            self._seal(minute, shared)
            if minute % _SEAL_YIELD == 0:
                await asyncio.sleep(0)

    def _decider(self, minute: int) -> DecideMinute:
        """How the store has ``minute`` decided when no location did before."""

        def decide(
            pooled: Mapping[ProbeId, Rollup], by_location: Mapping[str, Mapping[ProbeId, Rollup]]
        ) -> list[ServiceMinute]:
            return _service_minutes(
                minute, self.classifier.decide(minute, pooled, None, by_location)
            )

        return decide

    async def _drop_leaving(self, end: int, store: RollupReader) -> None:
        """Subtract, from each rolling window ending at minute ``end``, the minute that
        left it, if it was counted (eligible)."""
        if self._sealed_through is None:
            return
        # Never sealed, so never added: only minutes up to the last sealed one leave.
        leaving = {
            end - length: window
            for window, length in ROLLING.items()
            if end - length <= self._sealed_through
        }
        if not leaving:
            return
        for (service, probe, minute), rollup in await store.rollups_at(list(leaving)):
            ledger = self._probes.get((service, probe))
            if ledger is not None and self._exclusions[service][minute] == MinuteCode.UP:
                ledger.add_sealed((leaving[minute],), rollup, sign=-1)

    def _roll_month(self, minute: int) -> None:
        """Start new calendar sums when ``minute`` lies in a later month than the sums."""
        month = month_of(minute, self.zone)
        if self._month is None:
            self._set_month(month)
            return
        if month <= self._month:
            return
        for sums in self._groups.values():
            if month == next_month(*self._month):
                sums["previous_month"] = sums["month"]
            else:  # a whole month passed with the daemon down: nothing sealed in it
                sums["previous_month"] = Rollup()
            sums["month"] = Rollup()
        self._set_month(month)

    def _seal(self, minute: int, shared: SharedMinute | None = None) -> None:
        """Move a minute from open to the window sums and decide what it counts as (or,
        with several locations, take every location's rollups and the decision ``shared``
        holds)."""
        self._roll_month(minute)
        sealed: dict[ProbeId, Rollup] = {}
        for key, ledger in self._probes.items():
            rollup = ledger.open.pop(minute, None)
            if rollup is not None:
                sealed[key] = rollup
        if shared is None:
            decisions, codes = self._decide(minute, sealed, sealed=True)
        else:
            sealed = {key: r for key, r in shared.rollups.items() if key in self._probes}
            decisions, codes = self._adopt(minute, shared.decisions)
        if shared is not None:
            self._faults[minute] = _faults_of(shared.decisions)
            self._faults.pop(minute - _FAULTS_KEPT, None)
        if self.listener is not None:
            self.listener.minute_sealed(minute, codes)
            if shared is not None:
                self.listener.location_faults(minute, self._faults[minute])
        windows = self._windows_holding(minute)
        for key, rollup in sealed.items():
            if key[0] in decisions and decisions[key[0]] is None:
                self._probes[key].add_sealed(windows, rollup)
                if self.listener is not None:
                    self.listener.rollup_counted(key, rollup)
                self._hour_acc.setdefault(key, Rollup()).merge(rollup)
        if (minute + 1) % 60 == 0:  # the hour is complete: compact it
            hour = minute // 60
            self._recent_hours[hour], self._hour_acc = self._hour_acc, {}
            for old in [h for h in self._recent_hours if h < hour - 1]:
                del self._recent_hours[old]
            self._emit_hour(hour)
        self._recent[minute] = sealed
        for old in [m for m in self._recent if m <= minute - _RECENT_SEALED]:
            del self._recent[old]

    def _decide(
        self,
        minute: int,
        rollups: Mapping[ProbeId, Rollup],
        *,
        sealed: bool,
        only: str | Iterable[str] | None = None,
        by_location: Mapping[str, Mapping[ProbeId, Rollup]] | None = None,
    ) -> tuple[dict[str, Exclusion | None], dict[ObjectiveKey, MinuteCode]]:
        """Classify one minute with the SLA core's classifier, for every service or only
        ``only`` and its providers. When ``sealed``, the decisions are recorded in the
        rings and queued for the store."""
        decision = self.classifier.decide(minute, rollups, only, by_location)
        exclusions, codes = decision.exclusions, decision.codes
        if sealed:
            for service, exclusion in exclusions.items():
                self._exclusions[service][minute] = EXCLUSION_CODE[exclusion]
            for key, code in codes.items():
                self._states[key][minute] = code
            self._decisions.extend(_service_minutes(minute, decision))
        return exclusions, codes

    def _adopt(
        self, minute: int, stored: Iterable[ServiceMinute]
    ) -> tuple[dict[str, Exclusion | None], dict[ObjectiveKey, MinuteCode]]:
        """Record a minute as the locations decided it (``_decide`` for a decision made
        elsewhere: already stored, so not queued)."""
        exclusions: dict[str, Exclusion | None] = {}
        codes: dict[ObjectiveKey, MinuteCode] = {}
        for decided in stored:
            if decided.service not in self._exclusions:
                continue  # a service another daemon's config has and this one's has not
            exclusion = None if decided.exclusion is None else Exclusion(decided.exclusion)
            exclusions[decided.service] = exclusion
            self._exclusions[decided.service][minute] = EXCLUSION_CODE[exclusion]
            for objective, label in decided.states.items():
                key = ObjectiveKey(decided.service, objective)
                if key in self._states:
                    codes[key] = MinuteCode.from_label(label)
                    self._states[key][minute] = codes[key]
        return exclusions, codes

    def _emit_hour(
        self,
        hour: int,
        sums: Mapping[ProbeId, Rollup] | None = None,
        services: Iterable[str] | None = None,
    ) -> None:
        """Queue the compacted summary of a complete hour of every service, or of
        ``services`` (its eligible sums: the kept recent ones unless given)."""
        if sums is None:
            sums = self._recent_hours.get(hour, {})
        minutes = range(hour * 60, hour * 60 + 60)
        for service in self._order if services is None else services:
            self._hours_out[(service, hour)] = HourSummary(
                service=service,
                hour=hour,
                exclusions="".join(str(self._exclusions[service][m]) for m in minutes),
                states={
                    key.objective: "".join(str(self._states[key][m]) for m in minutes)
                    for key in self._objectives_of[service]
                },
                rollups={
                    probe: sums[(service, probe)].to_dict()
                    for probe in self._service_probes[service]
                    if (service, probe) in sums
                },
            )

    # --- exclusions that change after sealing ------------------------------------------------

    async def reclassify(self, spans: Iterable[tuple[int, int]], store: RollupReader) -> set[int]:
        """Re-decide the sealed minutes of ``spans`` ([first, end) epoch minutes) that the
        eligibility now excludes differently than when they were sealed: maintenance
        registered or removed since (a window agreed late, added with a back-dated
        announcement), or a report correction declaring the monitor faulty.

        Window sums, minute codes, the queued decisions and the hour summaries are brought
        in line, so ``/api/sla``, a restart, the status page and the monthly report count
        these minutes the same way. Prometheus's minute counters keep the first decision
        (a counter never goes down). Returns the UTC days whose summaries changed.
        """
        if self._sealed_through is None:
            return set()
        sealed = self._sealed_through
        low = sealed - RING + 1
        candidates = sorted(
            {m for first, end in spans for m in range(max(first, low), min(end, sealed + 1))}
        )
        changed = [
            minute
            for minute in candidates
            # UNKNOWN: never loaded or sealed here; its stored decision stays as it is.
            if all(self._exclusions[s][minute] != MinuteCode.UNKNOWN for s in self._order)
            and any(
                self._exclusions[s][minute] != EXCLUSION_CODE[self.eligibility.exclusion(s, minute)]
                for s in self._order
            )
        ]
        if not changed:
            return set()
        by_minute: dict[int, dict[ProbeId, Rollup]] = {}
        for first, end in _minute_runs(changed):
            for (service, probe, minute), rollup in await store.rollups(first, end):
                by_minute.setdefault(minute, {})[(service, probe)] = rollup
        located: dict[int, dict[str, dict[ProbeId, Rollup]]] | None = None
        if self._shared is not None:  # up and down as the locations' quorum saw them
            located = {}
            for first, end in _minute_runs(changed):
                located.update(await self._shared[0].location_counts(first, end))
        hours: set[int] = set()
        for minute in changed:
            before = {s: self._exclusions[s][minute] for s in self._order}
            rollups = by_minute.get(minute, {})
            by_location = None if located is None else located.get(minute, {})
            # No rollups: excluded or unmonitored.
            self._decide(minute, rollups, sealed=True, by_location=by_location)
            windows = self._windows_holding(minute)
            for (service, probe), rollup in rollups.items():
                was = before[service] == MinuteCode.UP
                counts = self._exclusions[service][minute] == MinuteCode.UP
                ledger = self._probes.get((service, probe))
                if ledger is not None and was != counts:
                    ledger.add_sealed(windows, rollup, 1 if counts else -1)
            hours.add(minute // 60)
        for hour in sorted(hours):
            sums = await self._eligible_sums(hour, store)
            if hour * 60 + 59 <= sealed:
                if hour in self._recent_hours:
                    self._recent_hours[hour] = sums
                self._emit_hour(hour, sums)
            else:
                self._hour_acc = sums  # the hour being sealed: its sums so far
        return {hour // 24 for hour in hours if hour * 60 + 59 <= sealed}

    async def _eligible_sums(self, hour: int, store: RollupReader) -> dict[ProbeId, Rollup]:
        """The eligible rollups of the sealed minutes of ``hour``, per probe, from the store."""
        last = min(hour * 60 + 59, self._sealed_through or hour * 60 + 59)
        sums: dict[ProbeId, Rollup] = {}
        for (service, probe, minute), rollup in await store.rollups(hour * 60, last + 1):
            if (service, probe) in self._probes and (
                self._exclusions[service][minute] == MinuteCode.UP
            ):
                sums.setdefault((service, probe), Rollup()).merge(rollup)
        return sums

    def take_hours(self) -> list[HourSummary]:
        """Hour summaries completed since the last call, for the store."""
        hours, self._hours_out = list(self._hours_out.values()), {}
        return hours

    def take_decisions(self) -> list[ServiceMinute]:
        """The minute decisions made since the last call, for the store."""
        decisions, self._decisions = self._decisions, []
        return decisions

    # --- restart ------------------------------------------------------------------------

    async def load(self, store: HistoryReader, now: float) -> None:
        """Rebuild every window from the store, as if the daemon had never stopped.

        Sealed minutes use the decisions persisted when they were sealed. A minute with
        results but no decision (the daemon was killed before persisting it) is decided now
        from its rollups, as sealing would have; a minute with neither (the daemon was down)
        is excluded or unmonitored.
        """
        current = int(now // 60)
        self._window_end = current
        # With several locations the last minute before the grace may be being decided by
        # another daemon right now: leave it to ``advance`` (the store's one decision).
        margin = 1 if self._shared is not None else 0
        sealed = self._sealed_through = current - self.grace_minutes - 1 - margin
        self._set_month(month_of(current, self.zone))
        first = min(self._previous_month_first, current - max(ROLLING.values()) + 1)
        if self._shared is not None:
            # Minutes every daemon stopped before deciding: decided now by the quorum, as
            # sealing would have (not from the pooled rollups alone, as one location's).
            shared = self._shared[0]
            for minute in await shared.undecided_minutes(first, sealed + 1):
                await shared.decide_minute(minute, self._decider(minute))
        first_hour, last_full_hour = first // 60, (sealed + 1) // 60 - 1
        # Hours read minute by minute: those a window starts inside, the recent and
        # partly sealed ones at the end, and any hour never compacted (the daemon was
        # down or killed when it ended). Every other hour is read as one summary row.
        starts = [current - length + 1 for length in ROLLING.values()]
        starts += [self._month_first, self._previous_month_first, first]
        by_minutes = {start // 60 for start in starts if start % 60}
        by_minutes |= set(range((sealed - _RECENT_SEALED) // 60, current // 60 + 1))
        days = await self._whole_days(store, first_hour, last_full_hour, by_minutes)
        in_days = {hour for day in days for hour in range(day * 24, day * 24 + 24)}
        summaries: dict[tuple[str, int], HourSummary] = {}
        rest = [h for h in range(first_hour, last_full_hour + 1) if h not in in_days]
        for low, high in _runs(rest):
            summaries.update(((h.service, h.hour), h) for h in await store.hours(low, high + 1))
        # Complete hours with a summary missing are compacted again while they are read
        # (not the first hour when the range starts inside it: it is read only in part).
        repair = {
            hour
            for hour in rest
            if hour * 60 >= first and any((s, hour) not in summaries for s in self._order)
        }
        by_minutes |= repair
        for summaries_of_day in days.values():
            for day_summary in summaries_of_day:
                self._apply_summary(day_summary)
        for hour in rest:
            if hour not in by_minutes:
                for service in self._order:
                    self._apply_summary(summaries[(service, hour)])
        hours = sorted(h for h in by_minutes if first_hour <= h <= current // 60)
        for low, high in _runs(hours):
            await self._load_minutes(
                store,
                max(low * 60, first),
                min((high + 1) * 60, current + 1),
                repair,
                last_full_hour,
            )
        self._flush_staged()
        if self._shared is not None:
            for decided in await store.minute_states(sealed - _FAULTS_KEPT + 1, sealed + 1):
                faults = self._faults.setdefault(decided.minute, {})
                faults.update(_faults_of([decided]))

    def _stage(self, key: ProbeId, windows: Iterable[str], rollup: Rollup) -> None:
        """Sum a loaded hour or minute with the others that belong to the same windows;
        ``_flush_staged`` then adds each sum once (a tenth of the merges)."""
        staged = self._staged.setdefault((key, tuple(windows)), Rollup())
        staged.merge(rollup)

    def _flush_staged(self) -> None:
        for (key, windows), rollup in self._staged.items():
            ledger = self._probes.get(key)
            if ledger is not None:
                ledger.add_sealed(windows, rollup)
        self._staged = {}

    async def _whole_days(
        self, store: HistoryReader, first_hour: int, last_full_hour: int, by_minutes: set[int]
    ) -> dict[int, list[DaySummary]]:
        """The UTC days read as day summaries: wholly inside the hours read as summaries,
        inside the same windows from their first minute to their last (so one staged sum
        serves the day), and summarised for every service."""
        first_day, end_day = -(-first_hour // 24), (last_full_hour + 1) // 24
        candidates = {
            day
            for day in range(first_day, end_day)
            if not any(hour in by_minutes for hour in range(day * 24, day * 24 + 24))
            and self._windows_holding(day * _DAY) == self._windows_holding(day * _DAY + _DAY - 1)
        }
        if not candidates:
            return {}
        found: dict[int, list[DaySummary]] = {}
        for low, high in _runs(sorted(candidates)):
            for summary in await store.days(low, high + 1):
                found.setdefault(summary.day, []).append(summary)
        services = set(self._order)
        return {
            day: [s for s in found[day] if s.service in services]
            for day in sorted(found)
            if services <= {s.service for s in found[day]}
        }

    def _apply_summary(self, summary: HourSummary | DaySummary) -> None:
        """Take a compacted hour or day: its minute codes and its eligible rollups."""
        if isinstance(summary, HourSummary):
            base, minutes = summary.hour * 60, 60
        else:
            base, minutes = summary.day * _DAY, _DAY
        self._exclusions[summary.service].put_span(base, summary.exclusions)
        for key in self._objectives_of[summary.service]:
            codes = summary.states.get(key.objective)
            self._states[key].put_span(base, codes or str(int(MinuteCode.UNMONITORED)) * minutes)
        windows = tuple(self._windows_holding(base))  # the same for every minute of it
        for probe, body in summary.rollups.items():
            ledger = self._probes.get((summary.service, probe))
            if ledger is None:
                continue  # a probe removed from the config since
            self._stage((summary.service, probe), windows, Rollup.from_dict(body))

    async def _load_minutes(
        self, store: HistoryReader, start: int, end: int, repair: set[int], last_full_hour: int
    ) -> None:
        """Rebuild minutes [start, end) one by one from rollups and minute decisions (the
        shared reader decides the ones never decided, as sealing would have)."""
        sealed = self._sealed_through if self._sealed_through is not None else end
        history = History(store, self.classifier, self._depends_on)
        everything = dict.fromkeys(self._order, range(start, end))
        span = await history.minutes(everything, start, end, decide_until=sealed + 1)
        by_minute: dict[int, dict[ProbeId, Rollup]] = {}
        for (service, probe, minute), rollup in span.rollups:
            ledger = self._probes.get((service, probe))
            if ledger is None:
                continue  # a probe removed from the config since
            if minute > sealed:
                ledger.open[minute] = rollup
                self._open_stamp += 1
            else:
                by_minute.setdefault(minute, {})[(service, probe)] = rollup
        # Sealed but never persisted (the daemon was killed): persist the decision now,
        # and count it (almost always the killed daemon had not sealed it yet; had it
        # sealed but not persisted it, within one flush, Prometheus sees it twice).
        self._decisions += span.decided_from_results
        fresh = {(r.service, r.minute) for r in span.decided_from_results}
        decided = span.decisions
        partial_hour = (sealed + 1) // 60 if (sealed + 1) % 60 else None
        for minute in range(start, min(end, sealed + 1)):
            rollups = by_minute.get(minute, {})
            for service in self._order:
                record = decided[(service, minute)]
                exclusion = Exclusion(record.exclusion) if record.exclusion else None
                self._exclusions[service][minute] = EXCLUSION_CODE[exclusion]
                for key in self._objectives_of[service]:
                    label = record.states.get(key.objective, "unmonitored")
                    self._states[key][minute] = MinuteCode.from_label(label)
                if self.listener is not None and (service, minute) in fresh:
                    self.listener.minute_sealed(
                        minute,
                        {
                            k: MinuteCode(self._states[k][minute])
                            for k in self._objectives_of[service]
                        },
                    )
            hour = minute // 60
            for (service, probe), rollup in rollups.items():
                if self._exclusions[service][minute] != MinuteCode.UP:
                    continue
                if self.listener is not None and (service, minute) in fresh:
                    self.listener.rollup_counted((service, probe), rollup)
                self._stage((service, probe), self._windows_holding(minute), rollup)
                if hour in repair:
                    compacted = self._recent_hours.setdefault(hour, {})
                    compacted.setdefault((service, probe), Rollup()).merge(rollup)
                elif hour == partial_hour:
                    self._hour_acc.setdefault((service, probe), Rollup()).merge(rollup)
            if minute > sealed - _RECENT_SEALED:
                self._recent[minute] = rollups
            if (minute + 1) % 60 == 0 and hour in repair:
                self._recent_hours.setdefault(hour, {})
                self._emit_hour(hour)  # compact it now, so the next restart reads one row
                if hour < last_full_hour - 1:
                    del self._recent_hours[hour]  # keep only the last two for late results

    # --- reading ------------------------------------------------------------------------

    def _open_eligible(self, service: str, minute: int) -> bool:
        return self.eligibility.exclusion(service, minute) is None

    def window_range(self, window: str, now: float) -> tuple[int, int]:
        """The minutes [first, last] a window covers at ``now``."""
        return window_range(window, now, self.zone)

    def window_rollup(self, service: str, probes: Iterable[str], window: str, now: float) -> Rollup:
        """The sum of the given probes' eligible rollups over ``window`` ending at ``now``."""
        first, last = self.window_range(window, now)
        names = tuple(probes)
        which = self._sums_name(window, now)
        group = self._group_of(service, names)
        total = Rollup() if which is None else group[which].copy()
        total.merge(self._open_sum(service, names, first, last))
        return total

    def _open_sum(self, service: str, names: tuple[str, ...], first: int, last: int) -> Rollup:
        """The probes' eligible open rollups in [first, last], summed once per change of
        the open minutes (the windows of one figure computation share it)."""
        self._check_memo()
        if self._sealed_through is not None:
            first = max(first, self._sealed_through + 1)  # the same for every long window
        key = (service, names, first, last)
        total = self._open_sums.get(key)
        if total is None:
            total = self._open_sums[key] = Rollup()
            for name in names:
                for minute, rollup in self._probes[(service, name)].open.items():
                    if first <= minute <= last and self._open_eligible(service, minute):
                        total.merge(rollup)
        return total

    def _check_memo(self) -> None:
        """Forget the open minutes' decisions and sums once they may have changed: a result,
        a seal, or a change of maintenance or corrections."""
        stamp = (self._open_stamp, self._sealed_through, self.eligibility.version)
        if stamp != self._memo_of:
            self._open_memo.clear()
            self._open_sums.clear()
            self._memo_of = stamp

    def _group_of(self, service: str, probes: tuple[str, ...]) -> dict[str, Rollup]:
        """The sealed sums per window of an objective's group of probes."""
        group = self._groups.get((service, probes))
        if group is None:
            raise KeyError(f"no objective of {service} counts exactly the probes {probes}")
        return group

    def _sums_name(self, window: str, now: float) -> str | None:
        """Which sealed sums hold ``window`` at ``now``. Calendar sums follow the month of
        the last sealed minute, which lags ``now`` by the grace period."""
        if window in ROLLING:
            return window
        if self._month is None:
            return None
        month = month_of(int(now // 60), self.zone)
        if month == self._month:
            return window
        if month == next_month(*self._month) and window == "previous_month":
            return "month"
        return None

    def coverage_basis(
        self, service: str, probes: Iterable[str], window: str, now: float
    ) -> CoverageBasis:
        """The results of ``probes`` in the eligible sealed minutes of ``window`` and the
        number of those minutes (counted ones, and ones a correction declared unmonitored):
        what a latency objective's coverage is computed from."""
        first, last = self.window_range(window, now)
        which = self._sums_name(window, now)
        group = self._group_of(service, tuple(probes))
        sealed_end = min(self._sealed_through if self._sealed_through is not None else -1, last)
        # The window's counts are kept from the last call (MinuteRing.window_count).
        due = (MinuteCode.UP, MinuteCode.UNMONITORED)
        counts = self._exclusions[service].window_count(window, first, sealed_end)
        eligible = sum(counts.get(code, 0) for code in due)
        attempts = 0 if which is None else group[which].attempts
        return CoverageBasis(attempts, eligible)

    def minute_counts(self, key: ObjectiveKey, window: str, now: float) -> dict[MinuteCode, int]:
        """Counts of each minute code of an availability objective over ``window``.

        Sealed minutes count as decided; the open minutes as they stand now (an open
        minute with no result yet is not counted until it is sealed).
        """
        first, last = self.window_range(window, now)
        sealed_end = min(self._sealed_through if self._sealed_through is not None else last, last)
        sealed = self._states[key].window_count(window, first, sealed_end)
        counts = {MinuteCode(c): n for c, n in sealed.items()}
        # Minutes before the ring's reach (never happens for the configured windows).
        counts.pop(MinuteCode.UNKNOWN, None)
        for minute in range(max(first, sealed_end + 1), last + 1):
            codes = self._open_codes(key.service, minute)
            if codes is not None:
                code = codes[key]
                counts[code] = counts.get(code, 0) + 1
        return counts

    def _open_codes(self, service: str, minute: int) -> dict[ObjectiveKey, MinuteCode] | None:
        """The codes an open minute of ``service`` has as it stands (None: no result of
        it yet), decided once per change of the open minutes or the eligibility."""
        if self._shared is not None:
            return None  # what the locations decide is not known before they decide it
        self._check_memo()
        key = (service, minute)
        if key in self._open_memo:
            return self._open_memo[key]
        rollups = {
            (s, p): self._probes[(s, p)].open[minute]
            for s in (service, *self._depends_on[service])
            for p in self._service_probes[s]
            if minute in self._probes[(s, p)].open
        }
        codes = None
        if any(k[0] == service for k in rollups):
            codes = self._decide(minute, rollups, sealed=False, only=service)[1]
        self._open_memo[key] = codes
        return codes

    def codes_between(
        self, key: ObjectiveKey, first: int, last: int, now: float
    ) -> list[MinuteCode]:
        """The code of each minute in [first, last] of an availability objective: as
        sealed, or as it stands for a minute still open (UNKNOWN when it has no result)."""
        codes = []
        for minute in range(first, last + 1):
            if self.is_sealed(minute):
                codes.append(MinuteCode(self._states[key][minute]))
                continue
            decided = self._open_codes(key.service, minute)
            codes.append(MinuteCode.UNKNOWN if decided is None else decided[key])
        return codes

    @property
    def shared(self) -> bool:
        """Whether minutes are decided with other locations (``share``): an open minute
        then shows nothing until the locations decided it."""
        return self._shared is not None

    @property
    def sealed_through(self) -> int | None:
        """The last sealed (decided) minute, None before the first."""
        return self._sealed_through

    def faults_between(self, first: int, last: int) -> list[dict[ObjectiveKey, tuple[str, ...]]]:
        """Per sealed minute in [first, last] (at most the last hour): the locations at
        fault per availability objective."""
        return [self._faults.get(minute, {}) for minute in range(first, last + 1)]

    def is_sealed(self, minute: int) -> bool:
        """True once the minute's decisions are final."""
        return self._sealed_through is not None and minute <= self._sealed_through


def _count(result: Result, ledger: _ProbeLedger | None) -> Counted:
    thresholds = ledger.thresholds if ledger is not None else ()
    return count_result(result.ok, result.outcome.value, result.latency_s, thresholds)


def _minute_runs(minutes: list[int]) -> list[tuple[int, int]]:
    """Sorted minutes as [first, end) runs of consecutive minutes."""
    return [(first, last + 1) for first, last in _runs(minutes)]


def _runs(hours: list[int]) -> list[tuple[int, int]]:
    """Sorted hours grouped into runs of consecutive hours: [(first, last), ...]."""
    runs: list[tuple[int, int]] = []
    for hour in hours:
        if runs and runs[-1][1] == hour - 1:
            runs[-1] = (runs[-1][0], hour)
        else:
            runs.append((hour, hour))
    return runs


__all__ = ["SEAL_PER_ADVANCE", "Ledger", "RollupKey", "SealListener"]


def _service_minutes(minute: int, decision: MinuteDecision) -> list[ServiceMinute]:
    """A minute's decision as the store keeps it, one record per service."""
    return [
        ServiceMinute(
            service,
            minute,
            None if exclusion is None else exclusion.value,
            {k.objective: c.label for k, c in decision.codes.items() if k.service == service},
            {
                k.objective: list(locations)
                for k, locations in decision.faults.items()
                if k.service == service
            },
        )
        for service, exclusion in decision.exclusions.items()
    ]


def _faults_of(decided: Iterable[ServiceMinute]) -> dict[ObjectiveKey, tuple[str, ...]]:
    """The location faults of a stored decision, per objective."""
    return {
        ObjectiveKey(m.service, objective): tuple(locations)
        for m in decided
        for objective, locations in m.faults.items()
    }
