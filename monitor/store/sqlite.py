"""The SQLite store: raw results for audit and per-minute rollups, the unit of history.

Raw rows and the rollups they change are written in one transaction, so the two can never
disagree, and a restart rebuilds every window from what is on disk (DESIGN decisions 2, 5).

It also keeps the planned-maintenance windows added at run time (``sla-monitor maintenance``).
The CLI writes them from another process while the daemon runs, so the daemon polls
``maintenance_version()`` and reloads when it changes. Removal is a soft delete: a removed
window stays on file for the audit trail and the monthly report.

One class on one connection (~930 lines): every method shares its lock and its one write
transaction helper; the schema is ``monitor.store.migrations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import astuple
from pathlib import Path
from typing import Any

import aiosqlite

from monitor.clock import Clock, SystemClock
from monitor.errors import StoreError
from monitor.results import BatchRecord, DaySummary, HourSummary, Result, ServiceMinute
from monitor.sla.counts import Counted, Rollup
from monitor.sla.eligibility import MaintenanceWindow
from monitor.store.migrations import migrate
from monitor.store.records import (
    RUN_MARKS,
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
    incidents_of,
    maintenance_record,
    mark_name,
    service_minute,
    state_columns,
)
from monitor.store.records import (
    row_id as parse_row_id,
)
from probes.base import Outcome

#: How long a statement waits for another connection's write lock (the CLI and the daemon
#: write the same file), in milliseconds.
BUSY_TIMEOUT_MS = 5000
#: ``PRAGMA auto_vacuum`` of a store that gives freed pages back after a prune.
_INCREMENTAL = 2

log = logging.getLogger(__name__)

_MAINTENANCE_COLUMNS = (
    'id, service, "start", "end", reason, announced_at, created_by, created_at,'
    " removed_at, removed_by, correction, origin"
)


def _merge_body(body: str | None, delta: Rollup) -> Rollup:
    rollup = Rollup.from_dict(json.loads(body)) if body else Rollup()
    rollup.merge(delta)
    return rollup


#: The file's clock in UTC epoch seconds (leases are timed by the store, not a daemon).
_SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"

#: Minutes per `IN (...)` read of a batch's rollups.
_IN_CHUNK = 1000


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
        """Open the file (creating its folder) and bring its schema to the current version."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path)
            # Another process (the CLI adding maintenance) may hold the write lock briefly:
            # wait for it rather than fail with "database is locked".
            await self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # Before anything creates a table: a new store gives the pages a prune frees
            # back to the file system (``prune``); an existing one keeps its mode.
            await self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            await self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a crash of the process (not of the OS) with
            # no lost commit, at ~10 % more throughput than FULL.
            await self._db.execute(f"PRAGMA synchronous={self._synchronous}")
            await migrate(self._db, self.path, self._clock.now())
            async with self._db.execute("PRAGMA auto_vacuum") as cursor:
                row = await cursor.fetchone()
            if row is not None and row[0] != _INCREMENTAL:
                log.info(
                    "the store %s keeps the space pruning frees (made before stores vacuumed"
                    " incrementally): to give it back, stop the daemon and run sqlite3 %s"
                    " 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM;' (needs its size free)",
                    self.path,
                    self.path,
                )
        except (OSError, aiosqlite.Error) as exc:
            if self._db is not None:  # its thread would keep the file (and the process)
                await self._db.close()
                self._db = None
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc

    async def run_marks(self, instance: str = "") -> RunMarks:
        """The marks, kept in the counters table in milliseconds."""
        names = [mark_name(m, instance) for m in RUN_MARKS]
        async with self._lock:
            rows = await self._fetch(
                "SELECT name, value FROM counters WHERE name IN (?, ?, ?)", names
            )
        marks = {RUN_MARKS[names.index(str(name))]: int(value) / 1000 for name, value in rows}
        return RunMarks(**marks)

    async def mark_run(self, mark: RunMark, at: float, instance: str = "") -> None:
        """Replace a mark."""
        async with self._write() as db:
            await db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (mark_name(mark, instance), round(at * 1000)),
            )

    async def last_results(
        self, since: float, location: str | None = None
    ) -> dict[tuple[str, str], float]:
        """Per probe: its last result's start after ``since`` (read by time index)."""
        query = "SELECT service, probe, MAX(started_at) FROM results WHERE started_at > ?"
        args: tuple[object, ...] = (since,)
        if location is not None:
            query += " AND location = ?"
            args = (since, location)
        async with self._lock:
            rows = await self._fetch(query + " GROUP BY service, probe", args)
        return {(str(s), str(p)): float(at) for s, p, at in rows}

    async def check_writable(self) -> None:
        """Commit one small row: a rolled-back write never reaches the disk, so only a
        commit finds a full disk or a size limit."""
        async with self._write(immediate=True) as db:
            await db.execute(
                "INSERT INTO counters (name, value) VALUES ('write check', 1)"
                " ON CONFLICT (name) DO UPDATE SET value = value + 1"
            )

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
        async with self._write(immediate=True) as db:
            await self._insert(db, results, deltas)

    async def write_events(
        self, events: Sequence[Result], counted: Sequence[Counted]
    ) -> list[bool]:
        """Insert the traffic events not stored before (same service and id) with their
        rollup deltas, in one transaction; per event, whether it was new."""
        async with self._write(immediate=True) as db:
            ids: dict[str, set[str]] = {}
            for event in events:
                ids.setdefault(event.service, set()).add(event.request_id)
            stored: set[tuple[str, str]] = set()
            for service, wanted in ids.items():
                listed = sorted(wanted)
                for at in range(0, len(listed), _IN_CHUNK):
                    chunk = listed[at : at + _IN_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    async with db.execute(
                        "SELECT request_id FROM results WHERE kind = 'traffic' AND service = ?"
                        f" AND request_id IN ({marks})",
                        [service, *chunk],
                    ) as cursor:
                        stored.update((service, str(row[0])) for row in await cursor.fetchall())
            fresh, new = fresh_events(events, counted, stored)
            deltas = event_deltas(events, counted, new)
            await self._insert(db, fresh, deltas)
        return new

    async def write_batch_events(self, events: Sequence[BatchRecord]) -> list[bool]:
        """Insert the batch events not stored before, in one transaction."""
        async with self._write(immediate=True) as db:
            stored: set[tuple[str, str]] = set()
            keys = sorted({(e.service, e.id) for e in events})
            for at in range(0, len(keys), _IN_CHUNK // 2):
                chunk = keys[at : at + _IN_CHUNK // 2]
                where = " OR ".join("(service = ? AND id = ?)" for _ in chunk)
                async with db.execute(
                    f"SELECT service, id FROM batch_events WHERE {where}",
                    [value for key in chunk for value in key],
                ) as cursor:
                    stored.update((str(s), str(i)) for s, i in await cursor.fetchall())
            new = []
            rows = []
            for event in events:
                key = (event.service, event.id)
                is_new = key not in stored
                new.append(is_new)
                if is_new:
                    stored.add(key)
                    rows.append(
                        (
                            event.service,
                            event.id,
                            event.batch,
                            event.event,
                            event.at,
                            event.records,
                            event.institution,
                        )
                    )
            await db.executemany(
                "INSERT INTO batch_events (service, id, batch, event, at, records, institution)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return new

    async def batch_events(self, since: float) -> list[BatchRecord]:
        """Every event of the batches with an event at or after ``since``."""
        async with self._lock:
            rows = await self._fetch(
                "SELECT service, id, batch, event, at, records, institution FROM batch_events"
                " WHERE (service, batch) IN (SELECT service, batch FROM batch_events"
                " WHERE at >= ?) ORDER BY at, service, id",
                (since,),
            )
        return [
            BatchRecord(str(s), str(i), str(b), str(e), float(at), int(r), inst)
            for s, i, b, e, at, r, inst in rows
        ]

    async def _insert(
        self,
        db: aiosqlite.Connection,
        results: Sequence[Result],
        deltas: Mapping[RollupKey, Rollup],
    ) -> None:
        """The raw rows and the rollups they change (inside the caller's transaction)."""
        await db.executemany(
            "INSERT INTO results (service, probe, kind, started_at, latency_s, outcome,"
            " detail, request_id, location) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    r.location,
                )
                for r in results
            ],
        )
        # One read and one write for the whole batch: every awaited call is a round
        # trip to aiosqlite's thread, and a batch touches hundreds of rollups.
        minutes = sorted({minute for _, _, minute in deltas})
        existing: dict[RollupKey, str] = {}
        # In chunks: SQLite takes at most 32,766 parameters, a backlog can span more.
        for at in range(0, len(minutes), _IN_CHUNK):
            chunk = minutes[at : at + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            async with db.execute(
                f"SELECT service, probe, minute, body FROM rollups WHERE minute IN ({marks})",
                chunk,
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

    @contextlib.asynccontextmanager
    async def _write(self, *, immediate: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction under the connection lock: committed when the block ends,
        rolled back and raised as StoreError when SQLite or the disk fails."""
        async with self._lock:
            db = self.db
            try:
                if immediate:
                    await db.execute("BEGIN IMMEDIATE")
                yield db
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

    async def rollups_at(self, minutes: Sequence[int]) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of the given minutes, in one query (the primary key starts with the
        minute, so each is a direct lookup)."""
        wanted = sorted(set(minutes))
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        async with self._lock:
            rows = await self._fetch(
                f"SELECT service, probe, minute, body FROM rollups WHERE minute IN ({marks})"
                " ORDER BY minute, service, probe",
                wanted,
            )
        return [((s, p, m), Rollup.from_dict(json.loads(b))) for s, p, m, b in rows]

    async def write_digest(self, digest: DayDigest) -> bool:
        """Store a day's digest unless that day has one."""
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO digests (date, results, results_sha256, previous, chain,"
                " made_at, format) VALUES (?, ?, ?, ?, ?, ?, ?)",
                astuple(digest),
            )
            return cursor.rowcount == 1

    async def digests(self) -> list[DayDigest]:
        """Every digest, oldest day first."""
        async with self._lock:
            rows = await self._fetch(
                "SELECT date, results, results_sha256, previous, chain, made_at, format"
                " FROM digests ORDER BY date"
            )
        return [
            DayDigest(str(d), int(n), str(h), str(p), str(c), float(m), int(f))
            for d, n, h, p, c, m, f in rows
        ]

    async def record_config(self, use: ConfigUse, body: str) -> None:
        """Record a start, and the config's text once."""
        async with self._write() as db:
            await db.execute(
                "INSERT OR IGNORE INTO config_versions (sha256, body, first_seen_at)"
                " VALUES (?, ?, ?)",
                (use.sha256, body, use.at),
            )
            await db.execute(
                "INSERT INTO config_history (at, instance, path, sha256) VALUES (?, ?, ?, ?)",
                (use.at, use.instance, use.path, use.sha256),
            )

    async def config_uses(self, until: float) -> list[ConfigUse]:
        """Starts before ``until``, oldest first."""
        async with self._lock:
            rows = await self._fetch(
                "SELECT at, instance, path, sha256 FROM config_history WHERE at < ?"
                " ORDER BY at, id",
                (until,),
            )
        return [ConfigUse(float(a), str(i), str(p), str(h)) for a, i, p, h in rows]

    async def config_body(self, sha256: str) -> str | None:
        """A recorded config's text."""
        async with self._lock:
            rows = await self._fetch("SELECT body FROM config_versions WHERE sha256 = ?", (sha256,))
        return str(rows[0][0]) if rows else None

    async def add_notices(self, notices: Sequence[tuple[str, str]], at: float) -> list[int]:
        """Store notices in one transaction; their ids."""
        ids = []
        async with self._write(immediate=True) as db:
            for notifier, body in notices:
                cursor = await db.execute(
                    "INSERT INTO outbox (notifier, body, created_at) VALUES (?, ?, ?)",
                    (notifier, body, at),
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    async def mark_notices(self, done: Sequence[tuple[int, str]], at: float) -> None:
        """Mark notices done in one transaction."""
        async with self._write() as db:
            await db.executemany(
                "UPDATE outbox SET done_at = ?, outcome = ? WHERE id = ?",
                [(at, outcome, notice_id) for notice_id, outcome in done],
            )

    async def unsent_notices(self) -> list[Notice]:
        """Notices not done, oldest first."""
        async with self._lock:
            rows = await self._fetch(
                "SELECT id, notifier, body, created_at FROM outbox WHERE done_at IS NULL"
                " ORDER BY id"
            )
        return [Notice(int(i), str(n), str(b), float(c)) for i, n, b, c in rows]

    async def notices(self, since: float) -> list[Notice]:
        """Notices stored since ``since``, oldest first."""
        async with self._lock:
            rows = await self._fetch(
                "SELECT id, notifier, body, created_at, done_at, outcome FROM outbox"
                " WHERE created_at >= ? ORDER BY id",
                (since,),
            )
        return [Notice(int(i), str(n), str(b), float(c), d, o) for i, n, b, c, d, o in rows]

    async def take_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Hold or renew ``name`` (one UPSERT: two takers cannot both win)."""
        async with self._write(immediate=True) as db:
            cursor = await db.execute(
                f"INSERT INTO leases (name, holder, until) VALUES (?, ?, {_SQLITE_NOW} + ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                f" until = excluded.until WHERE leases.holder = excluded.holder"
                f" OR leases.until < {_SQLITE_NOW}",
                (name, holder, ttl_s),
            )
            return cursor.rowcount == 1

    async def release_lease(self, name: str, holder: str) -> None:
        """Give ``name`` up if ``holder`` holds it."""
        async with self._write() as db:
            await db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    async def lease(self, name: str) -> tuple[str, float] | None:
        """Holder and seconds left, unless free or expired."""
        async with self._lock:
            rows = await self._fetch(
                f"SELECT holder, until - {_SQLITE_NOW} FROM leases WHERE name = ?", (name,)
            )
        if not rows or float(rows[0][1]) < 0:
            return None
        return str(rows[0][0]), float(rows[0][1])

    async def write_instance(self, instance: InstanceRecord) -> None:
        """Replace the instance's row."""
        async with self._write() as db:
            await db.execute(
                "INSERT OR REPLACE INTO instances VALUES (?, ?, ?, ?, ?, ?)", astuple(instance)
            )

    async def instances(self) -> list[InstanceRecord]:
        """Every instance, by location then name."""
        async with self._lock:
            rows = await self._fetch(
                "SELECT name, location, version, started_at, seen_at, last_result_at"
                " FROM instances ORDER BY location, name"
            )
        return [InstanceRecord(*row) for row in rows]

    async def results(self, start: float, end: float, service: str | None = None) -> list[Result]:
        """Raw results that started in ``[start, end)``."""
        async with self._lock:
            query = (
                "SELECT service, probe, kind, started_at, latency_s, outcome, detail, request_id,"
                " location, late FROM results WHERE started_at >= ? AND started_at < ?"
            )
            args: tuple[object, ...] = (start, end)
            if service is not None:
                query += " AND service = ?"
                args = (*args, service)
            query += " ORDER BY started_at, id"
            rows = await self._fetch(query, args)
            return [
                Result(s, p, k, t, lat, Outcome(o), d, rid, loc, bool(late))
                for s, p, k, t, lat, o, d, rid, loc, late in rows
            ]

    async def prune(self, raw_before: float, rollups_before_minute: int) -> int:
        """Delete old raw results and rollups."""
        async with self._write() as db:
            cursor = await db.execute("DELETE FROM results WHERE started_at < ?", (raw_before,))
            deleted = cursor.rowcount
            for table in ("rollups", "minute_states"):
                cursor = await db.execute(
                    f"DELETE FROM {table} WHERE minute < ?", (rollups_before_minute,)
                )
                deleted += cursor.rowcount
            cursor = await db.execute(
                "DELETE FROM hours WHERE hour < ?", (rollups_before_minute // 60,)
            )
            deleted += cursor.rowcount
            cursor = await db.execute(
                "DELETE FROM days WHERE day < ?", (rollups_before_minute // 1440,)
            )
            deleted += cursor.rowcount
        if deleted:
            await self._vacuum()
        return deleted

    async def _vacuum(self) -> None:
        """Give the pages deleted rows left free back to the file system (a store made
        with incremental auto-vacuum; a no-op for older ones)."""
        async with self._lock:
            try:
                # A script, not execute(): execute steps the pragma once, freeing one page.
                await self.db.executescript("PRAGMA incremental_vacuum;")
            except (OSError, aiosqlite.Error) as exc:
                raise StoreError(f"cannot vacuum the store {self.path}: {exc}") from exc

    async def write_minute_states(self, minutes: Sequence[ServiceMinute]) -> None:
        """Persist minute decisions in one transaction."""
        async with self._write() as db:
            await db.executemany(
                "INSERT OR REPLACE INTO minute_states (service, minute, exclusion, states,"
                " faults) VALUES (?, ?, ?, ?, ?)",
                [(m.service, m.minute, m.exclusion, *state_columns(m)) for m in minutes],
            )

    async def minute_states(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[ServiceMinute]:
        """Minute decisions in ``[start_minute, end_minute)``."""
        query = (
            "SELECT service, minute, exclusion, states, faults FROM minute_states"
            " WHERE minute >= ? AND minute < ?"
        )
        args: tuple[object, ...] = (start_minute, end_minute)
        if service is not None:
            query += " AND service = ?"
            args = (*args, service)
        query += " ORDER BY minute, service"
        async with self._lock:
            rows = await self._fetch(query, args)
        return [service_minute(*row) for row in rows]

    async def location_faults(
        self, start_minute: int, end_minute: int
    ) -> list[tuple[str, str, str, int]]:
        """Faulty minutes per service, objective and location (only those rows read)."""
        async with self._lock:
            rows = await self._fetch(
                "SELECT service, faults FROM minute_states"
                " WHERE minute >= ? AND minute < ? AND faults != ''",
                (start_minute, end_minute),
            )
        return count_faults(rows)

    async def save_alert(self, alert: Alert) -> None:
        """Insert or replace one alert."""
        async with self._write() as db:
            await db.execute(
                "INSERT OR REPLACE INTO alerts (alert_id, fingerprint, status, pending_since,"
                " body) VALUES (?, ?, ?, ?, ?)",
                (
                    alert.alert_id,
                    alert.fingerprint,
                    alert.status,
                    alert.pending_since,
                    json.dumps(alert.to_dict(), sort_keys=True),
                ),
            )

    async def load_alerts(self, active_only: bool = False, limit: int = 100) -> list[Alert]:
        """Alerts, newest first."""
        query = "SELECT body FROM alerts"
        if active_only:
            query += " WHERE status IN ('pending', 'firing')"
        query += " ORDER BY pending_since DESC, alert_id LIMIT ?"
        async with self._lock:
            rows = await self._fetch(query, (limit,))
        return [Alert.from_dict(json.loads(body)) for (body,) in rows]

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
        async with self._write() as db:
            await db.executemany(
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
        correction: str | None = None,
        origin: str | None = None,
    ) -> MaintenanceWindow:
        """Insert a window and return it with its new id."""
        check_window(service, start, end, announced_at)
        async with self._write() as db:
            cursor = await db.execute(
                'INSERT INTO maintenance (service, "start", "end", reason, announced_at,'
                " created_by, created_at, correction, origin)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    service,
                    start,
                    end,
                    reason,
                    announced_at,
                    created_by,
                    self._clock.now(),
                    correction,
                    origin,
                ),
            )
            row_id = cursor.lastrowid
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
        return [maintenance_record(row) for row in rows]

    async def remove_maintenance(self, id: str, removed_by: str) -> bool:
        """Mark a window removed; False when unknown or already removed."""
        row_id = parse_row_id(id)
        if row_id is None:
            return False
        async with self._write() as db:
            # One conditional UPDATE, so two removers racing cannot both succeed.
            cursor = await db.execute(
                "UPDATE maintenance SET removed_at = ?, removed_by = ?"
                " WHERE id = ? AND removed_at IS NULL",
                (self._clock.now(), removed_by, row_id),
            )
            changed = cursor.rowcount
        return bool(changed == 1)

    async def maintenance_version(self) -> int:
        """The maintenance change counter kept by the table's triggers."""
        async with self._lock:
            rows = await self._fetch("SELECT value FROM counters WHERE name = 'maintenance'")
        return int(rows[0][0]) if rows else 0

    async def update_maintenance(
        self, id: str, start: float, end: float, reason: str, announced_at: float
    ) -> MaintenanceWindow | None:
        """Change a stored window (the triggers bump the maintenance version)."""
        row_id = parse_row_id(id)
        if row_id is None:
            return None
        async with self._write() as db:
            async with db.execute(
                "SELECT service FROM maintenance WHERE id = ? AND removed_at IS NULL", (row_id,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            service = str(row[0])
            check_window(service, start, end, announced_at)
            await db.execute(
                'UPDATE maintenance SET "start" = ?, "end" = ?, reason = ?, announced_at = ?'
                " WHERE id = ? AND removed_at IS NULL",
                (start, end, reason, announced_at, row_id),
            )
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
        async with self._write(immediate=True) as db:
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
        row_id = parse_row_id(incident_id)
        if row_id is None:
            return None
        async with self._write(immediate=True) as db:
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
        row_id = parse_row_id(incident_id)
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
        return incidents_of(rows, update_rows)

    async def aclose(self) -> None:
        """Close the connection (every write was already committed)."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()
