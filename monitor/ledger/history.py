"""The one reader of sealed minutes, shared by the daemon's restart (``Ledger.load``) and
the monthly report (``monitor.report.history``): minute rollups and minute decisions read
back, and every minute the daemon never decided (it was killed before persisting, or
down) decided now, by the one classifier, the way sealing would have.

Both callers read compacted summaries where an hour or a day is whole and usable, and come
here for the minutes in between ("summaries where whole, minutes where cut"); what they do
with the minutes differs (running sums for the windows, local days for the report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from monitor.results import ServiceMinute
from monitor.sla.counts import Rollup
from monitor.sla.minutes import Exclusion, MinuteClassifier, MinuteDecision, ProbeId
from monitor.store import HistoryReader, RollupKey


@dataclass(slots=True)
class MinuteSpan:
    """Minutes read back."""

    #: The rollups read: the asked services' minutes, and their providers' minutes where
    #: an undecided minute needed them.
    rollups: list[tuple[RollupKey, Rollup]] = field(default_factory=list)
    #: Per asked (service, minute) up to the decision horizon: the stored decision, or the
    #: one made now.
    decisions: dict[tuple[str, int], ServiceMinute] = field(default_factory=dict)
    #: Decisions made now from results (a daemon persists them, as sealing would have).
    decided_from_results: list[ServiceMinute] = field(default_factory=list)
    #: How many stored decisions were read.
    stored: int = 0


def as_record(service: str, minute: int, decision: MinuteDecision) -> ServiceMinute:
    """A classifier decision for ``service`` as the store keeps it."""
    exclusion = decision.exclusions[service]
    return ServiceMinute(
        service,
        minute,
        None if exclusion is None else exclusion.value,
        {k.objective: c.label for k, c in decision.codes.items() if k.service == service},
    )


class History:
    """Reads minutes back from a store and decides the undecided ones.

    Args:
        store: the sealed history (rollups, minute decisions).
        classifier: the one classifier, on the eligibility known now.
        depends_on: per service, the services it depends on (for deciding a minute, a
            provider's results of the same minute are read too).
    """

    def __init__(
        self,
        store: HistoryReader,
        classifier: MinuteClassifier,
        depends_on: Mapping[str, Sequence[str]],
    ) -> None:
        self.store = store
        self.classifier = classifier
        self.depends_on = depends_on

    async def minutes(
        self, pending: Mapping[str, Sequence[int]], first: int, after: int, decide_until: int
    ) -> MinuteSpan:
        """The minutes ``pending`` lists per service, all within [first, after); minutes
        before ``decide_until`` that have no stored decision are decided now.

        Reads with one query per table over [first, after) when most of it is pending
        (a restart, a day without summaries), else one per service and run of minutes.
        """
        span = MinuteSpan()
        total = sum(len(minutes) for minutes in pending.values())
        if not total:
            return span
        decisions: list[ServiceMinute] = []
        # True when every service's rollups of every pending minute were read (providers
        # included), so deciding a minute needs no further read.
        everything = False
        if total * 2 > len(pending) * (after - first):
            only = next(iter(pending)) if len(pending) == 1 else None
            everything = only is None
            shapes = {(r.start, r.stop) for r in pending.values() if isinstance(r, range)}
            if len(shapes) == 1 and all(isinstance(r, range) for r in pending.values()):
                runs = list(shapes)  # one span for every service (a restart): one read
            else:
                runs = _runs(sorted({m for ms in pending.values() for m in ms}))
            for lo, hi in runs:
                span.rollups += await self.store.rollups(lo, hi, only)
                decisions += await self.store.minute_states(lo, hi, only)
        else:
            for service, minutes in pending.items():
                for lo, hi in _runs(sorted(minutes)):
                    span.rollups += await self.store.rollups(lo, hi, service)
                    decisions += await self.store.minute_states(lo, hi, service)
        span.stored = len(decisions)
        # Membership per service: a range answers `in` at once; a list becomes a set.
        asked = {s: ms if isinstance(ms, range) else set(ms) for s, ms in pending.items()}
        for record in decisions:
            of_service = asked.get(record.service)
            if (
                record.minute < decide_until
                and of_service is not None
                and record.minute in of_service
            ):
                span.decisions[(record.service, record.minute)] = record
        undecided = sorted(
            (
                (service, minute)
                for service, minutes in pending.items()
                for minute in minutes
                if minute < decide_until and (service, minute) not in span.decisions
            ),
            key=lambda key: (key[1], key[0]),
        )
        if undecided:
            await self._decide(span, undecided, everything)
        return span

    async def _decide(
        self, span: MinuteSpan, undecided: list[tuple[str, int]], everything: bool
    ) -> None:
        """Decide the undecided minutes, reading their providers' rollups when missing."""
        by_minute: dict[int, dict[ProbeId, Rollup]] = {}
        for (service, probe, minute), rollup in span.rollups:
            by_minute.setdefault(minute, {})[(service, probe)] = rollup
        if not everything:
            needed = {
                provider
                for service, _ in undecided
                for provider in self.classifier.chain(service)
                if provider != service
            }
            minutes = sorted({m for s, m in undecided if self.depends_on[s]})
            seen = {key for key, _ in span.rollups}
            for provider in sorted(needed):
                for lo, hi in _runs(minutes):
                    for key, rollup in await self.store.rollups(lo, hi, provider):
                        if key not in seen:
                            span.rollups.append((key, rollup))
                            by_minute.setdefault(key[2], {})[(key[0], key[1])] = rollup
        by_minute_undecided: dict[int, list[str]] = {}
        for service, minute in undecided:
            by_minute_undecided.setdefault(minute, []).append(service)
        # A minute without results is decided by its exclusion alone: the states of each
        # (service, exclusion) are made once and shared (a first start decides two months
        # of such minutes for every service).
        blank: dict[tuple[str, Exclusion | None], dict[str, str]] = {}
        for minute, services in by_minute_undecided.items():
            rollups = by_minute.get(minute, {})
            # One decision for the whole minute when several services need one (a restart
            # after a kill): deciding all at once costs what deciding one does.
            many = len(services) > 1 and rollups
            whole = self.classifier.decide(minute, rollups) if many else None
            for service in services:
                has_results = any(key[0] == service for key in rollups)
                if whole is not None:
                    decision = whole
                elif has_results:
                    decision = self.classifier.decide(minute, rollups, only=service)
                else:
                    exclusion = self.classifier.exclusion(service, minute)
                    states = blank.get((service, exclusion))
                    if states is None:
                        decision = self.classifier.without_results(service, minute)
                        states = as_record(service, minute, decision).states
                        blank[(service, exclusion)] = states
                    reason = None if exclusion is None else exclusion.value
                    span.decisions[(service, minute)] = ServiceMinute(
                        service, minute, reason, states
                    )
                    continue
                record = as_record(service, minute, decision)
                if has_results:
                    span.decided_from_results.append(record)
                span.decisions[(service, minute)] = record


def _runs(minutes: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted, distinct minutes as [lo, hi) runs of consecutive minutes."""
    runs: list[tuple[int, int]] = []
    for minute in minutes:
        if runs and runs[-1][1] == minute:
            runs[-1] = (runs[-1][0], minute + 1)
        else:
            runs.append((minute, minute + 1))
    return runs
