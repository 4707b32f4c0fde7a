"""A store that fails loses nothing: a daemon probing a real HTTP target writes to a real
SQLite file behind a wrapper that injects write failures (a fault-injecting wrapper rather
than a full tmpfs, so the test needs no root); results beyond ``max_staged`` spill to the
spool, the stop while the store fails puts the rest there, and the next start writes them
back: every accepted result is in the store. A daemon whose store and spool both fail
(a real process with a per-file size limit) says how many results it lost and exits 1.
A store that cannot be opened or written at start stops the start, unless a degraded
start was asked for: then it measures into memory and writes all back once it recovers.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.app import Daemon
from monitor.errors import StoreError
from monitor.results import Result
from monitor.sla.counts import Rollup
from monitor.store import SqliteStore
from monitor.store.records import RollupKey
from simulator.network import Simulator
from tests.support.stack import daemon_config, simulator_settings, validate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]


class FailingWrites(SqliteStore):
    """A real SQLite store whose result writes fail while ``failing`` is set, as a full
    disk makes them fail (everything else works)."""

    failing = False

    async def write_batch(
        self, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
    ) -> None:
        if self.failing:
            raise StoreError("database or disk is full (injected)")
        await super().write_batch(results, deltas)


def _document(store: Path, port: int, **storage: Any) -> dict[str, Any]:
    document = daemon_config(
        store=store,
        services=[
            {
                "name": "svc",
                "probes": [
                    {
                        "name": f"p{i}",
                        "kind": "http",
                        "url": f"http://127.0.0.1:{port}/x",
                        "interval": 0.02,
                        "timeout": 1,
                    }
                    for i in range(4)
                ],
                "objectives": [{"name": "fast", "kind": "latency", "threshold": 0.5, "target": 99}],
            }
        ],
    )
    document["storage"].update(storage)
    return document


def _stored(path: Path) -> int:
    """Results in the store (0 while the daemon has not created its schema yet)."""
    with closing(sqlite3.connect(path)) as db:
        try:
            (count,) = db.execute("SELECT COUNT(*) FROM results").fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(count)


async def _until(condition: Any, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)


async def test_a_failing_store_spills_to_the_spool_and_the_next_start_writes_it_back(
    tmp_path: Path,
) -> None:
    settings = simulator_settings(routes=["/x"], profile={"latency": {"median": 0.002}})
    async with Simulator(settings, {}) as sim:
        assert sim.http_port is not None
        path = tmp_path / "store.sqlite3"
        config = validate(_document(path, sim.http_port, max_staged=200, batch_size=100))
        store = FailingWrites(path)
        daemon = Daemon(config, store=store)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        await asyncio.wait_for(daemon.ready.wait(), 20)
        await _until(lambda: daemon.collector.written > 100, 20)
        store.failing = True
        assert daemon.spool is not None
        # The outage outlasts what memory may hold: results spill to the spool.
        await _until(lambda: daemon.spool is not None and daemon.spool.pending() > 400, 30)
        assert daemon.collector.staged < 200 + 100  # memory stays bounded
        stop.set()  # SIGTERM while the store still fails
        await asyncio.wait_for(task, 30)

    accepted, written = daemon.collector.accepted, daemon.collector.written
    assert daemon.lost_results == 0
    in_spool = daemon.spool.pending()
    assert _stored(path) == written
    assert written + in_spool == accepted

    # The next start (the store healthy again) writes the spool back before loading.
    again = Daemon(config)
    await again.store.open()
    try:
        await again._replay_spool()
    finally:
        await again.store.aclose()
    assert _stored(path) == accepted
    assert again.spool is not None
    assert again.spool.pending() == 0
    assert not again.spool.path.exists()


def test_when_the_spool_fails_too_the_loss_is_said_and_the_exit_code_is_1(
    tmp_path: Path,
) -> None:
    """A real daemon process: once it runs, every file it writes is capped at 4 KiB (the
    store and the spool alike fail as on a full disk); SIGTERM then ends it with the
    count of lost results and exit 1."""

    async def target() -> tuple[int, subprocess.CompletedProcess[str]]:
        settings = simulator_settings(routes=["/x"], profile={"latency": {"median": 0.002}})
        async with Simulator(settings, {}) as sim:
            assert sim.http_port is not None
            path = tmp_path / "store.sqlite3"
            config_path = tmp_path / "config.yaml"
            document = _document(path, sim.http_port, max_staged=100)
            config_path.write_text(yaml.safe_dump(document))

            def ignore_file_size_signal() -> None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of dying

            process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config_path)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=ignore_file_size_signal,
            )
            try:
                deadline = time.monotonic() + 30
                while not path.exists() or _stored(path) < 50:
                    assert process.poll() is None, process.communicate()
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)
                limit = 4096
                resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (limit, limit))
                await asyncio.sleep(3)
                os.kill(process.pid, signal.SIGTERM)
                out, err = await asyncio.to_thread(process.communicate, timeout=60)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate()  # also closes its pipes
            return process.returncode, subprocess.CompletedProcess([], process.returncode, out, err)

    code, done = asyncio.run(target())
    assert code == 1, done.stderr[-2000:]
    assert "results lost: neither the store nor the spool took them" in done.stderr
    assert "measured results were lost" in done.stderr


def test_a_store_that_cannot_be_opened_stops_the_start(tmp_path: Path) -> None:
    """A real process whose every file is capped at 4 KiB from the start (as on a full
    disk): SQLite cannot set up its WAL index, so the start stops with one line naming
    the file, exit 1."""
    path = tmp_path / "store.sqlite3"
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(_document(path, 9)))  # never gets to probe

    def cap_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of dying
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))

    done = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(config_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        preexec_fn=cap_files,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"sla-monitor: cannot open the store {path}" in done.stderr
    assert "Traceback" not in done.stderr


class RefusingWrites(FailingWrites):
    """Also refuses the start's write check while failing (a read-only file that opens)."""

    async def check_writable(self) -> None:
        if self.failing:
            raise StoreError(f"cannot write to the store {self.path}: readonly (injected)")
        await super().check_writable()


async def test_a_store_that_takes_no_write_stops_the_start_unless_degraded_is_allowed(
    tmp_path: Path,
) -> None:
    settings = simulator_settings(routes=["/x"], profile={"latency": {"median": 0.002}})
    async with Simulator(settings, {}) as sim:
        assert sim.http_port is not None
        path = tmp_path / "store.sqlite3"
        config = validate(_document(path, sim.http_port, max_staged=100_000))
        store = RefusingWrites(path)
        store.failing = True
        with pytest.raises(StoreError, match="--allow-degraded-start"):
            await Daemon(config, store=store).run(asyncio.Event())
        assert _stored(path) == 0

        store = RefusingWrites(path)
        store.failing = True
        daemon = Daemon(config, store=store, allow_degraded_start=True)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        await asyncio.wait_for(daemon.ready.wait(), 20)
        await _until(lambda: daemon.collector.accepted > 200, 20)  # measuring, unwritten
        assert daemon.collector.written == 0
        measured_degraded = daemon.collector.accepted
        store.failing = False  # the store recovers
        await _until(lambda: daemon.collector.written >= measured_degraded, 30)
        stop.set()
        await asyncio.wait_for(task, 30)
    assert daemon.lost_results == 0
    assert _stored(path) == daemon.collector.accepted == daemon.collector.written
