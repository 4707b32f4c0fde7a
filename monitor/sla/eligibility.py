"""Which minutes count: service hours (weekly schedule + public holidays, in the config's
time zone, DST included) and planned maintenance announced in advance.

The contract measures availability "during the periods in which the network services are
available" and does not count planned unavailability announced to users in advance.

Every decision is made on epoch minutes (UTC epoch seconds // 60) from the LOCAL wall
time of the minute's start: on the spring-forward day the skipped hour simply has no
minutes, on the fall-back day the repeated hour is classified twice by the same wall time.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import holidays

from monitor.config import Config, ScheduleConfig, ServiceConfig
from monitor.sla.minutes import Exclusion


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Planned maintenance of one service.

    Attributes:
        id: stable identifier ("cfg-<service>-<n>" for config windows, a number as text
            for stored ones).
        service: the service it applies to.
        start: UTC epoch seconds.
        end: UTC epoch seconds (exclusive).
        reason: shown to users and in reports.
        announced_at: UTC epoch seconds when users were told; minutes before
            ``announced_at + lead time`` are NOT excluded (announced late).
        source: "config" or "store".
    """

    id: str
    service: str
    start: float
    end: float
    reason: str
    announced_at: float
    source: str = "store"

    def effective_start(self, lead_time_s: float) -> float:
        """When the window starts to exclude minutes."""
        return max(self.start, self.announced_at + lead_time_s)

    def excludes(self, minute: int, lead_time_s: float) -> bool:
        """True when the minute's start lies in [effective start, end)."""
        begin = minute * 60
        return self.effective_start(lead_time_s) <= begin < self.end


_DAY = 1440  # minutes
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
#: Cached days per ServiceHours before the caches are dropped (about 11 years of days).
_CACHE_LIMIT = 4096

#: Epoch-minute spans [start, end) of one UTC day during which a service is open.
_Spans = tuple[tuple[int, int], ...]


class ServiceHours:
    """When one service is open: its weekly rules in ``zone`` minus public holidays."""

    def __init__(self, schedule: ScheduleConfig, zone: ZoneInfo) -> None:
        self._zone = zone
        self._always = schedule.hours is None and schedule.holidays is None
        # Per weekday (Monday 0), the rules starting that day as wall minutes from its
        # midnight; an end beyond 1440 spills into the next day.
        rules: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for rule in schedule.hours if schedule.hours is not None else []:
            for weekday in rule.weekdays:
                rules[weekday].append((rule.start_minute, rule.end_minute))
        if schedule.hours is None:
            rules = [[(0, _DAY)] for _ in range(7)]
        self._rules = tuple(tuple(r) for r in rules)
        settings = schedule.holidays
        self._country = settings.country if settings is not None else None
        self._subdivision = settings.subdivision if settings is not None else None
        self._extra_dates = frozenset(settings.extra_dates if settings is not None else ())
        self._holidays: dict[int, frozenset[dt.date]] = {}
        self._wall: dict[int, _Spans] = {}
        self._days: dict[int, _Spans] = {}

    def open_at(self, minute: int) -> bool:
        """Whether the service is open during epoch minute ``minute``."""
        if self._always:
            return True
        spans = self._days.get(minute // _DAY)
        if spans is None:
            spans = self._day_spans(minute // _DAY)
        # A plain loop: any() over a generator costs several times as much, on the hot path.
        for start, end in spans:  # noqa: SIM110
            if start <= minute < end:
                return True
        return False

    def is_holiday(self, day: dt.date) -> bool:
        """Whether the local date ``day`` is a public holiday or an extra closed date."""
        if day in self._extra_dates:
            return True
        if self._country is None:
            return False
        dates = self._holidays.get(day.year)
        if dates is None:
            calendar = holidays.country_holidays(
                self._country, subdiv=self._subdivision, years=day.year
            )
            dates = self._holidays[day.year] = frozenset(calendar.keys())
        return day in dates

    def _day_spans(self, day: int) -> _Spans:
        """The open spans of UTC day ``day``, computed once and cached."""
        if len(self._days) >= _CACHE_LIMIT:
            self._days.clear()
        first, last = day * _DAY, (day + 1) * _DAY
        spans: list[tuple[int, int]] = []
        for begin, end, offset in self._constant_offsets(first, last):
            # Within one UTC offset, wall minutes are epoch minutes shifted by the offset.
            wall_begin, wall_end = begin + offset, end + offset
            for local_day in range(wall_begin // _DAY, (wall_end - 1) // _DAY + 1):
                for open_begin, open_end in self._wall_spans(local_day):
                    lo, hi = max(open_begin, wall_begin), min(open_end, wall_end)
                    if lo < hi:
                        spans.append((lo - offset, hi - offset))
        result = _merge(spans)
        self._days[day] = result
        return result

    def _wall_spans(self, local_day: int) -> _Spans:
        """Open spans of a local date in wall minutes (local day number * 1440 + minute)."""
        cached = self._wall.get(local_day)
        if cached is not None:
            return cached
        if len(self._wall) >= _CACHE_LIMIT:
            self._wall.clear()
        date = dt.date.fromordinal(local_day + _EPOCH_ORDINAL)
        midnight = local_day * _DAY
        spans: list[tuple[int, int]] = []
        # A holiday closes its whole local date, even the tail of a rule that began the
        # evening before; a rule beginning on a holiday still opens the next date.
        if not self.is_holiday(date):
            for start, end in self._rules[date.weekday()]:
                spans.append((midnight + start, midnight + min(end, _DAY)))
            for _, end in self._rules[(date.weekday() - 1) % 7]:
                if end > _DAY:
                    spans.append((midnight, midnight + end - _DAY))
        result = _merge(spans)
        self._wall[local_day] = result
        return result

    def _constant_offsets(self, first: int, last: int) -> list[tuple[int, int, int]]:
        """Split epoch minutes [first, last) into runs of one UTC offset (in minutes)."""
        runs: list[tuple[int, int, int]] = []
        while first < last:
            offset = self._offset(first)
            if self._offset(last - 1) == offset:
                runs.append((first, last, offset))
                break
            # A transition inside: the first minute with another offset, by bisection.
            lo, hi = first, last - 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self._offset(mid) == offset:
                    lo = mid
                else:
                    hi = mid
            runs.append((first, hi, offset))
            first = hi
        return runs

    def _offset(self, minute: int) -> int:
        local = dt.datetime.fromtimestamp(minute * 60, self._zone)
        offset = local.utcoffset()
        # Zones in use today have whole-minute offsets; older LMT ones are floored.
        return int(offset.total_seconds()) // 60 if offset is not None else 0


def _merge(spans: list[tuple[int, int]]) -> _Spans:
    """Sorted, non-overlapping, non-touching spans covering the same minutes."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _epoch_s(value: dt.datetime, zone: ZoneInfo) -> float:
    """UTC epoch seconds of a config time; a naive time is wall time in ``zone``."""
    if value.tzinfo is None:
        # fold=0: an ambiguous fall-back time is its first occurrence.
        value = value.replace(tzinfo=zone)
    return value.timestamp()


def maintenance_from_config(service: ServiceConfig, zone: ZoneInfo) -> list[MaintenanceWindow]:
    """The maintenance windows a service's config declares."""
    return [
        MaintenanceWindow(
            id=f"cfg-{service.name}-{index}",
            service=service.name,
            start=_epoch_s(window.start, zone),
            end=_epoch_s(window.end, zone),
            reason=window.reason,
            # Not given: announced long before, so the whole window counts.
            announced_at=(
                _epoch_s(window.announced_at, zone)
                if window.announced_at is not None
                else float("-inf")
            ),
            source="config",
        )
        for index, window in enumerate(service.maintenance)
    ]


#: A period a report correction declared unmonitored: (service or None for every
#: service, start, end) in epoch seconds, end exclusive.
CorrectedSpan = tuple[str | None, float, float]


class Eligibility:
    """Which minutes of which service count: service hours, then planned maintenance, then
    the periods report corrections declared unmonitored.

    Provider exclusions (a provider down or in maintenance) are the ledger's: they need
    the providers' minute states.
    """

    def __init__(self, config: Config) -> None:
        zone = config.zone
        self._lead_time_s = float(config.maintenance_lead_time)
        self._hours = {s.name: ServiceHours(s.schedule, zone) for s in config.services}
        self._config_windows = [
            w for s in config.services for w in maintenance_from_config(s, zone)
        ]
        self._by_service: dict[str, list[MaintenanceWindow]] = {}
        # Per service, the union of the windows' [effective start, end) in epoch seconds,
        # as sorted starts and their ends, for a bisection per minute.
        self._excluded: dict[str, tuple[list[float], list[float]]] = {}
        self._services = [s.name for s in config.services]
        self._corrected: dict[str, tuple[list[float], list[float]]] = {}
        #: Bumped by every change (what was decided from it before may differ now).
        self.version = 0
        self.replace_stored_maintenance(())

    def replace_stored_maintenance(self, windows: Iterable[MaintenanceWindow]) -> None:
        """Replace the windows from the store; config windows are always kept."""
        by_service: dict[str, list[MaintenanceWindow]] = {}
        for window in sorted([*self._config_windows, *windows], key=_window_order):
            by_service.setdefault(window.service, []).append(window)
        excluded: dict[str, tuple[list[float], list[float]]] = {}
        for service, service_windows in by_service.items():
            starts: list[float] = []
            ends: list[float] = []
            spans = sorted((w.effective_start(self._lead_time_s), w.end) for w in service_windows)
            for start, end in spans:
                if start >= end:
                    continue  # announced too late to exclude anything
                if ends and start <= ends[-1]:
                    ends[-1] = max(ends[-1], end)
                else:
                    starts.append(start)
                    ends.append(end)
            excluded[service] = (starts, ends)
        # Swapped whole, so a reader never sees half of an update.
        self._by_service, self._excluded = by_service, excluded
        self.version += 1

    def replace_corrections(self, spans: Iterable[CorrectedSpan]) -> None:
        """Replace the periods declared unmonitored by report corrections."""
        per_service: dict[str, list[tuple[float, float]]] = {s: [] for s in self._services}
        for service, start, end in spans:
            for name in self._services if service is None else [service]:
                if name in per_service and start < end:
                    per_service[name].append((start, end))
        self._corrected = {s: _union(sorted(v)) for s, v in per_service.items() if v}
        self.version += 1

    def corrected_spans(self) -> list[CorrectedSpan]:
        """The corrected periods, per service."""
        return [
            (service, start, end)
            for service, (starts, ends) in self._corrected.items()
            for start, end in zip(starts, ends, strict=True)
        ]

    def exclusion(self, service: str, minute: int) -> Exclusion | None:
        """Why epoch minute ``minute`` does not count for ``service``, or None if it counts."""
        if not self._hours[service].open_at(minute):
            return Exclusion.OUTSIDE_HOURS
        spans = self._excluded.get(service)
        if spans is not None:
            begin = minute * 60
            starts, ends = spans
            index = bisect_right(starts, begin) - 1
            if index >= 0 and begin < ends[index]:
                return Exclusion.MAINTENANCE
        corrected = self._corrected.get(service)
        if corrected is not None:
            begin = minute * 60
            starts, ends = corrected
            index = bisect_right(starts, begin) - 1
            if index >= 0 and begin < ends[index]:
                return Exclusion.CORRECTED
        return None

    def maintenance_at(self, service: str, ts: float) -> MaintenanceWindow | None:
        """A window excluding time ``ts`` (epoch seconds) for ``service``, if any."""
        for window in self._by_service.get(service, ()):
            if window.effective_start(self._lead_time_s) <= ts < window.end:
                return window
        return None

    def windows(self, service: str | None = None) -> list[MaintenanceWindow]:
        """The maintenance windows of one service (or all), sorted by start."""
        if service is not None:
            return list(self._by_service.get(service, ()))
        return sorted((w for ws in self._by_service.values() for w in ws), key=_window_order)

    def service_hours(self, service: str) -> ServiceHours:
        """The service hours of ``service``."""
        return self._hours[service]


def _union(spans: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Sorted spans joined where they touch or overlap, as starts and ends."""
    starts: list[float] = []
    ends: list[float] = []
    for start, end in spans:
        if ends and start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


def _window_order(window: MaintenanceWindow) -> tuple[float, float, str]:
    return window.start, window.end, window.id
