"""The store's narrow protocols: each consumer takes only the part it needs (the ledger
reads ``MinuteHistory`` and ``ResultLog``, the maintenance service ``MaintenanceStore``...);
``Store`` is all of them, what ``SqliteStore`` and ``MemoryStore`` implement and what one
contract suite (tests/monitor/store/test_contract.py) checks on both."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from monitor.results import BatchRecord, DaySummary, HourSummary, Result, ServiceMinute
from monitor.sla.counts import Counted, Rollup
from monitor.sla.eligibility import MaintenanceWindow
from monitor.sla.minutes import ProbeId
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
)


class ResultLog(Protocol):
    """Raw results for audit and their per-minute rollups, written together."""

    async def write_batch(
        self, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
    ) -> None:
        """Insert raw results and add rollup deltas, atomically."""
        ...

    async def write_events(
        self, events: Sequence[Result], counted: Sequence[Counted]
    ) -> list[bool]:
        """Insert the traffic events (kind ``traffic``) not stored before, an event being
        known by its service and id (``request_id``), with the rollup deltas of the new
        ones (``counted``, one per event), atomically. Returns, per event, whether it was
        new: a client's retry is counted once."""
        ...

    async def rollups(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of minutes in ``[start_minute, end_minute)``, optionally of one service."""
        ...

    async def rollups_at(self, minutes: Sequence[int]) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of the given minutes (one read for scattered minutes)."""
        ...

    async def results(self, start: float, end: float, service: str | None = None) -> list[Result]:
        """Raw results that started in ``[start, end)``, in start order."""
        ...

    async def prune(self, raw_before: float, rollups_before_minute: int) -> int:
        """Delete raw results and rollups older than the bounds; return rows deleted."""
        ...


class BatchLog(Protocol):
    """Events of batch processing."""

    async def write_batch_events(self, events: Sequence[BatchRecord]) -> list[bool]:
        """Insert the events not stored before (same service and id), atomically; per
        event, whether it was new."""
        ...

    async def batch_events(self, since: float) -> list[BatchRecord]:
        """Events of batches with an event at or after ``since``, every event of those
        batches, in time order."""
        ...


class DigestLog(Protocol):
    """The daily digests of the raw results, a hash chain (evidence)."""

    async def write_digest(self, digest: DayDigest) -> bool:
        """Store a day's digest; False (and nothing changed) when that day has one: a
        digest is never rewritten."""
        ...

    async def digests(self) -> list[DayDigest]:
        """Every digest, oldest day first."""
        ...


class InstanceRegistry(Protocol):
    """The daemons that write to the store, each keeping its own row current."""

    async def write_instance(self, instance: InstanceRecord) -> None:
        """Insert or replace the instance's row (by name)."""
        ...

    async def instances(self) -> list[InstanceRecord]:
        """Every instance that ever wrote its row, by location then name."""
        ...


class Leases(Protocol):
    """Named leases, timed by the store's own clock (the daemons' clocks may differ)."""

    async def take_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Hold ``name`` for ``ttl_s`` seconds from now when it is free, expired or
        already ``holder``'s (a renewal); True when ``holder`` holds it."""
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Give ``name`` up, if ``holder`` holds it (a clean stop: no wait for expiry)."""
        ...

    async def lease(self, name: str) -> tuple[str, float] | None:
        """Who holds ``name`` and for how many more seconds; None when free or expired."""
        ...


class ConfigHistory(Protocol):
    """Which config each daemon started with, and when."""

    async def record_config(self, use: ConfigUse, body: str) -> None:
        """Record a start with the config ``body`` (kept once per SHA-256)."""
        ...

    async def config_uses(self, until: float) -> list[ConfigUse]:
        """Every start recorded before ``until``, oldest first."""
        ...

    async def config_body(self, sha256: str) -> str | None:
        """The text of a recorded config, or None."""
        ...


class Outbox(Protocol):
    """Notifications stored before they are sent, marked once delivered or given up."""

    async def add_notices(self, notices: Sequence[tuple[str, str]], at: float) -> list[int]:
        """Store ``(notifier, body)`` notices, atomically; their ids, in order."""
        ...

    async def mark_notices(self, done: Sequence[tuple[int, str]], at: float) -> None:
        """Mark ``(id, outcome)`` notices done (``sent``, or why they were given up)."""
        ...

    async def unsent_notices(self) -> list[Notice]:
        """Notices not yet done, oldest first."""
        ...

    async def notices(self, since: float) -> list[Notice]:
        """Every notice stored at or after ``since``, done or not, oldest first (the
        publication record of an evidence pack)."""
        ...


class MinuteHistory(Protocol):
    """Sealed history: minute decisions and the compacted hour and day summaries."""

    async def write_minute_states(self, minutes: Sequence[ServiceMinute]) -> None:
        """Persist what sealed minutes counted as (replacing an earlier decision)."""
        ...

    async def minute_states(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[ServiceMinute]:
        """Minute decisions in ``[start_minute, end_minute)``, by minute then service."""
        ...

    async def location_faults(
        self, start_minute: int, end_minute: int
    ) -> list[tuple[str, str, str, int]]:
        """Minutes in ``[start_minute, end_minute)`` that were a location's fault, as
        ``(service, objective, location, minutes)`` (none with one location)."""
        ...

    async def minute_state_counts(
        self, start_minute: int, end_minute: int, bucket_minutes: int
    ) -> list[tuple[str, int, str, str, int]]:
        """Counts of availability minute states in ``[start_minute, end_minute)`` as
        ``(service, bucket start minute, objective, state label, minutes)``, buckets being
        ``bucket_minutes`` long and aligned on the epoch (cheap: no row is decoded here)."""
        ...

    async def write_hours(self, hours: Sequence[HourSummary]) -> None:
        """Persist compacted hours (replacing an earlier summary of the same hour)."""
        ...

    async def hours(self, start_hour: int, end_hour: int) -> list[HourSummary]:
        """Compacted hours in ``[start_hour, end_hour)``."""
        ...

    async def write_days(self, days: Sequence[DaySummary]) -> None:
        """Persist compacted days (replacing an earlier summary of the same day)."""
        ...

    async def days(self, start_day: int, end_day: int) -> list[DaySummary]:
        """Compacted days in ``[start_day, end_day)``."""
        ...

    async def days_to_compact(self, start_day: int, end_day: int) -> list[int]:
        """Days in ``[start_day, end_day)`` where a service has all 24 hours compacted
        but not the day."""
        ...


class AlertStore(Protocol):
    """The built-in alerts' state and history."""

    async def save_alert(self, alert: Alert) -> None:
        """Insert or replace one alert (keyed by ``alert_id``; the history is kept)."""
        ...

    async def load_alerts(self, active_only: bool = False, limit: int = 100) -> list[Alert]:
        """Alerts, newest first; only pending and firing ones with ``active_only``."""
        ...


class MaintenanceStore(Protocol):
    """Planned maintenance added at run time, with its audit trail."""

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
        """Store a planned-maintenance window (times in UTC epoch seconds) and return it;
        ``correction`` says why its announcement is dated before now, ``origin`` where it
        came from as authenticated (``api token NAME``, ``cli USER@HOST``).

        Raises ValueError when ``end <= start`` or a time is not finite.
        """
        ...

    async def list_maintenance(self, include_removed: bool = False) -> list[MaintenanceWindow]:
        """Stored windows ordered by start (then id); removed ones only on request."""
        ...

    async def maintenance_records(self, include_removed: bool = False) -> list[MaintenanceRecord]:
        """Stored windows with who added or removed them and when, ordered by start."""
        ...

    async def remove_maintenance(self, id: str, removed_by: str) -> bool:
        """Soft-delete a window; False when the id is unknown or already removed."""
        ...

    async def maintenance_version(self) -> int:
        """A number that changes whenever a window is added or removed, by any process.

        Read it before ``list_maintenance`` so a change in between triggers another reload
        rather than being missed.
        """
        ...

    async def update_maintenance(
        self, id: str, start: float, end: float, reason: str, announced_at: float
    ) -> MaintenanceWindow | None:
        """Change a stored, not removed window; None when the id is unknown or removed.

        Raises ValueError when ``end <= start`` or a time is not finite.
        """
        ...


class IncidentStore(Protocol):
    """Incidents shown to users, with their timelines."""

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
        """Open an incident with its first update (status ``investigating``)."""
        ...

    async def add_incident_update(
        self, incident_id: str, at: float, status: str, message: str, author: str
    ) -> IncidentUpdate | None:
        """Append an update to an open incident; None when it is unknown or resolved."""
        ...

    async def resolve_incident(
        self, incident_id: str, resolved_at: float, message: str, author: str
    ) -> IncidentUpdate | None:
        """Resolve an open incident with a last update, atomically; None when it is
        unknown or already resolved (so two resolvers cannot both succeed)."""
        ...

    async def incidents(
        self, *, open_only: bool = False, since: float | None = None, limit: int = 100
    ) -> list[Incident]:
        """Incidents newest first (open ones whatever ``since``; else those resolved at
        or after ``since``), each with its updates."""
        ...

    async def incident(self, incident_id: str) -> Incident | None:
        """One incident with its updates, or None."""
        ...


class Lifecycle(Protocol):
    """Opening and closing the store."""

    async def open(self) -> None:
        """Create the schema if needed."""
        ...

    async def aclose(self) -> None:
        """Flush and close."""
        ...

    async def check_writable(self) -> None:
        """Raise ``StoreError`` unless the store takes a write (tried, then rolled back):
        a read-only file or a full disk is found at start, not after the first flush."""
        ...


class RollupReader(Protocol):
    """Reading minute rollups back: all the ledger's sliding needs."""

    async def rollups(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of minutes in ``[start_minute, end_minute)``, optionally of one service."""
        ...

    async def rollups_at(self, minutes: Sequence[int]) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of the given minutes (one read for scattered minutes)."""
        ...


class HistoryReader(RollupReader, Protocol):
    """Reading sealed history: all the ledger's restart needs."""

    async def minute_states(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[ServiceMinute]:
        """Minute decisions in ``[start_minute, end_minute)``, by minute then service."""
        ...

    async def hours(self, start_hour: int, end_hour: int) -> list[HourSummary]:
        """Compacted hours in ``[start_hour, end_hour)``."""
        ...

    async def days(self, start_day: int, end_day: int) -> list[DaySummary]:
        """Compacted days in ``[start_day, end_day)``."""
        ...


class RunLog(Protocol):
    """Marks of the daemon's runs: a start that finds no clean stop after the last start
    knows the previous run was killed, and from the marks and the last results stored
    roughly how much it had measured and not yet written."""

    async def run_marks(self, instance: str = "") -> RunMarks:
        """The marks the last run of ``instance`` left (several daemons on one store
        each keep their own; "" is the store's only daemon)."""
        ...

    async def mark_run(self, mark: RunMark, at: float, instance: str = "") -> None:
        """Record a mark of ``instance`` (replacing the previous one of its kind)."""
        ...

    async def last_results(
        self, since: float, location: str | None = None
    ) -> dict[tuple[str, str], float]:
        """Per (service, probe): the start time of its last stored result after ``since``
        (only of results measured from ``location``, when given)."""
        ...


class Store(
    Lifecycle,
    ResultLog,
    BatchLog,
    DigestLog,
    InstanceRegistry,
    Leases,
    Outbox,
    ConfigHistory,
    MinuteHistory,
    AlertStore,
    MaintenanceStore,
    IncidentStore,
    RunLog,
    Protocol,
):
    """Where results, minute rollups and decisions, alerts, run-time maintenance windows
    and incidents live."""


#: ``(pooled rollups, each location's counts) -> the minute's decisions``.
DecideMinute = Callable[
    [Mapping[ProbeId, Rollup], Mapping[str, Mapping[ProbeId, Rollup]]], list[ServiceMinute]
]


@dataclass(frozen=True, slots=True)
class SharedMinute:
    """A minute as several locations stored it, decided once for all of them."""

    #: Per probe, every location's results of the minute pooled.
    rollups: dict[ProbeId, Rollup]
    #: The minute's decision per service.
    decisions: list[ServiceMinute]
    #: Whether this call decided it (False: another daemon had).
    first: bool


@runtime_checkable
class SharedMinutes(Protocol):
    """A store several locations write, where each minute is decided once, by the quorum
    of the locations, from what all of them wrote (PostgreSQL)."""

    def share_minutes(self) -> None:
        """Keep each location's counts, and results of decided minutes out of rollups."""
        ...

    def take_late(self) -> dict[ProbeId, int]:
        """Per probe, results written since the last call after their minute was decided."""
        ...

    async def location_counts(
        self, start_minute: int, end_minute: int
    ) -> dict[int, dict[str, dict[ProbeId, Rollup]]]:
        """Per minute of ``[start_minute, end_minute)`` and location: each probe's attempts
        and successes (a minute re-decided when its maintenance changes)."""
        ...

    async def decide_minute(self, minute: int, decide: DecideMinute) -> SharedMinute:
        """The minute's pooled rollups and decisions, decided now (and stored) if no daemon
        did before."""
        ...

    async def undecided_minutes(self, start_minute: int, end_minute: int) -> list[int]:
        """The minutes of ``[start_minute, end_minute)`` with results but no decision (every
        daemon stopped before deciding them), oldest first."""
        ...
