"""The report's walk through a month, a local day at a time (bounded memory).

The minutes come from the shared reader of sealed history (``monitor.ledger.history``),
the same one the daemon's restart uses, which decides a minute never decided with the one
classifier. What is the report's own: it reads local days (the ledger reads UTC hours and
days), keeps each down minute's failures for the incidents' causes, and applies what is
known now to minutes decided then (maintenance registered late by agreement,
corrections). ``tests/integration/test_one_truth.py`` checks both agree day by day.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.config import AvailabilityObjective, Config, LatencyObjective
from monitor.ledger.history import History
from monitor.report.model import Correction, DayFigures
from monitor.results import HourSummary, ServiceMinute
from monitor.sla.counts import Rollup
from monitor.sla.eligibility import Eligibility
from monitor.sla.figures import (
    CoverageBasis,
    WindowFigures,
    availability_window,
    counts_by_label,
    latency_coverage,
    latency_window,
)
from monitor.sla.minutes import MinuteClassifier, MinuteCode
from monitor.sla.objectives import coverage_floor, runs_per_minute
from monitor.store import Store

# --- reading ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Minute:
    """What one minute of one service counts as in the report."""

    #: Why the minute is excluded: "" (it counts), outside_hours, maintenance, or
    #: "corrected" (a correction declared the monitor faulty then).
    exclusion: str
    states: dict[str, str]  # availability objective -> state label

    @property
    def counted(self) -> bool:
        """Whether latency objectives count the minute's results."""
        return not self.exclusion


@dataclass(slots=True)
class _ObjectiveAcc:
    """Running sums of one objective."""

    days: list[DayFigures] = field(default_factory=list)
    total: Rollup = field(default_factory=Rollup)
    #: Latency only: eligible minutes (counted, or declared unmonitored by a correction).
    eligible_minutes: int = 0
    states: Counter[str] = field(default_factory=Counter)
    down_minutes: list[int] = field(default_factory=list)
    failures: dict[int, dict[str, int]] = field(default_factory=dict)


def _unmonitored_minutes(
    corrections: Sequence[Correction], service: str, first: int, after: int
) -> set[int]:
    """Minutes in [first, after) a correction declared unmonitored for ``service``."""
    minutes: set[int] = set()
    for correction in corrections:
        for span in correction.unmonitored:
            if span.service is None or span.service == service:
                lo = max(first, math.ceil(span.start / 60))
                hi = min(after, math.ceil(span.end / 60))
                minutes.update(range(lo, hi))
    return minutes


def _maintenance_minutes(
    eligibility: Eligibility, service: str, lead_time_s: float, first: int, after: int
) -> set[int]:
    """Minutes in [first, after) that stored or configured maintenance excludes."""
    minutes: set[int] = set()
    for window in eligibility.windows(service):
        lo = max(first, math.ceil(window.effective_start(lead_time_s) / 60))
        hi = min(after, math.ceil(window.end / 60))
        minutes.update(range(lo, hi))
    return minutes


_DOWN_DIGIT = str(int(MinuteCode.DOWN))
_UNKNOWN_DIGIT = str(int(MinuteCode.UNKNOWN))
_ELIGIBLE_DIGIT = str(int(MinuteCode.UP))
_MAINTENANCE_DIGIT = str(int(MinuteCode.MAINTENANCE))
_UNMONITORED_DIGIT = str(int(MinuteCode.UNMONITORED))
_MEASURED_DIGITS = {str(int(c)) for c in (MinuteCode.UP, MinuteCode.DOWN, MinuteCode.PROVIDER)}
#: Exclusions of a minute that still belongs to a latency objective's coverage: none, or a
#: correction (the monitor was faulty: the minute was due results it did not produce).
_ELIGIBLE = ("", "corrected")
_LABEL_OF_DIGIT = {str(int(code)): code.label for code in MinuteCode}


class _Builder:
    """Computes the report of one period, a local day at a time (bounded memory).

    Complete hours are read from the store's compacted hour summaries (one row per
    service and hour, as the daemon's restart reads them) unless the report needs their
    minutes: an hour with a down minute (for the incident's cause), a minute a later
    maintenance window or a correction changes, or a minute the daemon never decided.
    Every other minute is read from its minute rollup and its minute decision.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        eligibility: Eligibility,
        services: list[str],
        corrections: Sequence[Correction],
    ) -> None:
        self.config = config
        self.store = store
        self.eligibility = eligibility
        self.services = services
        self.corrections = corrections
        self.lead_time_s = float(config.maintenance_lead_time)
        # The shared reader of sealed minutes, deciding the undecided ones with the one
        # classifier on what is known now.
        self.history = History(
            store,
            MinuteClassifier(config, eligibility.exclusion),
            {s.name: tuple(s.depends_on) for s in config.services},
        )
        self.availability = {
            s: [o.name for o in config.service(s).objectives if o.kind == "availability"]
            for s in services
        }
        self.acc: dict[tuple[str, str], _ObjectiveAcc] = {}
        self.maintenance_minutes: dict[str, set[int]] = {s: set() for s in services}
        self.has_data = False
        #: Per service, the first minute with a measured result.
        self.first_data_minute: dict[str, int] = {}
        for name in services:
            for objective in config.service(name).objectives:
                self.acc[(name, objective.name)] = _ObjectiveAcc()

    async def day(self, date: dt.date, first: int, after: int) -> None:
        """Add the minutes [first, after) of local day ``date``."""
        overlays = {s: self._overlays(s, first, after) for s in self.services}
        summaries = await self._summaries(first, after, overlays)
        # Minutes read one by one: per service, those of hours without a usable summary.
        pending = {s: self._pending(s, first, after, summaries) for s in self.services}
        span = await self.history.minutes(pending, first, after, decide_until=after)
        rollups = span.rollups
        # Data is a measured result: minute decisions alone (all unmonitored, as sealed for
        # the month before the monitor was installed) do not make a report.
        minutes = self._classify(span.decisions, overlays)
        if rollups or any(s.rollups for s in summaries.values()):
            self.has_data = True
            self._note_first(rollups, summaries, minutes)
        sums: dict[tuple[str, str], Rollup] = {}
        down: dict[tuple[str, int], dict[str, Rollup]] = {}
        for (service, probe, minute), rollup in rollups:
            info = minutes.get((service, minute))
            if info is None:
                continue  # a provider's, or a minute a summary covers
            if info.counted:
                day_sum = sums.get((service, probe))
                if day_sum is None:
                    sums[(service, probe)] = rollup.copy()  # `down` may hold the original
                else:
                    day_sum.merge(rollup)
            if "down" in info.states.values():  # kept for the incidents' causes
                down.setdefault((service, minute), {})[probe] = rollup
        counts: dict[tuple[str, str], Counter[str]] = {}
        eligible = {
            name: sum(1 for m in pending[name] if minutes[(name, m)].exclusion in _ELIGIBLE)
            for name in self.services
        }
        for (service, hour), summary in summaries.items():
            eligible[service] += summary.exclusions.count(_ELIGIBLE_DIGIT)
            eligible[service] += summary.exclusions.count(_UNMONITORED_DIGIT)
            for probe, body in summary.rollups.items():
                rollup = Rollup.from_dict(body)
                day_sum = sums.get((service, probe))
                if day_sum is None:
                    sums[(service, probe)] = rollup
                else:
                    day_sum.merge(rollup)
            for name in self.availability[service]:
                digits = summary.states.get(name) or str(int(MinuteCode.UNMONITORED)) * 60
                tally = counts.setdefault((service, name), Counter())
                for digit, n in Counter(digits).items():
                    tally[_LABEL_OF_DIGIT[digit]] += n
            if _MAINTENANCE_DIGIT in summary.exclusions:
                base = hour * 60
                self.maintenance_minutes[service].update(
                    base + i for i, d in enumerate(summary.exclusions) if d == _MAINTENANCE_DIGIT
                )
        for name in self.services:
            settings = self.config.service(name)
            for objective in settings.objectives:
                acc = self.acc[(name, objective.name)]
                probes = settings.series_of(objective)
                if isinstance(objective, LatencyObjective):
                    acc.days.append(
                        self._latency_day(
                            date, after - first, objective, name, probes, sums, eligible[name], acc
                        )
                    )
                else:
                    tally = counts.get((name, objective.name), Counter())
                    acc.days.append(
                        self._availability_day(
                            date,
                            after - first,
                            pending[name],
                            objective,
                            name,
                            probes,
                            minutes,
                            down,
                            tally,
                            acc,
                        )
                    )
            self.maintenance_minutes[name].update(
                m for m in pending[name] if minutes[(name, m)].exclusion == "maintenance"
            )

    def _note_first(
        self,
        rollups: Sequence[tuple[tuple[str, str, int], Rollup]],
        summaries: dict[tuple[str, int], HourSummary],
        minutes: dict[tuple[str, int], _Minute],
    ) -> None:
        """Keep each service's first minute that counted a measured result (results
        outside its hours are stored but do not start the measured period)."""
        firsts = self.first_data_minute
        for (service, _, minute), _ in rollups:
            info = minutes.get((service, minute))
            if info is not None and info.counted and minute < firsts.get(service, minute + 1):
                firsts[service] = minute
        for (service, _), summary in summaries.items():
            if summary.rollups:
                minute = _first_measured(summary)
                if minute < firsts.get(service, minute + 1):
                    firsts[service] = minute

    @staticmethod
    def _pending(
        service: str, first: int, after: int, summaries: dict[tuple[str, int], HourSummary]
    ) -> list[int]:
        """The minutes of [first, after) no usable hour summary of ``service`` covers."""
        minutes: list[int] = []
        for hour in range(first // 60, -(-after // 60)):
            if (service, hour) not in summaries:
                minutes.extend(range(max(first, hour * 60), min(after, hour * 60 + 60)))
        return minutes

    def _overlays(self, service: str, first: int, after: int) -> dict[int, str]:
        """Minutes whose stored decision the report may override: maintenance registered
        later (-> ``maintenance``) and corrections (-> ``corrected``), corrections last."""
        overlay = dict.fromkeys(
            _maintenance_minutes(self.eligibility, service, self.lead_time_s, first, after),
            "maintenance",
        )
        for minute in _unmonitored_minutes(self.corrections, service, first, after):
            overlay.setdefault(minute, "corrected")
        return overlay

    async def _summaries(
        self, first: int, after: int, overlays: dict[str, dict[int, str]]
    ) -> dict[tuple[str, int], HourSummary]:
        """The hour summaries usable as they are, by (service, hour)."""
        lo, hi = -(-first // 60), after // 60  # hours wholly inside [first, after)
        if hi <= lo:
            return {}
        usable: dict[tuple[str, int], HourSummary] = {}
        wanted = set(self.services)
        for summary in await self.store.hours(lo, hi):
            if summary.service not in wanted or _UNKNOWN_DIGIT in summary.exclusions:
                continue
            states = [summary.states.get(o, "") for o in self.availability[summary.service]]
            if any(_DOWN_DIGIT in s or _UNKNOWN_DIGIT in s for s in states):
                continue  # read by minute: incidents need each down minute's failures
            base = summary.hour * 60
            overlay = overlays[summary.service]
            if overlay and any(
                base + i in overlay and d == _ELIGIBLE_DIGIT
                for i, d in enumerate(summary.exclusions)
            ):
                continue
            usable[(summary.service, summary.hour)] = summary
        return usable

    def _classify(
        self,
        decisions: dict[tuple[str, int], ServiceMinute],
        overlays: dict[str, dict[int, str]],
    ) -> dict[tuple[str, int], _Minute]:
        """What each pending minute of each reported service counts as: as decided (stored,
        or decided now by the shared reader), then what is known now applied."""
        minutes = {
            key: _Minute(record.exclusion or "", record.states) for key, record in decisions.items()
        }
        for name, overlay in overlays.items():
            objectives = self.availability[name]
            for minute, why in overlay.items():
                info = minutes.get((name, minute))
                if info is not None and info.counted:
                    # A maintenance window registered after the minute was decided (late,
                    # by agreement) excludes it now as it would have then; a correction
                    # declares the monitor was faulty: the minute is unmonitored.
                    state = "maintenance" if why == "maintenance" else "unmonitored"
                    minutes[(name, minute)] = _Minute(why, dict.fromkeys(objectives, state))
        return minutes

    def _latency_day(
        self,
        date: dt.date,
        length: int,
        objective: LatencyObjective,
        service: str,
        probes: list[str],
        sums: dict[tuple[str, str], Rollup],
        eligible_minutes: int,
        acc: _ObjectiveAcc,
    ) -> DayFigures:
        day = Rollup()
        for probe in probes:
            probe_sum = sums.get((service, probe))
            if probe_sum is not None:
                day.merge(probe_sum)
        acc.total.merge(day)
        acc.eligible_minutes += eligible_minutes
        runs = runs_per_minute(self.config, service, probes)
        figures = latency_window(
            date.isoformat(),
            day,
            objective.threshold,
            objective.target_ratio,
            latency_coverage(CoverageBasis(day.attempts, eligible_minutes), runs),
            coverage_floor(self.config, objective),
        )
        return _day_figures(date, length, figures, quantiles_s=figures.quantiles)

    def _availability_day(
        self,
        date: dt.date,
        length: int,
        pending: list[int],
        objective: AvailabilityObjective,
        service: str,
        probes: list[str],
        minutes: dict[tuple[str, int], _Minute],
        down: dict[tuple[str, int], dict[str, Rollup]],
        counts: Counter[str],
        acc: _ObjectiveAcc,
    ) -> DayFigures:
        for minute in pending:
            state = minutes[(service, minute)].states.get(objective.name, "unmonitored")
            counts[state] += 1
            if state == "down":
                acc.down_minutes.append(minute)
                failures: Counter[str] = Counter()
                for probe, rollup in down.get((service, minute), {}).items():
                    if probe in probes:
                        failures.update(rollup.failures)
                acc.failures[minute] = dict(failures)
        acc.states.update(counts)
        figures = availability_window(
            date.isoformat(),
            counts_by_label(counts),
            objective.target_ratio,
            coverage_floor(self.config, objective),
        )
        return _day_figures(date, length, figures, minute_states=figures.minutes)


def _day_figures(
    date: dt.date, length: int, figures: WindowFigures, **kind_only: Any
) -> DayFigures:
    """A day's figures as the report model holds them (``kind_only``: the quantiles of a
    latency objective, or the minute states of an availability one)."""
    return DayFigures(
        date=date.isoformat(),
        minutes=length,
        valid=figures.valid,
        good=figures.good,
        bad=figures.bad,
        compliance=figures.compliance,
        met=figures.met,
        verdict=figures.verdict.value,
        coverage=figures.coverage,
        **kind_only,
    )


def _first_measured(summary: HourSummary) -> int:
    """The first minute of a compacted hour its availability states say was measured (up,
    down or provider unavailable); without such an objective, its first counted minute
    (to the hour at worst: the summary keeps the hour's results as one sum)."""
    measured = [
        i
        for digits in summary.states.values()
        for i, digit in enumerate(digits)
        if digit in _MEASURED_DIGITS
    ]
    if not summary.states:
        measured = [i for i, d in enumerate(summary.exclusions) if d == _ELIGIBLE_DIGIT][:1]
    return summary.hour * 60 + min(measured, default=0)
