"""EXPERIMENT ONLY (not used by the daemon): the rollup half of ``SqliteStore.write_batch``
with a constant number of round trips to aiosqlite's thread per batch instead of two per
(service, probe, minute) key. Benchmarks patch it in with ``--store batched`` to measure
the effect of the fix proposed in bench/RESULTS.md."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import aiosqlite

from monitor.errors import StoreError
from monitor.results import Result
from monitor.sla import Rollup
from monitor.store import RollupKey, SqliteStore, _merge_body


async def write_batch(
    self: SqliteStore, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
) -> None:
    """Insert raw results and add rollup deltas in one transaction, in 5 round trips."""
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
            minutes = sorted({minute for _, _, minute in deltas})
            marks = ",".join("?" * len(minutes))
            rows = await db.execute_fetchall(
                f"SELECT service, probe, minute, body FROM rollups WHERE minute IN ({marks})",
                minutes,
            )
            bodies = {(s, p, m): b for s, p, m, b in rows}
            merged_rows = []
            for (service, probe, minute), delta in deltas.items():
                merged = _merge_body(bodies.get((service, probe, minute)), delta)
                body = json.dumps(merged.to_dict(), separators=(",", ":"))
                merged_rows.append((service, probe, minute, merged.attempts, merged.ok, body))
            await db.executemany(
                "INSERT OR REPLACE INTO rollups"
                " (service, probe, minute, attempts, ok, body) VALUES (?, ?, ?, ?, ?, ?)",
                merged_rows,
            )
            await db.commit()
        except (OSError, aiosqlite.Error) as exc:
            await self._rollback()
            raise StoreError(f"cannot write to the store {self.path}: {exc}") from exc


def install() -> None:
    """Patch ``SqliteStore.write_batch`` in this process."""
    SqliteStore.write_batch = write_batch  # type: ignore[method-assign]
