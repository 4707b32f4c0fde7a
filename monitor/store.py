"""The Store: raw results for audit and per-minute rollups, the unit of history.

Raw rows and the rollups they change are written in one transaction, so the two can never
disagree, and a restart rebuilds every window from what is on disk (DESIGN decisions 2, 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import aiosqlite

from monitor.errors import StoreError
from monitor.results import Result
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
"""


class Store(Protocol):
    """Where results and minute rollups live."""

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

    async def aclose(self) -> None:
        """Flush and close."""
        ...


def _merge_body(body: str | None, delta: Rollup) -> Rollup:
    rollup = Rollup.from_dict(json.loads(body)) if body else Rollup()
    rollup.merge(delta)
    return rollup


class SqliteStore:
    """A Store on one SQLite file in WAL mode, written by one process."""

    def __init__(self, path: str | Path, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        # One connection, several tasks (collector, pruning, API): without this a
        # statement of one task could run inside, and be committed with, another's batch.
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Open the file (creating its folder) and the schema."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path)
            await self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a crash of the process (not of the OS) with
            # no lost commit, at ~10 % more throughput than FULL.
            await self._db.execute(f"PRAGMA synchronous={self._synchronous}")
            await self._db.executescript(_SCHEMA)
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
                cursor = await self.db.execute(
                    "DELETE FROM rollups WHERE minute < ?", (rollups_before_minute,)
                )
                deleted += cursor.rowcount
                await self.db.commit()
            except (OSError, aiosqlite.Error) as exc:
                raise StoreError(f"cannot prune the store {self.path}: {exc}") from exc
            return deleted

    async def aclose(self) -> None:
        """Close the connection (every write was already committed)."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()


class MemoryStore:
    """A Store in memory, for tests of what sits above the store."""

    def __init__(self) -> None:
        self._results: list[Result] = []
        self._rollups: dict[RollupKey, Rollup] = {}

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
        return before - len(self._results) - len(self._rollups)

    async def aclose(self) -> None:
        """Nothing to close."""
