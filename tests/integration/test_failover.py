"""Two daemon processes on one PostgreSQL database: one leads; SIGKILL it and the other
leads within ``instance.leader_timeout``; the killed one comes back as a follower; a clean
stop of the leader hands over at the follower's next try. The survivor loses no result.
A page the killed leader stored but could not deliver is delivered by the next, once.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from aiohttp import web

from simulator.network import Simulator
from tests.support.brokers import free_port
from tests.support.stack import daemon_config, simulator_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 6.0  # instance.leader_timeout: a 4 s term, a try every 1.33 s


class Instance:
    """One daemon process of the pair."""

    def __init__(self, name: str, location: str, config: Path) -> None:
        self.name, self.location, self.config = name, location, config
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None

    def write(
        self, url: str, sim_port: int, tmp: Path, alerting: dict[str, Any] | None = None
    ) -> None:
        document = daemon_config(
            store=tmp / f"{self.name}.sqlite3",
            listen=f"127.0.0.1:{self.port}",
            services=[
                {
                    "name": "svc",
                    "probes": [
                        {
                            "name": "p",
                            "kind": "http",
                            "url": f"http://127.0.0.1:{sim_port}/x",
                            "interval": 0.05,
                            "timeout": 1,
                        }
                    ],
                    "objectives": [
                        {"name": "fast", "kind": "latency", "threshold": 0.5, "target": 99}
                    ],
                }
            ],
        )
        document["storage"]["url"] = url
        if alerting is not None:
            document["alerting"] = alerting
        document["instance"] = {
            "name": self.name,
            "location": self.location,
            "leader_timeout": TIMEOUT_S,
        }
        self.config.write_text(yaml.safe_dump(document))

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(self.config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def cluster(self, client: httpx.AsyncClient) -> dict[str, Any] | None:
        try:
            response = await client.get(f"http://127.0.0.1:{self.port}/api/cluster")
        except httpx.TransportError:
            return None  # not listening (yet)
        body: dict[str, Any] = response.json()
        return body

    async def leader_gauge(self, client: httpx.AsyncClient) -> float:
        text = (await client.get(f"http://127.0.0.1:{self.port}/metrics")).text
        [line] = [x for x in text.splitlines() if x.startswith("sla_instance_leader ")]
        return float(line.split()[-1])


async def _until_leader(
    client: httpx.AsyncClient, asked: Instance, leader: str, timeout_s: float
) -> float:
    """Seconds until ``asked`` names ``leader`` (fails after ``timeout_s``)."""
    started = time.monotonic()
    while True:
        view = await asked.cluster(client)
        if view is not None and view["leader"] == leader:
            return time.monotonic() - started
        assert asked.process is not None
        assert asked.process.poll() is None
        assert time.monotonic() - started < timeout_s, (asked.name, view)
        await asyncio.sleep(0.05)


def _stopped(instance: Instance) -> str:
    assert instance.process is not None
    instance.process.send_signal(signal.SIGTERM)
    _, stderr = instance.process.communicate(timeout=60)
    assert instance.process.returncode == 0, stderr
    return stderr


async def test_the_leader_killed_another_leads_within_the_timeout(
    postgres_url: str, tmp_path: Path
) -> None:
    a = Instance("probe-a", "brussels", tmp_path / "a.yaml")
    b = Instance("probe-b", "liege", tmp_path / "b.yaml")
    settings = simulator_settings(routes=["/x"], profile={"latency": {"median": 0.002}})
    async with Simulator(settings, {}) as sim, httpx.AsyncClient(timeout=5) as client:
        assert sim.http_port is not None
        for instance in (a, b):
            instance.write(postgres_url, sim.http_port, tmp_path)
        try:
            a.start()
            await _until_leader(client, a, "probe-a", 30)
            b.start()
            await _until_leader(client, b, "probe-a", 30)
            assert await a.leader_gauge(client) == 1
            assert await b.leader_gauge(client) == 0

            assert a.process is not None
            os.kill(a.process.pid, signal.SIGKILL)
            a.process.communicate(timeout=30)
            took = await _until_leader(client, b, "probe-b", TIMEOUT_S + 5)
            assert took <= TIMEOUT_S, took
            assert await b.leader_gauge(client) == 1

            a.start()  # back, as a follower: b holds the lease
            await _until_leader(client, a, "probe-b", 30)
            await asyncio.sleep(2 * TIMEOUT_S / 3 / 3)  # a's first tries happen
            assert await a.leader_gauge(client) == 0

            b_log = _stopped(b)  # a clean stop gives the lease up
            handed = await _until_leader(client, a, "probe-a", TIMEOUT_S + 5)
            assert handed <= TIMEOUT_S * 2 / 9 + 1.0, handed  # a's next try, not a term
            a_log = _stopped(a)
        finally:
            for instance in (a, b):
                if instance.process is not None and instance.process.poll() is None:
                    instance.process.kill()
                    instance.process.communicate()

    # a's second start knew its own first run was killed (its marks, not b's).
    assert "ended without a clean stop" in a_log
    assert "ended without a clean stop" not in b_log
    # b, never killed, wrote every result it took.
    match = re.search(r"stopped: (\d+) results accepted, (\d+) written", b_log)
    assert match is not None, b_log
    accepted, written = int(match[1]), int(match[2])
    assert accepted == written > 0
    with psycopg.connect(postgres_url) as conn:
        (stored,) = conn.execute(
            "SELECT count(*) FROM results WHERE location = 'liege'"
        ).fetchone() or (0,)
    assert stored == accepted


async def test_a_page_the_killed_leader_could_not_deliver_is_delivered_once(
    postgres_url: str, tmp_path: Path
) -> None:
    received: list[tuple[int, dict[str, Any]]] = []
    answer = {"status": 500}  # the receiver is down while the first leader tries

    async def hook(request: web.Request) -> web.Response:
        status = answer["status"]
        received.append((status, await request.json()))
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    alerting = {
        "evaluation_interval": 0.5,
        "notifiers": {"hook": {"kind": "webhook", "url": f"http://127.0.0.1:{hook_port}/hook"}},
        "escalation": {"page": [{"notifiers": ["hook"]}], "ticket": [{"notifiers": ["hook"]}]},
    }
    a = Instance("probe-a", "brussels", tmp_path / "a.yaml")
    b = Instance("probe-b", "liege", tmp_path / "b.yaml")
    # Every answer fails: burn-14x fires at the first evaluation.
    settings = simulator_settings(
        routes=["/x"], profile={"latency": {"median": 0.002}, "error_rate": 1.0}
    )
    try:
        async with Simulator(settings, {}) as sim, httpx.AsyncClient(timeout=5) as client:
            assert sim.http_port is not None
            for instance in (a, b):
                instance.write(postgres_url, sim.http_port, tmp_path, alerting)
            try:
                a.start()
                await _until_leader(client, a, "probe-a", 30)
                b.start()
                await _until_leader(client, b, "probe-a", 30)
                async with asyncio.timeout(30):
                    while sum(1 for _, e in received if e["rule"] == "burn-14x") < 2:
                        await asyncio.sleep(0.05)  # a retries its stored page
                assert a.process is not None
                os.kill(a.process.pid, signal.SIGKILL)
                a.process.communicate(timeout=30)
                answer["status"] = 204
                await _until_leader(client, b, "probe-b", TIMEOUT_S + 5)
                async with asyncio.timeout(30):
                    while not any(s == 204 and e["rule"] == "burn-14x" for s, e in received):
                        await asyncio.sleep(0.05)
                await asyncio.sleep(3.0)  # b evaluates six more times
                b_log = _stopped(b)
            finally:
                for instance in (a, b):
                    if instance.process is not None and instance.process.poll() is None:
                        instance.process.kill()
                        instance.process.communicate()
    finally:
        await runner.cleanup()

    delivered = [e for status, e in received if status == 204 and e["kind"] == "firing"]
    per_alert: dict[str, int] = {}
    for event in delivered:
        per_alert[event["alert_id"]] = per_alert.get(event["alert_id"], 0) + 1
    assert any(e["rule"] == "burn-14x" for e in delivered)
    assert set(per_alert.values()) == {1}, per_alert  # each page once
    assert "notices a previous run or leader did not deliver" in b_log
    with psycopg.connect(postgres_url) as conn:
        (unsent,) = conn.execute(
            "SELECT count(*) FROM outbox WHERE done_at IS NULL"
        ).fetchone() or (0,)
    assert unsent == 0
