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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from monitor.clock import Clock, SystemClock
from monitor.eligibility import MaintenanceWindow
from monitor.errors import StoreError
from monitor.results import Result, ServiceMinute
from monitor.sla import Rollup
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
            await self._db.executescript(_SCHEMA + _MAINTENANCE_TRIGGERS)
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
                for (service, probe, minute), delta in deltas.items():
                    async with db.execute(
                        "SELECT body FROM rollups WHERE minute = ? AND service = ? AND probe = ?",
                        (minute, service, probe),
                    ) as cursor:
                        row = await cursor.fetchone()
                    merged = _merge_body(row[0] if row else None, delta)
                    await db.execute(
                        "INSERT OR REPLACE INTO rollups"
                        " (service, probe, minute, attempts, ok, body) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            service,
                            probe,
                            minute,
                            merged.attempts,
                            merged.ok,
                            json.dumps(merged.to_dict(), separators=(",", ":")),
                        ),
                    )
                await db.commit()
            except (OSError, aiosqlite.Error) as exc:
                await self._rollback()
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc

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
            try:
                async with self.db.execute(query, args) as cursor:
                    rows = await cursor.fetchall()
            except (OSError, aiosqlite.Error) as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from exc
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
            try:
                async with self.db.execute(query, args) as cursor:
                    rows = await cursor.fetchall()
            except (OSError, aiosqlite.Error) as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from exc
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
            try:
                async with self.db.execute(query, args) as cursor:
                    rows = await cursor.fetchall()
            except (OSError, aiosqlite.Error) as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from exc
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
            try:
                async with self.db.execute(query, (limit,)) as cursor:
                    rows = await cursor.fetchall()
            except (OSError, aiosqlite.Error) as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from exc
        return [json.loads(body) for (body,) in rows]

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
            try:
                async with self.db.execute(query) as cursor:
                    rows = await cursor.fetchall()
            except (OSError, aiosqlite.Error) as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from exc
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
        self._clock = clock or SystemClock()
        self._maintenance: dict[int, MaintenanceRecord] = {}
        self._maintenance_version = 0

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

    async def aclose(self) -> None:
        """Nothing to close."""
