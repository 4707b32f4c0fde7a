"""The Store: raw results for audit and per-minute rollups, the unit of history.

Raw rows and the rollups they change are written in one transaction, so the two can never
disagree, and a restart rebuilds every window from what is on disk (DESIGN decisions 2, 5).

It also keeps the planned-maintenance windows added at run time (``sla-monitor maintenance``).
The CLI writes them from another process while the daemon runs, so the daemon polls
``maintenance_version()`` and reloads when it changes. Removal is a soft delete: a removed
window stays on file for the audit trail and the monthly report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from monitor.clock import Clock, SystemClock
from monitor.errors import StoreError
from monitor.results import DaySummary, HourSummary, Result, ServiceMinute
from monitor.sla.counts import Rollup
from monitor.sla.eligibility import MaintenanceWindow
from probes.base import Outcome

#: (service, probe, epoch minute)
RollupKey = tuple[str, str, int]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    probe TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at REAL NOT NULL,
    latency_s REAL NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_time ON results (started_at);
CREATE TABLE IF NOT EXISTS rollups (
    service TEXT NOT NULL,
    probe TEXT NOT NULL,
    minute INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (minute, service, probe)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minute_states (
    service TEXT NOT NULL,
    minute INTEGER NOT NULL,
    exclusion TEXT,
    states TEXT NOT NULL,
    PRIMARY KEY (minute, service)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hours (
    service TEXT NOT NULL,
    hour INTEGER NOT NULL,
    exclusions TEXT NOT NULL,
    states TEXT NOT NULL,
    rollups TEXT NOT NULL,
    PRIMARY KEY (hour, service)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS days (
    service TEXT NOT NULL,
    day INTEGER NOT NULL,
    exclusions TEXT NOT NULL,
    states TEXT NOT NULL,
    rollups TEXT NOT NULL,
    PRIMARY KEY (day, service)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    pending_since REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (status, pending_since);
CREATE TABLE IF NOT EXISTS maintenance (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    "start" REAL NOT NULL,
    "end" REAL NOT NULL,
    reason TEXT NOT NULL,
    announced_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    removed_at REAL,
    removed_by TEXT
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

# Triggers keep the maintenance version in the same transaction as the change, whoever
# writes (this code, another process, an operator with the sqlite3 shell), and it never
# repeats, even if rows were one day pruned.
_MAINTENANCE_TRIGGERS = "".join(
    f"""
CREATE TRIGGER IF NOT EXISTS maintenance_version_{event.lower()} AFTER {event} ON maintenance
BEGIN
    INSERT INTO counters (name, value) VALUES ('maintenance', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;"""
    for event in ("INSERT", "UPDATE", "DELETE")
)

# Incidents shown to users (monitor.incidents); updates form each incident's timeline.
_INCIDENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    objective TEXT,
    started_at REAL NOT NULL,
    resolved_at REAL,
    created_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_by_start ON incidents (started_at);
CREATE TABLE IF NOT EXISTS incident_updates (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    at REAL NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    author TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_updates_by_incident ON incident_updates (incident_id, id);
"""

#: How long a statement waits for another connection's write lock (the CLI and the daemon
#: write the same file), in milliseconds.
BUSY_TIMEOUT_MS = 5000

_MAINTENANCE_COLUMNS = (
    'id, service, "start", "end", reason, announced_at, created_by, created_at,'
    " removed_at, removed_by"
)


@dataclass(frozen=True, slots=True)
class MaintenanceRecord:
    """A stored maintenance window with its audit trail."""

    window: MaintenanceWindow
    created_by: str
    created_at: float
    removed_at: float | None = None
    removed_by: str | None = None

    @property
    def removed(self) -> bool:
        """True once the window was removed (it no longer excludes anything)."""
        return self.removed_at is not None


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    """One entry of an incident's timeline: a status and a message for users."""

    id: str
    incident_id: str
    at: float
    status: str
    message: str
    author: str


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident as users see it: opened automatically or by an operator, with updates.

    Attributes:
        id: a number as text.
        service: the service concerned.
        title: one line for users.
        source: ``detected`` (opened from the availability minutes) or ``operator``.
        objective: the availability objective whose down minutes opened it, if any.
        started_at: UTC epoch seconds.
        resolved_at: UTC epoch seconds, or None while open.
        created_by: who opened it (``sla-monitor`` for detected ones).
        updates: the timeline, oldest first.
    """

    id: str
    service: str
    title: str
    source: str
    objective: str | None
    started_at: float
    resolved_at: float | None
    created_by: str
    updates: tuple[IncidentUpdate, ...] = ()

    @property
    def is_open(self) -> bool:
        """True until resolved."""
        return self.resolved_at is None

    @property
    def status(self) -> str:
        """The status of the latest update (``resolved`` once resolved)."""
        if self.resolved_at is not None:
            return "resolved"
        return self.updates[-1].status if self.updates else "investigating"


def _check_window(service: str, start: float, end: float, announced_at: float) -> None:
    """Reject a window no implementation should store."""
    if not service:
        raise ValueError("a maintenance window needs a service")
    if not all(math.isfinite(t) for t in (start, end, announced_at)):
        raise ValueError("maintenance times must be finite epoch seconds")
    if end <= start:
        raise ValueError(f"a maintenance window must end after it starts ({start} >= {end})")


def _row_id(text: str) -> int | None:
    """The integer id of a stored window, or None when ``text`` cannot be one."""
    if re.fullmatch(r"[0-9]{1,18}", text) is None:  # 18 digits always fit SQLite's int64
        return None
    return int(text)


class Store(Protocol):
    """Where results, minute rollups and run-time maintenance windows live."""

    async def open(self) -> None:
        """Create the schema if needed."""
        ...

    async def write_batch(
        self, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
    ) -> None:
        """Insert raw results and add rollup deltas, atomically."""
        ...

    async def rollups(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of minutes in ``[start_minute, end_minute)``, optionally of one service."""
        ...

    async def results(self, start: float, end: float, service: str | None = None) -> list[Result]:
        """Raw results that started in ``[start, end)``, in start order."""
        ...

    async def prune(self, raw_before: float, rollups_before_minute: int) -> int:
        """Delete raw results and rollups older than the bounds; return rows deleted."""
        ...

    async def write_minute_states(self, minutes: Sequence[ServiceMinute]) -> None:
        """Persist what sealed minutes counted as (replacing an earlier decision)."""
        ...

    async def save_alert(self, alert: Mapping[str, Any]) -> None:
        """Insert or replace one alert (keyed by ``alert_id``; the history is kept)."""
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

    async def load_alerts(
        self, active_only: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Alerts, newest first; only pending and firing ones with ``active_only``."""
        ...

    async def minute_states(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[ServiceMinute]:
        """Minute decisions in ``[start_minute, end_minute)``, by minute then service."""
        ...

    async def add_maintenance(
        self,
        service: str,
        start: float,
        end: float,
        reason: str,
        announced_at: float,
        created_by: str,
    ) -> MaintenanceWindow:
        """Store a planned-maintenance window (times in UTC epoch seconds) and return it.

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

    async def minute_state_counts(
        self, start_minute: int, end_minute: int, bucket_minutes: int
    ) -> list[tuple[str, int, str, str, int]]:
        """Counts of availability minute states in ``[start_minute, end_minute)`` as
        ``(service, bucket start minute, objective, state label, minutes)``, buckets being
        ``bucket_minutes`` long and aligned on the epoch (cheap: no row is decoded here)."""
        ...

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

    async def aclose(self) -> None:
        """Flush and close."""
        ...


def _merge_body(body: str | None, delta: Rollup) -> Rollup:
    rollup = Rollup.from_dict(json.loads(body)) if body else Rollup()
    rollup.merge(delta)
    return rollup


class SqliteStore:
    """A Store on one SQLite file in WAL mode, written by the daemon (and, for
    maintenance windows only, by the CLI in another process)."""

    def __init__(
        self, path: str | Path, synchronous: str = "NORMAL", *, clock: Clock | None = None
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._clock = clock or SystemClock()
        self._db: aiosqlite.Connection | None = None
        # One connection, several tasks (collector, pruning, API): without this a
        # statement of one task could run inside, and be committed with, another's batch.
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Open the file (creating its folder) and the schema."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path)
            # Another process (the CLI adding maintenance) may hold the write lock briefly:
            # wait for it rather than fail with "database is locked".
            await self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a crash of the process (not of the OS) with
            # no lost commit, at ~10 % more throughput than FULL.
            await self._db.execute(f"PRAGMA synchronous={self._synchronous}")
            await self._db.executescript(_SCHEMA + _MAINTENANCE_TRIGGERS + _INCIDENT_SCHEMA)
            await self._db.commit()
        except (OSError, aiosqlite.Error) as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc

    @property
    def db(self) -> aiosqlite.Connection:
        """The open connection."""
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db

    async def write_batch(
        self, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
    ) -> None:
        """Insert raw results and add rollup deltas in one transaction."""
        async with self._lock:
            db = self.db
            try:
                await db.execute("BEGIN IMMEDIATE")
                await db.executemany(
                    "INSERT INTO results (service, probe, kind, started_at, latency_s, outcome,"
                    " detail, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            r.service,
                            r.probe,
                            r.kind,
                            r.started_at,
                            r.latency_s,
                            r.outcome.value,
                            r.detail,
                            r.request_id,
                        )
                        for r in results
                    ],
                )
                # One read and one write for the whole batch: every awaited call is a round
                # trip to aiosqlite's thread, and a batch touches hundreds of rollups.
                minutes = sorted({minute for _, _, minute in deltas})
                existing: dict[RollupKey, str] = {}
                if minutes:
                    marks = ",".join("?" * len(minutes))
                    async with db.execute(
                        f"SELECT service, probe, minute, body FROM rollups"
                        f" WHERE minute IN ({marks})",
                        minutes,
                    ) as cursor:
                        for service, probe, minute, body in await cursor.fetchall():
                            if (service, probe, minute) in deltas:
                                existing[(service, probe, minute)] = body
                rows = []
                for key, delta in deltas.items():
                    merged = _merge_body(existing.get(key), delta)
                    rows.append(
                        (
                            *key,
                            merged.attempts,
                            merged.ok,
                            json.dumps(merged.to_dict(), separators=(",", ":")),
                        )
                    )
                await db.executemany(
                    "INSERT OR REPLACE INTO rollups"
                    " (service, probe, minute, attempts, ok, body) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                await db.commit()
            except (OSError, aiosqlite.Error) as exc:
                await self._rollback()
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc

    async def _fetch(self, query: str, args: Sequence[object] = ()) -> list[Any]:
        """All rows of a query, as StoreError on failure (the caller holds the lock)."""
        try:
            async with self.db.execute(query, args) as cursor:
                return list(await cursor.fetchall())
        except (OSError, aiosqlite.Error) as exc:
            raise StoreError(f"cannot read the store {self.path}: {exc}") from exc

    async def _rollback(self) -> None:
        # If the connection is gone the rollback fails too; the write error is what matters.
        with contextlib.suppress(OSError, aiosqlite.Error):
            await self.db.rollback()

    async def rollups(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of minutes in ``[start_minute, end_minute)``."""
        async with self._lock:
            query = (
                "SELECT service, probe, minute, body FROM rollups WHERE minute >= ? AND minute < ?"
            )
            args: tuple[object, ...] = (start_minute, end_minute)
            if service is not None:
                query += " AND service = ?"
                args = (*args, service)
            query += " ORDER BY minute, service, probe"
            rows = await self._fetch(query, args)
            return [((s, p, m), Rollup.from_dict(json.loads(b))) for s, p, m, b in rows]

    async def results(self, start: float, end: float, service: str | None = None) -> list[Result]:
        """Raw results that started in ``[start, end)``."""
        async with self._lock:
            query = (
                "SELECT service, probe, kind, started_at, latency_s, outcome, detail, request_id"
                " FROM results WHERE started_at >= ? AND started_at < ?"
            )
            args: tuple[object, ...] = (start, end)
            if service is not None:
                query += " AND service = ?"
                args = (*args, service)
            query += " ORDER BY started_at, id"
            rows = await self._fetch(query, args)
            return [
                Result(s, p, k, t, lat, Outcome(o), d, rid) for s, p, k, t, lat, o, d, rid in rows
            ]

    async def prune(self, raw_before: float, rollups_before_minute: int) -> int:
        """Delete old raw results and rollups."""
        async with self._lock:
            try:
                cursor = await self.db.execute(
                    "DELETE FROM results WHERE started_at < ?", (raw_before,)
                )
                deleted = cursor.rowcount
                for table in ("rollups", "minute_states"):
                    cursor = await self.db.execute(
                        f"DELETE FROM {table} WHERE minute < ?", (rollups_before_minute,)
                    )
                    deleted += cursor.rowcount
                cursor = await self.db.execute(
                    "DELETE FROM hours WHERE hour < ?", (rollups_before_minute // 60,)
                )
                deleted += cursor.rowcount
                cursor = await self.db.execute(
                    "DELETE FROM days WHERE day < ?", (rollups_before_minute // 1440,)
                )
                deleted += cursor.rowcount
                await self.db.commit()
            except (OSError, aiosqlite.Error) as exc:
                raise StoreError(f"cannot prune the store {self.path}: {exc}") from exc
            return deleted

    async def write_minute_states(self, minutes: Sequence[ServiceMinute]) -> None:
        """Persist minute decisions in one transaction."""
        async with self._lock:
            try:
                await self.db.executemany(
                    "INSERT OR REPLACE INTO minute_states (service, minute, exclusion, states)"
                    " VALUES (?, ?, ?, ?)",
                    [
                        (m.service, m.minute, m.exclusion, json.dumps(m.states, sort_keys=True))
                        for m in minutes
                    ],
                )
                await self.db.commit()
            except (OSError, aiosqlite.Error) as exc:
                await self._rollback()
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc

    async def minute_states(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[ServiceMinute]:
        """Minute decisions in ``[start_minute, end_minute)``."""
        query = (
            "SELECT service, minute, exclusion, states FROM minute_states"
            " WHERE minute >= ? AND minute < ?"
        )
        args: tuple[object, ...] = (start_minute, end_minute)
        if service is not None:
            query += " AND service = ?"
            args = (*args, service)
        query += " ORDER BY minute, service"
        async with self._lock:
            rows = await self._fetch(query, args)
        return [ServiceMinute(s, m, e, json.loads(states)) for s, m, e, states in rows]

    async def save_alert(self, alert: Mapping[str, Any]) -> None:
        """Insert or replace one alert."""
        async with self._lock:
            try:
                await self.db.execute(
                    "INSERT OR REPLACE INTO alerts (alert_id, fingerprint, status, pending_since,"
                    " body) VALUES (?, ?, ?, ?, ?)",
                    (
                        alert["alert_id"],
                        alert["fingerprint"],
                        alert["status"],
                        alert["pending_since"],
                        json.dumps(dict(alert), sort_keys=True),
                    ),
                )
                await self.db.commit()
            except (OSError, aiosqlite.Error) as exc:
                await self._rollback()
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc

    async def load_alerts(
        self, active_only: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Alerts, newest first."""
        query = "SELECT body FROM alerts"
        if active_only:
            query += " WHERE status IN ('pending', 'firing')"
        query += " ORDER BY pending_since DESC, alert_id LIMIT ?"
        async with self._lock:
            rows = await self._fetch(query, (limit,))
        return [json.loads(body) for (body,) in rows]

    async def write_hours(self, hours: Sequence[HourSummary]) -> None:
        """Persist compacted hours in one transaction."""
        await self._write_summaries(
            "hours", "hour", [(h.service, h.hour, h.exclusions, h.states, h.rollups) for h in hours]
        )

    async def hours(self, start_hour: int, end_hour: int) -> list[HourSummary]:
        """Compacted hours in ``[start_hour, end_hour)``."""
        rows = await self._read_summaries("hours", "hour", start_hour, end_hour)
        return [HourSummary(*row) for row in rows]

    async def write_days(self, days: Sequence[DaySummary]) -> None:
        """Persist compacted days in one transaction."""
        await self._write_summaries(
            "days", "day", [(d.service, d.day, d.exclusions, d.states, d.rollups) for d in days]
        )

    async def days(self, start_day: int, end_day: int) -> list[DaySummary]:
        """Compacted days in ``[start_day, end_day)``."""
        rows = await self._read_summaries("days", "day", start_day, end_day)
        return [DaySummary(*row) for row in rows]

    async def _write_summaries(
        self, table: str, key: str, rows: Sequence[tuple[str, int, str, Any, Any]]
    ) -> None:
        """Replace compacted spans (``hours`` or ``days``; fixed names, never input)."""
        async with self._lock:
            try:
                await self.db.executemany(
                    f"INSERT OR REPLACE INTO {table} (service, {key}, exclusions, states, rollups)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            service,
                            at,
                            exclusions,
                            json.dumps(states),
                            json.dumps(rollups, separators=(",", ":")),
                        )
                        for service, at, exclusions, states, rollups in rows
                    ],
                )
                await self.db.commit()
            except (OSError, aiosqlite.Error) as exc:
                await self._rollback()
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc

    async def _read_summaries(
        self, table: str, key: str, start: int, end: int
    ) -> list[tuple[str, int, str, Any, Any]]:
        """Compacted spans with ``start <= key < end``, states and rollups decoded."""
        async with self._lock:
            rows = await self._fetch(
                f"SELECT service, {key}, exclusions, states, rollups FROM {table}"
                f" WHERE {key} >= ? AND {key} < ? ORDER BY {key}, service",
                (start, end),
            )
        return [
            (s, at, e, json.loads(states), json.loads(rollups))
            for s, at, e, states, rollups in rows
        ]

    async def days_to_compact(self, start_day: int, end_day: int) -> list[int]:
        """Days in ``[start_day, end_day)`` with a service whose 24 hours are compacted
        but not its day."""
        async with self._lock:
            rows = await self._fetch(
                "SELECT DISTINCT complete.day FROM ("
                "  SELECT service, hour / 24 AS day FROM hours WHERE hour >= ? AND hour < ?"
                "  GROUP BY service, day HAVING COUNT(*) = 24"
                ") AS complete LEFT JOIN days"
                " ON days.day = complete.day AND days.service = complete.service"
                " WHERE days.day IS NULL ORDER BY complete.day",
                (start_day * 24, end_day * 24),
            )
        return [day for (day,) in rows]

    async def add_maintenance(
        self,
        service: str,
        start: float,
        end: float,
        reason: str,
        announced_at: float,
        created_by: str,
    ) -> MaintenanceWindow:
        """Insert a window and return it with its new id."""
        _check_window(service, start, end, announced_at)
        async with self._lock:
            db = self.db
            try:
                cursor = await db.execute(
                    'INSERT INTO maintenance (service, "start", "end", reason, announced_at,'
                    " created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (service, start, end, reason, announced_at, created_by, self._clock.now()),
                )
                row_id = cursor.lastrowid
                await db.commit()
            except (OSError, aiosqlite.Error) as exc:
                await self._rollback()
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc
        return MaintenanceWindow(str(row_id), service, start, end, reason, announced_at, "store")

    async def list_maintenance(self, include_removed: bool = False) -> list[MaintenanceWindow]:
        """Stored windows ordered by start."""
        return [r.window for r in await self.maintenance_records(include_removed)]

    async def maintenance_records(self, include_removed: bool = False) -> list[MaintenanceRecord]:
        """Stored windows with their audit trail, ordered by start."""
        query = f"SELECT {_MAINTENANCE_COLUMNS} FROM maintenance"
        if not include_removed:
            query += " WHERE removed_at IS NULL"
        query += ' ORDER BY "start", id'
        async with self._lock:
            rows = await self._fetch(query)
        return [
            MaintenanceRecord(
                MaintenanceWindow(str(i), svc, start, end, reason, announced, "store"),
                by,
                at,
                removed_at,
                removed_by,
            )
            for i, svc, start, end, reason, announced, by, at, removed_at, removed_by in rows
        ]

    async def remove_maintenance(self, id: str, removed_by: str) -> bool:
        """Mark a window removed; False when unknown or already removed."""
        row_id = _row_id(id)
        if row_id is None:
            return False
        async with self._lock:
            db = self.db
            try:
                # One conditional UPDATE, so two removers racing cannot both succeed.
                cursor = await db.execute(
                    "UPDATE maintenance SET removed_at = ?, removed_by = ?"
                    " WHERE id = ? AND removed_at IS NULL",
                    (self._clock.now(), removed_by, row_id),
                )
                changed = cursor.rowcount
                await db.commit()
            except (OSError, aiosqlite.Error) as exc:
                await self._rollback()
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc
        return bool(changed == 1)

    async def maintenance_version(self) -> int:
        """The maintenance change counter kept by the table's triggers."""
        async with self._lock:
            try:
                async with self.db.execute(
                    "SELECT value FROM counters WHERE name = 'maintenance'"
                ) as cursor:
                    row = await cursor.fetchone()
            except (OSError, aiosqlite.Error) as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from exc
        return int(row[0]) if row else 0

    async def update_maintenance(
        self, id: str, start: float, end: float, reason: str, announced_at: float
    ) -> MaintenanceWindow | None:
        """Change a stored window (the triggers bump the maintenance version)."""
        row_id = _row_id(id)
        if row_id is None:
            return None
        async with self._lock:
            async with self.db.execute(
                "SELECT service FROM maintenance WHERE id = ? AND removed_at IS NULL", (row_id,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            service = str(row[0])
            _check_window(service, start, end, announced_at)
            try:
                await self.db.execute(
                    'UPDATE maintenance SET "start" = ?, "end" = ?, reason = ?, announced_at = ?'
                    " WHERE id = ? AND removed_at IS NULL",
                    (start, end, reason, announced_at, row_id),
                )
                await self.db.commit()
            except (OSError, aiosqlite.Error) as exc:
                await self._rollback()
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc
        return MaintenanceWindow(str(row_id), service, start, end, reason, announced_at, "store")

    async def minute_state_counts(
        self, start_minute: int, end_minute: int, bucket_minutes: int
    ) -> list[tuple[str, int, str, str, int]]:
        """Minute-state counts per bucket, aggregated by SQLite (JSON1)."""
        query = (
            "SELECT service, (minute / ?) * ?, j.key, j.value, count(*)"
            " FROM minute_states, json_each(minute_states.states) AS j"
            " WHERE minute >= ? AND minute < ? GROUP BY 1, 2, 3, 4"
        )
        args = (bucket_minutes, bucket_minutes, start_minute, end_minute)
        async with self._lock:
            rows = await self._fetch(query, args)
        return [(str(s), int(b), str(o), str(v), int(n)) for s, b, o, v, n in rows]

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
        """Insert an incident and its first update in one transaction."""
        async with self._lock:
            db = self.db
            try:
                await db.execute("BEGIN IMMEDIATE")
                cursor = await db.execute(
                    "INSERT INTO incidents (service, title, source, objective, started_at,"
                    " created_by) VALUES (?, ?, ?, ?, ?, ?)",
                    (service, title, source, objective, started_at, created_by),
                )
                incident_id = cursor.lastrowid
                cursor = await db.execute(
                    "INSERT INTO incident_updates (incident_id, at, status, message, author)"
                    " VALUES (?, ?, 'investigating', ?, ?)",
                    (incident_id, started_at, message, created_by),
                )
                update_id = cursor.lastrowid
                await db.commit()
            except (OSError, aiosqlite.Error) as exc:
                await self._rollback()
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc
        first = IncidentUpdate(
            str(update_id), str(incident_id), started_at, "investigating", message, created_by
        )
        return Incident(
            str(incident_id),
            service,
            title,
            source,
            objective,
            started_at,
            None,
            created_by,
            (first,),
        )

    async def _append_update(
        self, incident_id: str, at: float, status: str, message: str, author: str
    ) -> IncidentUpdate | None:
        row_id = _row_id(incident_id)
        if row_id is None:
            return None
        async with self._lock:
            db = self.db
            try:
                await db.execute("BEGIN IMMEDIATE")
                if status == "resolved":
                    cursor = await db.execute(
                        "UPDATE incidents SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL",
                        (at, row_id),
                    )
                    found = cursor.rowcount == 1
                else:
                    async with db.execute(
                        "SELECT 1 FROM incidents WHERE id = ? AND resolved_at IS NULL", (row_id,)
                    ) as check:
                        found = await check.fetchone() is not None
                if not found:
                    await db.rollback()
                    return None
                cursor = await db.execute(
                    "INSERT INTO incident_updates (incident_id, at, status, message, author)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (row_id, at, status, message, author),
                )
                update_id = cursor.lastrowid
                await db.commit()
            except (OSError, aiosqlite.Error) as exc:
                await self._rollback()
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc
        return IncidentUpdate(str(update_id), str(row_id), at, status, message, author)

    async def add_incident_update(
        self, incident_id: str, at: float, status: str, message: str, author: str
    ) -> IncidentUpdate | None:
        """Append an update to an open incident."""
        return await self._append_update(incident_id, at, status, message, author)

    async def resolve_incident(
        self, incident_id: str, resolved_at: float, message: str, author: str
    ) -> IncidentUpdate | None:
        """Resolve an open incident with a last update."""
        return await self._append_update(incident_id, resolved_at, "resolved", message, author)

    async def incidents(
        self, *, open_only: bool = False, since: float | None = None, limit: int = 100
    ) -> list[Incident]:
        """Incidents newest first, with their updates."""
        query = (
            "SELECT id, service, title, source, objective, started_at, resolved_at, created_by"
            " FROM incidents WHERE resolved_at IS NULL"
        )
        args: tuple[object, ...] = ()
        if not open_only:
            query += " OR resolved_at >= ?"
            args = (-math.inf if since is None else since,)
        query += " ORDER BY started_at DESC, id DESC LIMIT ?"
        return await self._incidents(query, (*args, limit))

    async def incident(self, incident_id: str) -> Incident | None:
        """One incident with its updates."""
        row_id = _row_id(incident_id)
        if row_id is None:
            return None
        found = await self._incidents(
            "SELECT id, service, title, source, objective, started_at, resolved_at, created_by"
            " FROM incidents WHERE id = ?",
            (row_id,),
        )
        return found[0] if found else None

    async def _incidents(self, query: str, args: tuple[object, ...]) -> list[Incident]:
        async with self._lock:
            try:
                async with self.db.execute(query, args) as cursor:
                    rows = list(await cursor.fetchall())
                ids = [row[0] for row in rows]
                marks = ",".join("?" * len(ids))
                async with self.db.execute(
                    "SELECT id, incident_id, at, status, message, author FROM incident_updates"
                    f" WHERE incident_id IN ({marks}) ORDER BY at, id",
                    ids,
                ) as cursor:
                    update_rows = await cursor.fetchall()
            except (OSError, aiosqlite.Error) as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from exc
        updates: dict[int, list[IncidentUpdate]] = {}
        for uid, iid, at, status, message, author in update_rows:
            updates.setdefault(iid, []).append(
                IncidentUpdate(str(uid), str(iid), at, status, message, author)
            )
        return [
            Incident(str(i), s, t, src, obj, start, end, by, tuple(updates.get(i, ())))
            for i, s, t, src, obj, start, end, by in rows
        ]

    async def aclose(self) -> None:
        """Close the connection (every write was already committed)."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()


class MemoryStore:
    """A Store in memory, for tests of what sits above the store."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._results: list[Result] = []
        self._rollups: dict[RollupKey, Rollup] = {}
        self._minutes: dict[tuple[int, str], ServiceMinute] = {}
        self._alerts: dict[str, dict[str, Any]] = {}
        self._hours: dict[tuple[int, str], HourSummary] = {}
        self._days: dict[tuple[int, str], DaySummary] = {}
        self._clock = clock or SystemClock()
        self._maintenance: dict[int, MaintenanceRecord] = {}
        self._maintenance_version = 0
        self._incidents: dict[str, Incident] = {}
        self._update_ids = 0

    async def open(self) -> None:
        """Nothing to open."""

    async def write_batch(
        self, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
    ) -> None:
        """Append results and add deltas."""
        self._results.extend(results)
        for key, delta in deltas.items():
            self._rollups.setdefault(key, Rollup()).merge(delta)

    async def rollups(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of minutes in ``[start_minute, end_minute)``."""
        return [
            (key, rollup.copy())
            for key, rollup in sorted(self._rollups.items(), key=lambda kv: (kv[0][2], kv[0]))
            if start_minute <= key[2] < end_minute and (service is None or key[0] == service)
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

    async def save_alert(self, alert: Mapping[str, Any]) -> None:
        """Keep one alert."""
        self._alerts[str(alert["alert_id"])] = json.loads(json.dumps(dict(alert)))

    async def load_alerts(
        self, active_only: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Alerts, newest first."""
        chosen = [
            a
            for a in self._alerts.values()
            if not active_only or a["status"] in ("pending", "firing")
        ]
        chosen.sort(key=lambda a: (-a["pending_since"], a["alert_id"]))
        return [dict(a) for a in chosen[:limit]]

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
    ) -> MaintenanceWindow:
        """Keep a window and return it with its new id."""
        _check_window(service, start, end, announced_at)
        row_id = max(self._maintenance, default=0) + 1
        window = MaintenanceWindow(str(row_id), service, start, end, reason, announced_at)
        self._maintenance[row_id] = MaintenanceRecord(window, created_by, self._clock.now())
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
        row_id = _row_id(id)
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
        row_id = _row_id(id)
        record = self._maintenance.get(row_id) if row_id is not None else None
        if row_id is None or record is None or record.removed:
            return None
        _check_window(record.window.service, start, end, announced_at)
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
