"""SIGKILL while events are posted: a real daemon process is killed while a client posts
batches in a loop; after a restart, every event whose request got a 2xx is stored, and
the client's retries of the requests that got no answer are counted once — in the store
and in the restarted daemon's figures (checked against the ids the client sent)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.support.brokers import free_port
from tests.support.events import start_daemon, traffic_daemon_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOKEN = "kill-ingest-token-0123456789"
BATCH = 200


def _config(folder: Path, port: int) -> Path:
    return traffic_daemon_config(folder, port, "KILL_INGEST_TOKEN")


def _start(config: Path) -> subprocess.Popen[bytes]:
    return start_daemon(config, {"KILL_INGEST_TOKEN": TOKEN})


async def _ready(client: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert process.poll() is None, "the daemon exited: see daemon.log"
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError("the daemon did not start")


def _body(request: int) -> tuple[list[str], str]:
    ids = [f"r{request}-e{n}" for n in range(BATCH)]
    # Minutes sealed already: counted at once (the late path), no wait for sealing.
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=180)
    lines = [
        json.dumps(
            {
                "type": "exchange",
                "id": event_id,
                "service": "online",
                "start": start.isoformat(),
                "duration_s": 0.2 + (n % 10) / 10,  # 0.2 .. 1.1 s: some over 1 s
                "outcome": "ok",
            }
        )
        for n, event_id in enumerate(ids)
    ]
    return ids, "\n".join(lines)


def _stored(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [str(row[0]) for row in db.execute("SELECT request_id FROM results")]


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if f"\nPPid:\t{pid}\n" in status.read_text():
                found.append(int(status.parent.name))
        except OSError:  # gone meanwhile
            continue
    return found


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its new parent to reap it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def test_every_answered_event_survives_a_kill_and_retries_count_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = _config(tmp_path, port)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
    answered: set[int] = set()
    unanswered: set[int] = set()
    sent: dict[int, list[str]] = {}
    daemon = _start(config)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        await _ready(client, daemon)
        killed_at = time.monotonic() + 2.0
        request = 0
        in_flight: set[asyncio.Task[None]] = set()

        async def post(number: int) -> None:
            ids, body = _body(number)
            sent[number] = ids
            try:
                answer = await client.post("/api/ingest", content=body, headers=headers)
            except httpx.TransportError:
                unanswered.add(number)
                return
            if answer.status_code == 200:
                assert answer.json()["stored"] == BATCH
                answered.add(number)
            else:
                unanswered.add(number)

        # Two senders, so a request is in flight whenever the kill lands.
        while time.monotonic() < killed_at:
            while len(in_flight) < 2:
                task = asyncio.create_task(post(request))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                request += 1
            await asyncio.sleep(0.005)
        workers = _children(daemon.pid)
        assert workers, "the daemon reads bodies in an ingest worker (and has its tracker)"
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        await asyncio.gather(*in_flight)
        # The daemon's worker processes do not outlive it.
        for _ in range(100):
            if not any(_alive(pid) for pid in workers):
                break
            await asyncio.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)], "orphaned ingest workers"
        assert answered
        on_disk = _stored(tmp_path / "sla.sqlite3")
        # Nothing answered is lost.
        assert {i for n in answered for i in sent[n]} <= set(on_disk)

        daemon = _start(config)
        try:
            await _ready(client, daemon)
            # The client retries what got no answer, and (a careless client) one that did.
            retried = [*sorted(unanswered), min(answered)]
            for number in retried:
                _, body = _body(number)
                answer = await client.post("/api/ingest", content=body, headers=headers)
                assert answer.status_code == 200, answer.text
                got = answer.json()
                assert got["stored"] + got["duplicate"] == BATCH
            stored = _stored(tmp_path / "sla.sqlite3")
            expected = {i for ids in sent.values() for i in ids}
            assert sorted(stored) == sorted(expected)  # every event once, none twice
            # The restarted daemon counts each once too (what it loaded and what came after).
            figures = (await client.get("/api/sla", headers=headers)).json()
            [service] = figures["services"]
            [objective] = service["objectives"]
            month = objective["windows"]["month"]
            # The minute of the last events may still be open: wait for it to seal.
            for _ in range(150):
                if month["valid"] == len(expected):
                    break
                await asyncio.sleep(1)
                figures = (await client.get("/api/sla", headers=headers)).json()
                month = figures["services"][0]["objectives"][0]["windows"]["month"]
            assert month["valid"] == len(expected)
            within = sum(1 for n in range(BATCH) if 0.2 + (n % 10) / 10 <= 1.0)
            assert month["good"] == within * len(sent)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
