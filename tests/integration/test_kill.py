"""SIGKILL under load: a real daemon process probing a real HTTP target at 200 results a
second is killed; every result it wrote survives, what it lost is at most a flush
interval's worth (plus what was in flight), checked request by request against the
simulator's truth log; the next start says so, in its log and in a metric bounding the
loss (checked against the truth), and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
import yaml

from monitor.store import SqliteStore
from monitor.store.records import RunMarks
from simulator.network import Simulator
from tests.support.brokers import free_port
from tests.support.stack import daemon_config, simulator_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
PROBES = 4
INTERVAL_S = 0.02
RATE = PROBES / INTERVAL_S  # results a second
FLUSH_S = 0.5


def _stored_ids(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        try:
            rows = db.execute("SELECT request_id FROM results").fetchall()
        except sqlite3.OperationalError:  # the schema is not there yet
            return set()
    return {str(row[0]) for row in rows}


def _start(config_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _gauge(text: str, name: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[-1])


def test_sigkill_under_load_loses_at_most_a_flush_interval_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    port = free_port()
    document = daemon_config(
        store=path,
        listen=f"127.0.0.1:{port}",
        services=[
            {
                "name": "svc",
                "probes": [
                    {
                        "name": f"p{i}",
                        "kind": "http",
                        "url": "http://127.0.0.1:{port}/x",
                        "interval": INTERVAL_S,
                        "timeout": 1,
                    }
                    for i in range(PROBES)
                ],
                "objectives": [{"name": "fast", "kind": "latency", "threshold": 0.5, "target": 99}],
            }
        ],
    )
    assert document["storage"]["flush_interval"] == FLUSH_S
    config_path = tmp_path / "config.yaml"

    async def scenario() -> tuple[set[str], set[str], str, str]:
        settings = simulator_settings(routes=["/x"], profile={"latency": {"median": 0.002}})
        async with Simulator(settings, {}) as sim:
            for probe in document["services"][0]["probes"]:
                probe["url"] = f"http://127.0.0.1:{sim.http_port}/x"
            config_path.write_text(yaml.safe_dump(document))
            first = _start(config_path)
            try:
                deadline = time.monotonic() + 30
                while len(_stored_ids(path)) < 1000:
                    assert first.poll() is None, first.communicate()
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.3)  # under load, between two flushes
                os.kill(first.pid, signal.SIGKILL)
                await asyncio.to_thread(first.communicate, timeout=30)
            finally:
                if first.poll() is None:
                    first.kill()
                    first.communicate()
            await asyncio.sleep(0.2)  # a request in flight reaches the truth log
            truth = {r.request_id for r in sim.truth.records}
            written = _stored_ids(path)

            second = _start(config_path)
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    deadline = time.monotonic() + 30
                    while True:
                        try:
                            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                            break
                        except httpx.TransportError:
                            assert second.poll() is None, second.communicate()
                            assert time.monotonic() < deadline
                            await asyncio.sleep(0.2)
                os.kill(second.pid, signal.SIGTERM)
                _, err = await asyncio.to_thread(second.communicate, timeout=60)
            finally:
                if second.poll() is None:
                    second.kill()
                    second.communicate()
            assert second.returncode == 0, err[-2000:]
            return truth, written, metrics, err

    truth, written, metrics, err = asyncio.run(scenario())
    assert written <= truth  # every stored result is a request the target really served
    lost = truth - written
    # At most what was accepted since the last flush, queued, or in flight when killed.
    assert len(lost) <= RATE * (FLUSH_S + 1.0), len(lost)
    assert written <= _stored_ids(path)  # everything written before the kill survived
    assert _gauge(metrics, "sla_previous_run_killed") == 1
    bound = _gauge(metrics, "sla_previous_run_lost_results_max")
    # A true bound, and a useful one: two heartbeats (2 s) and a flush at the rate.
    assert len(lost) <= bound <= RATE * (2.0 + FLUSH_S) + PROBES, (bound, len(lost))
    assert "ended without a clean stop" in err

    async def marks() -> RunMarks:
        store = SqliteStore(path)
        await store.open()
        try:
            return await store.run_marks()
        finally:
            await store.aclose()

    assert not asyncio.run(marks()).killed  # the SIGTERM left a clean stop for the next
