"""Pruning gives the space back: a new SQLite store vacuums incrementally, so after old
rows are pruned the file shrinks (it used to stay at its largest size for good); a store
made before keeps its mode, says how to convert it, and is not harmed by the prune."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from monitor.results import Result
from monitor.sla.counts import Rollup
from monitor.store import SqliteStore
from probes.base import Outcome

T0 = 1_790_000_000.0


def _results(n: int) -> list[Result]:
    return [
        Result("svc", f"p{i % 10}", "http", T0 + i, 0.1, Outcome.OK, "", f"request-{i:08d}")
        for i in range(n)
    ]


async def _fill_and_prune(path: Path) -> tuple[int, int]:
    """File sizes after 60,000 results, then after pruning all of them."""
    store = SqliteStore(path)
    await store.open()
    results = _results(60_000)
    for at in range(0, len(results), 5_000):
        batch = results[at : at + 5_000]
        deltas: dict[tuple[str, str, int], Rollup] = {}
        for result in batch:
            deltas.setdefault((result.service, result.probe, result.minute), Rollup()).add(
                True, "ok", result.latency_s, (1.0,)
            )
        await store.write_batch(batch, deltas)
    await store.aclose()  # the last connection checkpoints the WAL into the file
    full = path.stat().st_size
    store = SqliteStore(path)
    await store.open()
    deleted = await store.prune(T0 + 10**6, int((T0 + 10**6) // 60))
    await store.aclose()
    assert deleted >= 60_000
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM results").fetchone() == (0,)
    return full, path.stat().st_size


async def test_a_new_store_shrinks_after_a_prune(tmp_path: Path) -> None:
    full, pruned = await _fill_and_prune(tmp_path / "sla.sqlite3")
    assert full > 5_000_000
    assert pruned < full / 5, (full, pruned)


async def test_an_older_store_keeps_its_mode_and_says_how_to_convert_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(path)) as db:  # as stores were made before
        db.execute("CREATE TABLE placeholder (x)")
        db.execute("DROP TABLE placeholder")
    with caplog.at_level(logging.INFO, logger="monitor.store.sqlite"):
        full, pruned = await _fill_and_prune(path)
    assert pruned == full  # pages kept for reuse, not given back
    assert "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;" in caplog.text
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("VACUUM")
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)
    assert path.stat().st_size < full / 5
