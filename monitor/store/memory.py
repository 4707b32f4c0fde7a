"""An in-memory Store for tests and benchmarks: the same contract as ``SqliteStore``
(tests/monitor/store/test_contract.py runs one suite on both), nothing on disk."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from monitor.clock import Clock, SystemClock
from monitor.results import BatchRecord, DaySummary, HourSummary, Result, ServiceMinute
from monitor.sla.counts import Counted, Rollup
from monitor.sla.eligibility import MaintenanceWindow
from monitor.store.records import (
    Alert,
    ConfigUse,
    DayDigest,
    Incident,
    IncidentUpdate,
    InstanceRecord,
    MaintenanceRecord,
    Notice,
    RollupKey,
    RunMark,
    RunMarks,
    check_window,
    count_faults,
    event_deltas,
    fresh_events,
)
from monitor.store.records import (
    row_id as parse_row_id,
)


class MemoryStore:
    """A Store in memory, for tests of what sits above the store."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._results: list[Result] = []
        self._batch_events: list[BatchRecord] = []
        self._digests: dict[str, DayDigest] = {}
        self._instances: dict[str, InstanceRecord] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._configs: dict[str, str] = {}
        self._config_uses: list[ConfigUse] = []
        self._outbox: dict[int, tuple[Notice, float | None, str | None]] = {}
        self._marks: dict[tuple[str, RunMark], float] = {}
        self._rollups: dict[RollupKey, Rollup] = {}
        self._minutes: dict[tuple[int, str], ServiceMinute] = {}
        self._alerts: dict[str, Alert] = {}
        self._hours: dict[tuple[int, str], HourSummary] = {}
        self._days: dict[tuple[int, str], DaySummary] = {}
        self._clock = clock or SystemClock()
        self._maintenance: dict[int, MaintenanceRecord] = {}
        self._maintenance_version = 0
        self._incidents: dict[str, Incident] = {}
        self._update_ids = 0

    async def open(self) -> None:
        """Nothing to open."""

    async def check_writable(self) -> None:
        """Memory always takes a write."""

    async def run_marks(self, instance: str = "") -> RunMarks:
        """The marks of earlier runs of ``instance`` on this object."""
        return RunMarks(**{m: at for (i, m), at in self._marks.items() if i == instance})

    async def mark_run(self, mark: RunMark, at: float, instance: str = "") -> None:
        """Record a mark."""
        self._marks[(instance, mark)] = at

    async def last_results(
        self, since: float, location: str | None = None
    ) -> dict[tuple[str, str], float]:
        """Per probe: its last result's start after ``since``."""
        last: dict[tuple[str, str], float] = {}
        for r in self._results:
            if r.started_at > since and location in (None, r.location):
                key = (r.service, r.probe)
                last[key] = max(last.get(key, r.started_at), r.started_at)
        return last

    async def write_batch(
        self, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
    ) -> None:
        """Append results and add deltas."""
        self._results.extend(results)
        for key, delta in deltas.items():
            self._rollups.setdefault(key, Rollup()).merge(delta)

    async def write_digest(self, digest: DayDigest) -> bool:
        """Keep a day's digest unless that day has one."""
        if digest.date in self._digests:
            return False
        self._digests[digest.date] = digest
        return True

    async def digests(self) -> list[DayDigest]:
        """Every digest, oldest day first."""
        return [self._digests[d] for d in sorted(self._digests)]

    async def write_instance(self, instance: InstanceRecord) -> None:
        """Replace the instance's row."""
        self._instances[instance.name] = instance

    async def instances(self) -> list[InstanceRecord]:
        """Every instance, by location then name."""
        return sorted(self._instances.values(), key=lambda i: (i.location, i.name))

    async def record_config(self, use: ConfigUse, body: str) -> None:
        """Record a start."""
        self._configs.setdefault(use.sha256, body)
        self._config_uses.append(use)

    async def config_uses(self, until: float) -> list[ConfigUse]:
        """Starts before ``until``."""
        return [u for u in self._config_uses if u.at < until]

    async def config_body(self, sha256: str) -> str | None:
        """A recorded config's text."""
        return self._configs.get(sha256)

    async def add_notices(self, notices: Sequence[tuple[str, str]], at: float) -> list[int]:
        """Store notices; their ids."""
        ids = []
        for notifier, body in notices:
            new_id = len(self._outbox) + 1
            self._outbox[new_id] = (Notice(new_id, notifier, body, at), None, None)
            ids.append(new_id)
        return ids

    async def mark_notices(self, done: Sequence[tuple[int, str]], at: float) -> None:
        """Mark notices done."""
        for notice_id, outcome in done:
            if notice_id in self._outbox:
                self._outbox[notice_id] = (self._outbox[notice_id][0], at, outcome)

    async def unsent_notices(self) -> list[Notice]:
        """Notices not done, oldest first."""
        return [n for n, done_at, _ in self._outbox.values() if done_at is None]

    async def notices(self, since: float) -> list[Notice]:
        """Notices stored since ``since``, oldest first."""
        return [
            replace(n, done_at=done_at, outcome=outcome)
            for n, done_at, outcome in self._outbox.values()
            if n.created_at >= since
        ]

    async def take_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Hold or renew ``name`` when free, expired or ``holder``'s."""
        now = self._clock.now()
        held = self._leases.get(name)
        if held is None or held[0] == holder or held[1] < now:
            self._leases[name] = (holder, now + ttl_s)
            return True
        return False

    async def release_lease(self, name: str, holder: str) -> None:
        """Give ``name`` up if ``holder`` holds it."""
        if self._leases.get(name, ("", 0.0))[0] == holder:
            del self._leases[name]

    async def lease(self, name: str) -> tuple[str, float] | None:
        """Holder and seconds left, unless free or expired."""
        held = self._leases.get(name)
        now = self._clock.now()
        if held is None or held[1] < now:
            return None
        return held[0], held[1] - now

    async def write_batch_events(self, events: Sequence[BatchRecord]) -> list[bool]:
        """Append the batch events not seen before."""
        seen = {(e.service, e.id) for e in self._batch_events}
        new = []
        for event in events:
            is_new = (event.service, event.id) not in seen
            new.append(is_new)
            if is_new:
                seen.add((event.service, event.id))
                self._batch_events.append(event)
        return new

    async def batch_events(self, since: float) -> list[BatchRecord]:
        """Every event of the batches with an event at or after ``since``."""
        recent = {(e.service, e.batch) for e in self._batch_events if e.at >= since}
        chosen = [e for e in self._batch_events if (e.service, e.batch) in recent]
        return sorted(chosen, key=lambda e: (e.at, e.service, e.id))

    async def write_events(
        self, events: Sequence[Result], counted: Sequence[Counted]
    ) -> list[bool]:
        """Append the events not seen before (same service and id) and their deltas."""
        stored = {(r.service, r.request_id) for r in self._results if r.kind == "traffic"}
        fresh, new = fresh_events(events, counted, stored)
        await self.write_batch(fresh, event_deltas(events, counted, new))
        return new

    async def rollups(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of minutes in ``[start_minute, end_minute)``."""
        return self._rollups_where(
            lambda key: (
                start_minute <= key[2] < end_minute and (service is None or key[0] == service)
            )
        )

    async def rollups_at(self, minutes: Sequence[int]) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of the given minutes."""
        wanted = set(minutes)
        return self._rollups_where(lambda key: key[2] in wanted)

    def _rollups_where(self, keep: Callable[[RollupKey], bool]) -> list[tuple[RollupKey, Rollup]]:
        """Copies of the rollups ``keep`` accepts, by minute then key (as SQLite orders)."""
        return [
            (key, rollup.copy())
            for key, rollup in sorted(self._rollups.items(), key=lambda kv: (kv[0][2], kv[0]))
            if keep(key)
        ]

    async def results(self, start: float, end: float, service: str | None = None) -> list[Result]:
        """Raw results that started in ``[start, end)``."""
        chosen = [
            r
            for r in self._results
            if start <= r.started_at < end and (service is None or r.service == service)
        ]
        return sorted(chosen, key=lambda r: r.started_at)

    async def prune(self, raw_before: float, rollups_before_minute: int) -> int:
        """Delete old raw results and rollups."""
        before = len(self._results) + len(self._rollups)
        self._results = [r for r in self._results if r.started_at >= raw_before]
        self._rollups = {k: v for k, v in self._rollups.items() if k[2] >= rollups_before_minute}
        self._minutes = {k: v for k, v in self._minutes.items() if k[0] >= rollups_before_minute}
        return before - len(self._results) - len(self._rollups)

    async def write_minute_states(self, minutes: Sequence[ServiceMinute]) -> None:
        """Keep minute decisions."""
        for m in minutes:
            self._minutes[(m.minute, m.service)] = m

    async def minute_states(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[ServiceMinute]:
        """Minute decisions in ``[start_minute, end_minute)``."""
        return [
            m
            for key, m in sorted(self._minutes.items())
            if start_minute <= key[0] < end_minute and (service is None or m.service == service)
        ]

    async def location_faults(
        self, start_minute: int, end_minute: int
    ) -> list[tuple[str, str, str, int]]:
        """Faulty minutes per service, objective and location."""
        return count_faults(
            (m.service, json.dumps(m.faults))
            for (minute, _), m in self._minutes.items()
            if start_minute <= minute < end_minute and m.faults
        )

    async def save_alert(self, alert: Alert) -> None:
        """Keep one alert (a copy, as JSON would: the caller goes on changing its own)."""
        self._alerts[alert.alert_id] = Alert.from_dict(json.loads(json.dumps(alert.to_dict())))

    async def load_alerts(self, active_only: bool = False, limit: int = 100) -> list[Alert]:
        """Alerts, newest first."""
        chosen = [
            a for a in self._alerts.values() if not active_only or a.status in ("pending", "firing")
        ]
        chosen.sort(key=lambda a: (-a.pending_since, a.alert_id))
        return [Alert.from_dict(a.to_dict()) for a in chosen[:limit]]

    async def write_hours(self, hours: Sequence[HourSummary]) -> None:
        """Keep compacted hours."""
        for h in hours:
            self._hours[(h.hour, h.service)] = h

    async def hours(self, start_hour: int, end_hour: int) -> list[HourSummary]:
        """Compacted hours in ``[start_hour, end_hour)``."""
        return [h for key, h in sorted(self._hours.items()) if start_hour <= key[0] < end_hour]

    async def write_days(self, days: Sequence[DaySummary]) -> None:
        """Keep compacted days."""
        for d in days:
            self._days[(d.day, d.service)] = d

    async def days(self, start_day: int, end_day: int) -> list[DaySummary]:
        """Compacted days in ``[start_day, end_day)``."""
        return [d for key, d in sorted(self._days.items()) if start_day <= key[0] < end_day]

    async def days_to_compact(self, start_day: int, end_day: int) -> list[int]:
        """Days in ``[start_day, end_day)`` with a service whose 24 hours are compacted
        but not its day."""
        counts = Counter(
            (hour // 24, service)
            for hour, service in self._hours
            if start_day * 24 <= hour < end_day * 24
        )
        return sorted(
            {
                day
                for (day, service), n in counts.items()
                if n == 24 and (day, service) not in self._days
            }
        )

    async def add_maintenance(
        self,
        service: str,
        start: float,
        end: float,
        reason: str,
        announced_at: float,
        created_by: str,
        correction: str | None = None,
        origin: str | None = None,
    ) -> MaintenanceWindow:
        """Keep a window and return it with its new id."""
        check_window(service, start, end, announced_at)
        row_id = max(self._maintenance, default=0) + 1
        window = MaintenanceWindow(str(row_id), service, start, end, reason, announced_at)
        self._maintenance[row_id] = MaintenanceRecord(
            window, created_by, self._clock.now(), correction=correction, origin=origin
        )
        self._maintenance_version += 1
        return window

    async def list_maintenance(self, include_removed: bool = False) -> list[MaintenanceWindow]:
        """Kept windows ordered by start."""
        return [r.window for r in await self.maintenance_records(include_removed)]

    async def maintenance_records(self, include_removed: bool = False) -> list[MaintenanceRecord]:
        """Kept windows with their audit trail, ordered by start."""
        chosen = [r for r in self._maintenance.values() if include_removed or not r.removed]
        return sorted(chosen, key=lambda r: (r.window.start, int(r.window.id)))

    async def remove_maintenance(self, id: str, removed_by: str) -> bool:
        """Mark a window removed; False when unknown or already removed."""
        row_id = parse_row_id(id)
        record = self._maintenance.get(row_id) if row_id is not None else None
        if row_id is None or record is None or record.removed:
            return False
        self._maintenance[row_id] = replace(
            record, removed_at=self._clock.now(), removed_by=removed_by
        )
        self._maintenance_version += 1
        return True

    async def maintenance_version(self) -> int:
        """A counter bumped by every add and remove."""
        return self._maintenance_version

    async def update_maintenance(
        self, id: str, start: float, end: float, reason: str, announced_at: float
    ) -> MaintenanceWindow | None:
        """Change a kept, not removed window."""
        row_id = parse_row_id(id)
        record = self._maintenance.get(row_id) if row_id is not None else None
        if row_id is None or record is None or record.removed:
            return None
        check_window(record.window.service, start, end, announced_at)
        window = replace(
            record.window, start=start, end=end, reason=reason, announced_at=announced_at
        )
        self._maintenance[row_id] = replace(record, window=window)
        self._maintenance_version += 1
        return window

    async def minute_state_counts(
        self, start_minute: int, end_minute: int, bucket_minutes: int
    ) -> list[tuple[str, int, str, str, int]]:
        """Minute-state counts per bucket."""
        counts: dict[tuple[str, int, str, str], int] = {}
        for (minute, service), decided in self._minutes.items():
            if start_minute <= minute < end_minute:
                bucket = minute // bucket_minutes * bucket_minutes
                for objective, state in decided.states.items():
                    key = (service, bucket, objective, state)
                    counts[key] = counts.get(key, 0) + 1
        return [(*key, n) for key, n in sorted(counts.items())]

    async def add_incident(
        self,
        service: str,
        title: str,
        started_at: float,
        source: str,
        objective: str | None,
        created_by: str,
        message: str,
    ) -> Incident:
        """Keep an incident and its first update."""
        incident_id = str(len(self._incidents) + 1)
        self._update_ids += 1
        first = IncidentUpdate(
            str(self._update_ids), incident_id, started_at, "investigating", message, created_by
        )
        incident = Incident(
            incident_id, service, title, source, objective, started_at, None, created_by, (first,)
        )
        self._incidents[incident_id] = incident
        return incident

    async def add_incident_update(
        self, incident_id: str, at: float, status: str, message: str, author: str
    ) -> IncidentUpdate | None:
        """Append an update to an open incident."""
        incident = self._incidents.get(incident_id)
        if incident is None or not incident.is_open:
            return None
        self._update_ids += 1
        update = IncidentUpdate(str(self._update_ids), incident_id, at, status, message, author)
        resolved_at = at if status == "resolved" else None
        self._incidents[incident_id] = replace(
            incident, resolved_at=resolved_at, updates=(*incident.updates, update)
        )
        return update

    async def resolve_incident(
        self, incident_id: str, resolved_at: float, message: str, author: str
    ) -> IncidentUpdate | None:
        """Resolve an open incident with a last update."""
        return await self.add_incident_update(incident_id, resolved_at, "resolved", message, author)

    async def incidents(
        self, *, open_only: bool = False, since: float | None = None, limit: int = 100
    ) -> list[Incident]:
        """Incidents newest first."""
        chosen = [
            i
            for i in self._incidents.values()
            if i.resolved_at is None
            or (not open_only and (since is None or i.resolved_at >= since))
        ]
        chosen.sort(key=lambda i: (-i.started_at, -int(i.id)))
        return chosen[:limit]

    async def incident(self, incident_id: str) -> Incident | None:
        """One incident with its updates."""
        return self._incidents.get(incident_id)

    async def aclose(self) -> None:
        """Nothing to close."""
