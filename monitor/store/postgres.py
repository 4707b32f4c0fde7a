"""The PostgreSQL store: the same Store as ``SqliteStore`` (one contract suite runs on
both), for daemons that share one database or an operator who wants a database server.

psycopg 3 rather than asyncpg: both write raw results far above the need (255k and 279k
rows/s by COPY, ``bench/pg_drivers.py``), and psycopg is typed, takes libpq's connection
strings and environment (``PGPASSWORD``, ``PGSSLMODE``, service files) as ops teams
already use them, and is the PostgreSQL project's own driver.

Raw rows go in by binary COPY; the rollups they change are read, merged and written back
in the same transaction, under a transaction-level advisory lock so two daemons writing
one database cannot lose each other's counts. A lost connection is reopened at the next
call; the call that found it lost raises ``StoreError``, and the collector keeps its
results until a write succeeds (nothing is lost, nothing written twice: a failed
transaction wrote nothing).

One class on one connection (~1,010 lines), like the SQLite store; the schema is
``monitor.store.pg_migrations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import astuple
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from monitor.clock import Clock, SystemClock
from monitor.errors import StoreError
from monitor.results import BatchRecord, DaySummary, HourSummary, Result, ServiceMinute
from monitor.sla.counts import Counted, Rollup
from monitor.sla.eligibility import MaintenanceWindow
from monitor.sla.minutes import ProbeId
from monitor.store.base import DecideMinute, SharedMinute
from monitor.store.pg_migrations import migrate
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

#: The advisory lock every write of results or rollups holds to its transaction's end.
ROLLUP_LOCK = 0x736C6172
#: The server's clock in UTC epoch seconds (leases are timed by it, not by a daemon).
_PG_NOW = "extract(epoch from clock_timestamp())::double precision"
#: Seconds to wait for the server when connecting.
CONNECT_TIMEOUT_S = 5

_Conn = psycopg.AsyncConnection[tuple[Any, ...]]

_MAINTENANCE_COLUMNS = (
    'id, service, "start", "end", reason, announced_at, created_by, created_at,'
    " removed_at, removed_by, correction, origin"
)
_RESULT_COLUMNS = (
    "service, probe, kind, started_at, latency_s, outcome, detail, request_id, location, late"
)
_RESULT_TYPES = [
    *("text", "text", "text", "float8", "float8", "text", "text", "text", "text", "bool")
]


def redacted(url: str) -> str:
    """The URL as logs and errors show it: no password, whatever form it came in."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(an invalid URL)"
    host = parts.get("host", "")
    port = f":{parts['port']}" if parts.get("port") else ""
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname', '')}"


def _rollup_of(body: str) -> Rollup:
    return Rollup.from_dict(json.loads(body))


def _body(rollup: Rollup) -> str:
    return json.dumps(rollup.to_dict(), separators=(",", ":"))


class PostgresStore:
    """A Store on a PostgreSQL database, shared by any number of daemons and the CLI."""

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self.url = url
        self.where = redacted(url)
        self._clock = clock or SystemClock()
        self._conn: _Conn | None = None
        #: Several locations decide minutes together (``share_minutes``).
        self._shared = False
        #: Per probe: results whose minute was decided before they were written.
        self._late: dict[ProbeId, int] = {}
        # One connection, several tasks: without this one task's statement could run
        # inside, and be committed with, another's transaction.
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect and bring the schema to the current version."""
        async with self._lock:
            conn = await self._connection()
            try:
                await migrate(conn, self.where, self._clock.now())
            except psycopg.Error as exc:
                raise StoreError(f"cannot open the store {self.where}: {exc}") from exc

    async def _connection(self) -> _Conn:
        """The open connection, made again when the server dropped it (caller holds the lock)."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
            self._conn = None
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the store {self.where}: {exc}") from exc
        return self._conn

    @contextlib.asynccontextmanager
    async def _write(self, *, rollups: bool = False) -> AsyncIterator[_Conn]:
        """One transaction under the connection lock: committed when the block ends,
        rolled back and raised as StoreError when the server fails; ``rollups`` takes the
        lock that orders every writer of rollups."""
        async with self._lock:
            conn = await self._connection()
            try:
                async with conn.transaction():
                    if rollups:
                        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK,))
                    yield conn
            except psycopg.Error as exc:
                raise StoreError(f"cannot write to the store {self.where}: {exc}") from exc

    async def _fetch(self, query: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query, as StoreError on failure."""
        async with self._lock:
            conn = await self._connection()
            try:
                cur = await conn.execute(query, args)
                return await cur.fetchall()
            except psycopg.Error as exc:
                raise StoreError(f"cannot read the store {self.where}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the connection (every write was already committed)."""
        async with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                with contextlib.suppress(psycopg.Error):
                    await conn.close()

    async def check_writable(self) -> None:
        """Commit one small row: a read-only server or a full disk shows here."""
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO counters (name, value) VALUES ('write check', 1)"
                " ON CONFLICT (name) DO UPDATE SET value = counters.value + 1"
            )

    # --- runs ---------------------------------------------------------------------------

    async def run_marks(self, instance: str = "") -> RunMarks:
        """The marks, kept in the counters table in milliseconds."""
        names = [mark_name(m, instance) for m in RUN_MARKS]
        rows = await self._fetch(
            "SELECT name, value FROM counters WHERE name = ANY(%s::text[])", (names,)
        )
        marks = {RUN_MARKS[names.index(str(name))]: int(value) / 1000 for name, value in rows}
        return RunMarks(**marks)

    async def mark_run(self, mark: RunMark, at: float, instance: str = "") -> None:
        """Replace a mark."""
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO counters (name, value) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (mark_name(mark, instance), round(at * 1000)),
            )

    async def last_results(
        self, since: float, location: str | None = None
    ) -> dict[tuple[str, str], float]:
        """Per probe: its last result's start after ``since``."""
        query = "SELECT service, probe, MAX(started_at) FROM results WHERE started_at > %s"
        args: tuple[object, ...] = (since,)
        if location is not None:
            query += " AND location = %s"
            args = (since, location)
        rows = await self._fetch(query + " GROUP BY service, probe", args)
        return {(str(s), str(p)): float(at) for s, p, at in rows}

    # --- results and rollups ------------------------------------------------------------

    async def write_batch(
        self, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
    ) -> None:
        """Insert raw results and add rollup deltas in one transaction."""
        async with self._write(rollups=True) as conn:
            late = await self._insert(conn, results, deltas)
        self._count_late(late)

    async def write_events(
        self, events: Sequence[Result], counted: Sequence[Counted]
    ) -> list[bool]:
        """Insert the traffic events not stored before with their rollup deltas."""
        async with self._write(rollups=True) as conn:
            services = [e.service for e in events]
            ids = [e.request_id for e in events]
            cur = await conn.execute(
                "SELECT r.service, r.request_id FROM results r"
                " JOIN unnest(%s::text[], %s::text[]) AS w(service, id)"
                " ON r.service = w.service AND r.request_id = w.id WHERE r.kind = 'traffic'",
                (services, ids),
            )
            stored = {(str(s), str(i)) for s, i in await cur.fetchall()}
            fresh, new = fresh_events(events, counted, stored)
            late = await self._insert(conn, fresh, event_deltas(events, counted, new))
        self._count_late(late)
        return new

    async def _insert(
        self, conn: _Conn, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
    ) -> dict[ProbeId, int]:
        """The raw rows (binary COPY) and the rollups they change, inside the caller's
        transaction; per probe, the results whose minute was decided already (late, with
        several locations: counted once the transaction commits)."""
        late: dict[ProbeId, int] = {}
        decided: set[int] = set()
        if self._shared and results:
            deltas, decided = await self._undecided(conn, results, deltas, late)
        if results:
            async with (
                conn.cursor() as cur,
                cur.copy(f"COPY results ({_RESULT_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(_RESULT_TYPES)
                for r in results:
                    await copy.write_row(
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
                            int(r.started_at // 60) in decided,  # late: counted nowhere
                        )
                    )
        if not deltas:
            return late
        keys = list(deltas)
        cur = await conn.execute(
            "SELECT r.service, r.probe, r.minute, r.body FROM rollups r"
            " JOIN unnest(%s::text[], %s::text[], %s::bigint[]) AS w(service, probe, minute)"
            " ON r.minute = w.minute AND r.service = w.service AND r.probe = w.probe",
            ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
        )
        existing = {(str(s), str(p), int(m)): str(b) for s, p, m, b in await cur.fetchall()}
        rows = []
        for key, delta in deltas.items():
            body = existing.get(key)
            merged = _rollup_of(body) if body else Rollup()
            merged.merge(delta)
            rows.append((*key, merged.attempts, merged.ok, _body(merged)))
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO rollups (service, probe, minute, attempts, ok, body)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (minute, service, probe)"
                " DO UPDATE SET attempts = excluded.attempts, ok = excluded.ok,"
                " body = excluded.body",
                rows,
            )
        return late

    # --- minutes decided by several locations -------------------------------------------

    def share_minutes(self) -> None:
        """Several locations write here and decide minutes together (``decide_minute``):
        from now on every batch also adds each location's counts, and a result whose minute
        is decided already is stored raw but counted in no rollup (``take_late``)."""
        self._shared = True

    def take_late(self) -> dict[ProbeId, int]:
        """Per probe, the results written since the last call whose minute the locations
        had already decided: kept raw, counted in no figure."""
        late, self._late = self._late, {}
        return late

    def _count_late(self, late: Mapping[ProbeId, int]) -> None:
        for probe, count in late.items():
            self._late[probe] = self._late.get(probe, 0) + count

    async def _undecided(
        self,
        conn: _Conn,
        results: Sequence[Result],
        deltas: Mapping[RollupKey, Rollup],
        late: dict[ProbeId, int],
    ) -> tuple[Mapping[RollupKey, Rollup], set[int]]:
        """Add each location's counts of the batch's undecided minutes, note the results
        of decided ones in ``late``, and return the rollup deltas of the undecided minutes
        and the decided ones (their results are stored marked late).
        Under ROLLUP_LOCK, as ``decide_minute`` is: a result counts before the decision or
        is late, never both."""
        minutes = sorted({int(r.started_at // 60) for r in results})
        cur = await conn.execute(
            "SELECT DISTINCT minute FROM minute_states WHERE minute = ANY(%s::bigint[])",
            (minutes,),
        )
        decided = {int(m) for (m,) in await cur.fetchall()}
        counts: dict[tuple[int, str, str, str], list[int]] = {}
        for r in results:
            minute = int(r.started_at // 60)
            if minute in decided:
                key = (r.service, r.probe)
                late[key] = late.get(key, 0) + 1
                continue
            count = counts.setdefault((minute, r.service, r.probe, r.location), [0, 0])
            count[0] += 1
            count[1] += r.ok
        if counts:
            async with conn.cursor() as cur2:
                await cur2.executemany(
                    "INSERT INTO location_counts (minute, service, probe, location, attempts, ok)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (minute, service, probe,"
                    " location) DO UPDATE SET attempts = location_counts.attempts"
                    " + excluded.attempts, ok = location_counts.ok + excluded.ok",
                    [(*key, a, ok) for key, (a, ok) in counts.items()],
                )
        if not decided:
            return deltas, decided
        return {key: delta for key, delta in deltas.items() if key[2] not in decided}, decided

    async def location_counts(
        self, start_minute: int, end_minute: int
    ) -> dict[int, dict[str, dict[ProbeId, Rollup]]]:
        """Per minute and location, each probe's attempts and successes."""
        rows = await self._fetch(
            "SELECT minute, location, service, probe, attempts, ok FROM location_counts"
            " WHERE minute >= %s AND minute < %s",
            (start_minute, end_minute),
        )
        counts: dict[int, dict[str, dict[ProbeId, Rollup]]] = {}
        for minute, location, service, probe, attempts, ok in rows:
            seen = counts.setdefault(int(minute), {}).setdefault(str(location), {})
            seen[(str(service), str(probe))] = Rollup(attempts=int(attempts), ok=int(ok))
        return counts

    async def decide_minute(self, minute: int, decide: DecideMinute) -> SharedMinute:
        """The minute as every location wrote it: its rollups (all locations pooled) and
        its decisions — made now by ``decide`` (from the pooled rollups and each location's
        counts) and stored, unless a daemon decided it already, whose decisions are
        returned. Under ROLLUP_LOCK: no result is counted into the minute after this."""
        async with self._write(rollups=True) as conn:
            cur = await conn.execute(
                "SELECT service, probe, body FROM rollups WHERE minute = %s", (minute,)
            )
            pooled = {(str(s), str(p)): _rollup_of(b) for s, p, b in await cur.fetchall()}
            cur = await conn.execute(
                "SELECT service, minute, exclusion, states, faults FROM minute_states"
                " WHERE minute = %s ORDER BY service",
                (minute,),
            )
            stored = [service_minute(*row) for row in await cur.fetchall()]
            if stored:
                return SharedMinute(pooled, stored, first=False)
            cur = await conn.execute(
                "SELECT location, service, probe, attempts, ok FROM location_counts"
                " WHERE minute = %s",
                (minute,),
            )
            by_location: dict[str, dict[ProbeId, Rollup]] = {}
            for location, service, probe, attempts, ok in await cur.fetchall():
                counts = Rollup(attempts=int(attempts), ok=int(ok))
                by_location.setdefault(str(location), {})[(str(service), str(probe))] = counts
            decisions = decide(pooled, by_location)
            async with conn.cursor() as cur2:
                await cur2.executemany(
                    "INSERT INTO minute_states (service, minute, exclusion, states, faults)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    [(m.service, m.minute, m.exclusion, *state_columns(m)) for m in decisions],
                )
        return SharedMinute(pooled, decisions, first=True)

    async def undecided_minutes(self, start_minute: int, end_minute: int) -> list[int]:
        """The minutes of ``[start_minute, end_minute)`` with results but no decision (every
        daemon stopped before deciding them), oldest first. Only those after the newest
        decision are read (an index lookup, then a few minutes of rollups): every daemon
        decides minutes in order, so none is left undecided before it."""
        rows = await self._fetch(
            "SELECT DISTINCT r.minute FROM rollups r WHERE r.minute >= %s AND r.minute < %s"
            " AND r.minute > COALESCE((SELECT MAX(minute) FROM minute_states), %s - 1)"
            " AND NOT EXISTS (SELECT 1 FROM minute_states m WHERE m.minute = r.minute)"
            " ORDER BY r.minute",
            (start_minute, end_minute, start_minute),
        )
        return [int(m) for (m,) in rows]

    async def rollups(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of minutes in ``[start_minute, end_minute)``."""
        query = (
            "SELECT service, probe, minute, body FROM rollups WHERE minute >= %s AND minute < %s"
        )
        args: tuple[object, ...] = (start_minute, end_minute)
        if service is not None:
            query += " AND service = %s"
            args = (*args, service)
        rows = await self._fetch(query + " ORDER BY minute, service, probe", args)
        return [((s, p, int(m)), _rollup_of(b)) for s, p, m, b in rows]

    async def rollups_at(self, minutes: Sequence[int]) -> list[tuple[RollupKey, Rollup]]:
        """Rollups of the given minutes, in one query."""
        wanted = sorted(set(minutes))
        if not wanted:
            return []
        rows = await self._fetch(
            "SELECT service, probe, minute, body FROM rollups WHERE minute = ANY(%s::bigint[])"
            " ORDER BY minute, service, probe",
            (wanted,),
        )
        return [((s, p, int(m)), _rollup_of(b)) for s, p, m, b in rows]

    async def results(self, start: float, end: float, service: str | None = None) -> list[Result]:
        """Raw results that started in ``[start, end)``, in store order."""
        query = f"SELECT {_RESULT_COLUMNS} FROM results WHERE started_at >= %s AND started_at < %s"
        args: tuple[object, ...] = (start, end)
        if service is not None:
            query += " AND service = %s"
            args = (*args, service)
        rows = await self._fetch(query + " ORDER BY started_at, id", args)
        return [
            Result(s, p, k, t, lat, Outcome(o), d, rid, loc, late)
            for s, p, k, t, lat, o, d, rid, loc, late in rows
        ]

    async def prune(self, raw_before: float, rollups_before_minute: int) -> int:
        """Delete old raw results and rollups (autovacuum gives the space back)."""
        deleted = 0
        async with self._write() as conn:
            for query, bound in (
                ("DELETE FROM results WHERE started_at < %s", raw_before),
                ("DELETE FROM rollups WHERE minute < %s", rollups_before_minute),
                ("DELETE FROM minute_states WHERE minute < %s", rollups_before_minute),
                ("DELETE FROM location_counts WHERE minute < %s", rollups_before_minute),
                ("DELETE FROM hours WHERE hour < %s", rollups_before_minute // 60),
                ("DELETE FROM days WHERE day < %s", rollups_before_minute // 1440),
            ):
                cur = await conn.execute(query, (bound,))
                deleted += max(cur.rowcount, 0)
        return deleted

    # --- batch events and digests -------------------------------------------------------

    async def write_batch_events(self, events: Sequence[BatchRecord]) -> list[bool]:
        """Insert the batch events not stored before, in one transaction."""
        async with self._write(rollups=True) as conn:
            cur = await conn.execute(
                "SELECT b.service, b.id FROM batch_events b"
                " JOIN unnest(%s::text[], %s::text[]) AS w(service, id)"
                " ON b.service = w.service AND b.id = w.id",
                ([e.service for e in events], [e.id for e in events]),
            )
            stored = {(str(s), str(i)) for s, i in await cur.fetchall()}
            new: list[bool] = []
            rows = []
            for e in events:
                is_new = (e.service, e.id) not in stored
                new.append(is_new)
                if is_new:
                    stored.add((e.service, e.id))
                    rows.append((e.service, e.id, e.batch, e.event, e.at, e.records, e.institution))
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO batch_events (service, id, batch, event, at, records,"
                    " institution) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
        return new

    async def batch_events(self, since: float) -> list[BatchRecord]:
        """Every event of the batches with an event at or after ``since``."""
        rows = await self._fetch(
            "SELECT service, id, batch, event, at, records, institution FROM batch_events"
            " WHERE (service, batch) IN (SELECT service, batch FROM batch_events"
            " WHERE at >= %s) ORDER BY at, service, id",
            (since,),
        )
        return [
            BatchRecord(str(s), str(i), str(b), str(e), float(at), int(r), inst)
            for s, i, b, e, at, r, inst in rows
        ]

    async def write_digest(self, digest: DayDigest) -> bool:
        """Store a day's digest unless that day has one."""
        async with self._write() as conn:
            cur = await conn.execute(
                "INSERT INTO digests (date, results, results_sha256, previous, chain, made_at,"
                " format) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (date) DO NOTHING",
                astuple(digest),
            )
            return cur.rowcount == 1

    async def digests(self) -> list[DayDigest]:
        """Every digest, oldest day first."""
        rows = await self._fetch(
            "SELECT date, results, results_sha256, previous, chain, made_at, format"
            " FROM digests ORDER BY date"
        )
        return [
            DayDigest(str(d), int(n), str(h), str(p), str(c), float(m), int(f))
            for d, n, h, p, c, m, f in rows
        ]

    # --- instances ----------------------------------------------------------------------

    async def record_config(self, use: ConfigUse, body: str) -> None:
        """Record a start, and the config's text once."""
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO config_versions (sha256, body, first_seen_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (sha256) DO NOTHING",
                (use.sha256, body, use.at),
            )
            await conn.execute(
                "INSERT INTO config_history (at, instance, path, sha256) VALUES (%s, %s, %s, %s)",
                (use.at, use.instance, use.path, use.sha256),
            )

    async def config_uses(self, until: float) -> list[ConfigUse]:
        """Starts before ``until``, oldest first."""
        rows = await self._fetch(
            "SELECT at, instance, path, sha256 FROM config_history WHERE at < %s ORDER BY at, id",
            (until,),
        )
        return [ConfigUse(float(a), str(i), str(p), str(h)) for a, i, p, h in rows]

    async def config_body(self, sha256: str) -> str | None:
        """A recorded config's text."""
        rows = await self._fetch("SELECT body FROM config_versions WHERE sha256 = %s", (sha256,))
        return str(rows[0][0]) if rows else None

    async def add_notices(self, notices: Sequence[tuple[str, str]], at: float) -> list[int]:
        """Store notices in one transaction; their ids."""
        ids = []
        async with self._write() as conn:
            for notifier, body in notices:
                cur = await conn.execute(
                    "INSERT INTO outbox (notifier, body, created_at) VALUES (%s, %s, %s)"
                    " RETURNING id",
                    (notifier, body, at),
                )
                row = await cur.fetchone()
                assert row is not None  # RETURNING always gives the row
                ids.append(int(row[0]))
        return ids

    async def mark_notices(self, done: Sequence[tuple[int, str]], at: float) -> None:
        """Mark notices done in one transaction."""
        async with self._write() as conn, conn.cursor() as cur:
            await cur.executemany(
                "UPDATE outbox SET done_at = %s, outcome = %s WHERE id = %s",
                [(at, outcome, notice_id) for notice_id, outcome in done],
            )

    async def unsent_notices(self) -> list[Notice]:
        """Notices not done, oldest first."""
        rows = await self._fetch(
            "SELECT id, notifier, body, created_at FROM outbox WHERE done_at IS NULL ORDER BY id"
        )
        return [Notice(int(i), str(n), str(b), float(c)) for i, n, b, c in rows]

    async def notices(self, since: float) -> list[Notice]:
        """Notices stored since ``since``, oldest first."""
        rows = await self._fetch(
            "SELECT id, notifier, body, created_at, done_at, outcome FROM outbox"
            " WHERE created_at >= %s ORDER BY id",
            (since,),
        )
        return [Notice(int(i), str(n), str(b), float(c), d, o) for i, n, b, c, d, o in rows]

    async def take_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Hold or renew ``name`` (one UPSERT on the server's clock: two takers cannot
        both win, and the daemons' clocks do not matter)."""
        async with self._write() as conn:
            cur = await conn.execute(
                f"INSERT INTO leases (name, holder, until) VALUES (%s, %s, {_PG_NOW} + %s)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " until = excluded.until WHERE leases.holder = excluded.holder"
                f" OR leases.until < {_PG_NOW} RETURNING holder",
                (name, holder, ttl_s),
            )
            return await cur.fetchone() is not None

    async def release_lease(self, name: str, holder: str) -> None:
        """Give ``name`` up if ``holder`` holds it."""
        async with self._write() as conn:
            await conn.execute("DELETE FROM leases WHERE name = %s AND holder = %s", (name, holder))

    async def lease(self, name: str) -> tuple[str, float] | None:
        """Holder and seconds left, unless free or expired."""
        rows = await self._fetch(
            f"SELECT holder, until - {_PG_NOW} FROM leases WHERE name = %s", (name,)
        )
        if not rows or float(rows[0][1]) < 0:
            return None
        return str(rows[0][0]), float(rows[0][1])

    async def write_instance(self, instance: InstanceRecord) -> None:
        """Replace the instance's row."""
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO instances (name, location, version, started_at, seen_at,"
                " last_result_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE"
                " SET location = excluded.location, version = excluded.version,"
                " started_at = excluded.started_at, seen_at = excluded.seen_at,"
                " last_result_at = excluded.last_result_at",
                astuple(instance),
            )

    async def instances(self) -> list[InstanceRecord]:
        """Every instance, by location then name."""
        rows = await self._fetch(
            "SELECT name, location, version, started_at, seen_at, last_result_at"
            " FROM instances ORDER BY location, name"
        )
        return [InstanceRecord(*row) for row in rows]

    # --- sealed history -----------------------------------------------------------------

    async def write_minute_states(self, minutes: Sequence[ServiceMinute]) -> None:
        """Persist minute decisions in one transaction."""
        async with self._write() as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO minute_states (service, minute, exclusion, states, faults)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (minute, service) DO UPDATE"
                " SET exclusion = excluded.exclusion, states = excluded.states,"
                " faults = excluded.faults",
                [(m.service, m.minute, m.exclusion, *state_columns(m)) for m in minutes],
            )

    async def minute_states(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[ServiceMinute]:
        """Minute decisions in ``[start_minute, end_minute)``."""
        query = (
            "SELECT service, minute, exclusion, states, faults FROM minute_states"
            " WHERE minute >= %s AND minute < %s"
        )
        args: tuple[object, ...] = (start_minute, end_minute)
        if service is not None:
            query += " AND service = %s"
            args = (*args, service)
        rows = await self._fetch(query + " ORDER BY minute, service", args)
        return [service_minute(*row) for row in rows]

    async def location_faults(
        self, start_minute: int, end_minute: int
    ) -> list[tuple[str, str, str, int]]:
        """Faulty minutes per service, objective and location (only those rows read)."""
        rows = await self._fetch(
            "SELECT service, faults FROM minute_states"
            " WHERE minute >= %s AND minute < %s AND faults != ''",
            (start_minute, end_minute),
        )
        return count_faults((str(s), str(f)) for s, f in rows)

    async def minute_state_counts(
        self, start_minute: int, end_minute: int, bucket_minutes: int
    ) -> list[tuple[str, int, str, str, int]]:
        """Minute-state counts per bucket, aggregated by the server."""
        rows = await self._fetch(
            "SELECT service, (minute / %s) * %s, j.key, j.value, count(*)"
            " FROM minute_states, jsonb_each_text(minute_states.states::jsonb) AS j"
            " WHERE minute >= %s AND minute < %s GROUP BY 1, 2, 3, 4",
            (bucket_minutes, bucket_minutes, start_minute, end_minute),
        )
        return [(str(s), int(b), str(o), str(v), int(n)) for s, b, o, v, n in rows]

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
        async with self._write() as conn, conn.cursor() as cur:
            await cur.executemany(
                f"INSERT INTO {table} (service, {key}, exclusions, states, rollups)"
                f" VALUES (%s, %s, %s, %s, %s) ON CONFLICT ({key}, service) DO UPDATE"
                " SET exclusions = excluded.exclusions, states = excluded.states,"
                " rollups = excluded.rollups",
                [
                    (s, at, e, json.dumps(states), json.dumps(rollups, separators=(",", ":")))
                    for s, at, e, states, rollups in rows
                ],
            )

    async def _read_summaries(
        self, table: str, key: str, start: int, end: int
    ) -> list[tuple[str, int, str, Any, Any]]:
        """Compacted spans with ``start <= key < end``, states and rollups decoded."""
        rows = await self._fetch(
            f"SELECT service, {key}, exclusions, states, rollups FROM {table}"
            f" WHERE {key} >= %s AND {key} < %s ORDER BY {key}, service",
            (start, end),
        )
        return [
            (s, int(at), e, json.loads(states), json.loads(rollups))
            for s, at, e, states, rollups in rows
        ]

    async def days_to_compact(self, start_day: int, end_day: int) -> list[int]:
        """Days with a service whose 24 hours are compacted but not its day."""
        rows = await self._fetch(
            "SELECT DISTINCT complete.day FROM ("
            "  SELECT service, hour / 24 AS day FROM hours WHERE hour >= %s AND hour < %s"
            "  GROUP BY service, hour / 24 HAVING COUNT(*) = 24"
            ") AS complete LEFT JOIN days"
            " ON days.day = complete.day AND days.service = complete.service"
            " WHERE days.day IS NULL ORDER BY complete.day",
            (start_day * 24, end_day * 24),
        )
        return [int(day) for (day,) in rows]

    # --- alerts -------------------------------------------------------------------------

    async def save_alert(self, alert: Alert) -> None:
        """Insert or replace one alert."""
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO alerts (alert_id, fingerprint, status, pending_since, body)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (alert_id) DO UPDATE"
                " SET fingerprint = excluded.fingerprint, status = excluded.status,"
                " pending_since = excluded.pending_since, body = excluded.body",
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
        rows = await self._fetch(
            query + " ORDER BY pending_since DESC, alert_id LIMIT %s", (limit,)
        )
        return [Alert.from_dict(json.loads(body)) for (body,) in rows]

    # --- maintenance --------------------------------------------------------------------

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
        async with self._write() as conn:
            cur = await conn.execute(
                'INSERT INTO maintenance (service, "start", "end", reason, announced_at,'
                " created_by, created_at, correction, origin)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
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
            row = await cur.fetchone()
        assert row is not None  # RETURNING always gives the row
        return MaintenanceWindow(str(row[0]), service, start, end, reason, announced_at, "store")

    async def list_maintenance(self, include_removed: bool = False) -> list[MaintenanceWindow]:
        """Stored windows ordered by start."""
        return [r.window for r in await self.maintenance_records(include_removed)]

    async def maintenance_records(self, include_removed: bool = False) -> list[MaintenanceRecord]:
        """Stored windows with their audit trail, ordered by start."""
        query = f"SELECT {_MAINTENANCE_COLUMNS} FROM maintenance"
        if not include_removed:
            query += " WHERE removed_at IS NULL"
        rows = await self._fetch(query + ' ORDER BY "start", id')
        return [maintenance_record(row) for row in rows]

    async def remove_maintenance(self, id: str, removed_by: str) -> bool:
        """Mark a window removed; False when unknown or already removed."""
        row_id = parse_row_id(id)
        if row_id is None:
            return False
        async with self._write() as conn:
            cur = await conn.execute(
                "UPDATE maintenance SET removed_at = %s, removed_by = %s"
                " WHERE id = %s AND removed_at IS NULL",
                (self._clock.now(), removed_by, row_id),
            )
            return cur.rowcount == 1

    async def maintenance_version(self) -> int:
        """The maintenance change counter kept by the table's trigger."""
        rows = await self._fetch("SELECT value FROM counters WHERE name = 'maintenance'")
        return int(rows[0][0]) if rows else 0

    async def update_maintenance(
        self, id: str, start: float, end: float, reason: str, announced_at: float
    ) -> MaintenanceWindow | None:
        """Change a stored, not removed window."""
        row_id = parse_row_id(id)
        if row_id is None:
            return None
        async with self._write() as conn:
            cur = await conn.execute(
                "SELECT service FROM maintenance WHERE id = %s AND removed_at IS NULL FOR UPDATE",
                (row_id,),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            service = str(row[0])
            check_window(service, start, end, announced_at)
            await conn.execute(
                'UPDATE maintenance SET "start" = %s, "end" = %s, reason = %s,'
                " announced_at = %s WHERE id = %s",
                (start, end, reason, announced_at, row_id),
            )
        return MaintenanceWindow(str(row_id), service, start, end, reason, announced_at, "store")

    # --- incidents ----------------------------------------------------------------------

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
        async with self._write() as conn:
            cur = await conn.execute(
                "INSERT INTO incidents (service, title, source, objective, started_at,"
                " created_by) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (service, title, source, objective, started_at, created_by),
            )
            incident_row = await cur.fetchone()
            assert incident_row is not None
            cur = await conn.execute(
                "INSERT INTO incident_updates (incident_id, at, status, message, author)"
                " VALUES (%s, %s, 'investigating', %s, %s) RETURNING id",
                (incident_row[0], started_at, message, created_by),
            )
            update_row = await cur.fetchone()
            assert update_row is not None
        incident_id = str(incident_row[0])
        first = IncidentUpdate(
            str(update_row[0]), incident_id, started_at, "investigating", message, created_by
        )
        return Incident(
            incident_id, service, title, source, objective, started_at, None, created_by, (first,)
        )

    async def _append_update(
        self, incident_id: str, at: float, status: str, message: str, author: str
    ) -> IncidentUpdate | None:
        row_id = parse_row_id(incident_id)
        if row_id is None:
            return None
        async with self._write() as conn:
            if status == "resolved":
                cur = await conn.execute(
                    "UPDATE incidents SET resolved_at = %s WHERE id = %s AND resolved_at IS NULL",
                    (at, row_id),
                )
                found = cur.rowcount == 1
            else:
                cur = await conn.execute(
                    "SELECT 1 FROM incidents WHERE id = %s AND resolved_at IS NULL FOR UPDATE",
                    (row_id,),
                )
                found = await cur.fetchone() is not None
            if not found:
                return None
            cur = await conn.execute(
                "INSERT INTO incident_updates (incident_id, at, status, message, author)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (row_id, at, status, message, author),
            )
            row = await cur.fetchone()
            assert row is not None
        return IncidentUpdate(str(row[0]), str(row_id), at, status, message, author)

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
            query += " OR resolved_at >= %s"
            args = (-math.inf if since is None else since,)
        query += " ORDER BY started_at DESC, id DESC LIMIT %s"
        return await self._incidents(query, (*args, limit))

    async def incident(self, incident_id: str) -> Incident | None:
        """One incident with its updates."""
        row_id = parse_row_id(incident_id)
        if row_id is None:
            return None
        found = await self._incidents(
            "SELECT id, service, title, source, objective, started_at, resolved_at, created_by"
            " FROM incidents WHERE id = %s",
            (row_id,),
        )
        return found[0] if found else None

    async def _incidents(self, query: str, args: tuple[object, ...]) -> list[Incident]:
        rows = await self._fetch(query, args)
        update_rows = await self._fetch(
            "SELECT id, incident_id, at, status, message, author FROM incident_updates"
            " WHERE incident_id = ANY(%s::bigint[]) ORDER BY at, id",
            ([row[0] for row in rows],),
        )
        return incidents_of(rows, update_rows)
