"""The daemon digests the settled days of its store by itself: a real daemon on a real
SQLite file holding the raw results of two days ago; its digest of that day equals the
one computed here from the file with sqlite3, the csv module and hashlib."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import io
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from monitor.app import Daemon
from monitor.results import Result
from monitor.store import SqliteStore
from probes.base import Outcome
from tests.support.stack import daemon_config, validate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _expected(db: sqlite3.Connection, start: float, end: float) -> tuple[int, str]:
    rows = db.execute(
        "SELECT service, probe, kind, started_at, latency_s, outcome, detail, request_id,"
        " location, late FROM results WHERE started_at >= ? AND started_at < ?"
        " ORDER BY started_at, id",
        (start, end),
    ).fetchall()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for service, probe, kind, started, latency, outcome, detail, request_id, *more in rows:
        utc = dt.datetime.fromtimestamp(started, dt.UTC).isoformat()
        writer.writerow([service, probe, kind, repr(started), utc, repr(latency), outcome,
                         detail, request_id, *more])  # fmt: skip
    return len(rows), hashlib.sha256(buffer.getvalue().encode()).hexdigest()


async def test_the_daemon_digests_a_settled_day_of_its_store(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    # Two days ago (UTC): settled by more than an hour whenever the test runs.
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
    start = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()
    end = start + 86400
    results = [
        Result("api", "p", "http", start + 30.0 * k, 0.01 * (k % 7), Outcome.OK)
        for k in range(2880)
    ] + [Result("api", "p", "http", start + 45.0, 5.0, Outcome.TIMEOUT, "no answer, in 5 s")]
    store = SqliteStore(path)
    await store.open()
    await store.write_batch(results, {})
    await store.aclose()

    document = daemon_config(
        store=path,
        services=[{"name": "api", "probes": [
            {"name": "p", "kind": "http", "url": "http://127.0.0.1:9/", "interval": 5}]}],
    )  # fmt: skip
    document["timezone"] = "UTC"
    daemon = Daemon(validate(document))
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        deadline = time.monotonic() + 60
        found = None
        # Until the daemon has its child's answer (the row is written a moment before).
        while (found is None or daemon.digests.head is None) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            assert not task.done()
            with closing(sqlite3.connect(path)) as db:
                found = db.execute(
                    "SELECT results, results_sha256, previous, chain FROM digests WHERE date = ?",
                    (day.isoformat(),),
                ).fetchone()
        assert found is not None, "no digest of the day within 60 s"
        with closing(sqlite3.connect(path)) as db:
            expected = _expected(db, start, end)
            before = db.execute(
                "SELECT chain FROM digests WHERE date = ?",
                ((day - dt.timedelta(days=1)).isoformat(),),
            ).fetchone()
        assert (found[0], found[1]) == expected
        assert found[0] == 2881
        # Chained to the day before, as the README documents the link.
        text = f"{found[2]}\n{day.isoformat()}\n{found[0]}\n{found[1]}\nformat 2\n"
        assert found[2] == before[0]
        assert found[3] == hashlib.sha256(text.encode()).hexdigest()
        assert daemon.digests.head is not None
        assert daemon.digests.head["date"] >= day.isoformat()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
