"""The synthetic batch probe: with no event feed, the daemon hands in a canary batch every
25 minutes to a real HTTP batch system (a small aiohttp server here, its processing
delays seeded, some far past the 6-hour deadline) and polls its status until done. Over a
simulated day (a clock 4,000 times faster), each day's canaries handed in, done in time,
not yet done, and the day's state equal what the batch system itself recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from monitor.app import Daemon
from tests.fakes import FakeClock
from tests.support.brokers import free_port
from tests.support.stack import validate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

T0 = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC).timestamp()
SPEED = 4000.0
DEADLINE = 6 * 3600.0
HOUR = 3600.0


class BatchSystem:
    """Takes canaries and says when each is done: after a seeded delay, either well
    inside the deadline or well past it (so no poll's timing can decide which)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.rng = random.Random(5)
        self.submitted: dict[str, float] = {}
        self.delay: dict[str, float] = {}
        self.done_at: dict[str, float] = {}

    async def submit(self, request: web.Request) -> web.Response:
        body = await request.json()
        canary = str(body["id"])
        self.submitted[canary] = self.clock.now()
        late = self.rng.random() < 0.25
        self.delay[canary] = (
            self.rng.uniform(1.3, 2.0) * DEADLINE
            if late
            else (self.rng.uniform(0.05, 0.6) * DEADLINE)
        )
        return web.json_response({"id": canary}, status=202)

    async def status(self, request: web.Request) -> web.Response:
        canary = request.match_info["id"]
        if canary not in self.submitted:
            return web.json_response({"error": "unknown"}, status=404)
        now = self.clock.now()
        if now >= self.submitted[canary] + self.delay[canary]:
            self.done_at.setdefault(canary, now)  # when the monitor could first see it
            return web.json_response({"state": "done"})
        return web.json_response({"state": "processing"}, status=200)


def _truth(system: BatchSystem, now: float) -> dict[str, dict[str, Any]]:
    days: dict[str, list[str]] = {}
    for canary, at in system.submitted.items():
        days.setdefault(dt.datetime.fromtimestamp(at, dt.UTC).date().isoformat(), []).append(canary)
    out = {}
    for day, canaries in days.items():
        end = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp() + 86400
        done = [c for c in canaries if c in system.done_at]
        timely = [c for c in done if system.done_at[c] <= system.submitted[c] + DEADLINE]
        final = now >= end + DEADLINE or (now >= end and len(done) == len(canaries))
        out[day] = {
            "state": "final" if final else "pending",
            "submitted": len(canaries),
            "in_time": len(timely),
            "unprocessed": len(canaries) - len(done),
        }
    return out


async def test_canaries_measure_the_batch_objective_as_the_batch_system_saw_it(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0, speed=SPEED)
    system = BatchSystem(clock)
    app = web.Application()
    app.router.add_post("/batches", system.submit)
    app.router.add_get("/batches/{id}", system.status)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    config = validate(
        {
            "timezone": "UTC",
            "server": {"listen": "127.0.0.1:0"},
            "storage": {"path": str(tmp_path / "sla.sqlite3")},
            "reports": {"enabled": False, "directory": str(tmp_path / "reports")},
            "services": [
                {
                    "name": "files",
                    "objectives": [
                        {
                            "name": "data-6h",
                            "kind": "batch",
                            "deadline": "6h",
                            "margin": "1h",
                            "target": 99,
                            "measure": "batches",
                            "canary": {
                                "submit_url": f"{base}/batches",
                                "status_url": base + "/batches/{id}",
                                "done_body": '"done"',
                                "interval": "25m",
                                "poll_every": "5m",
                            },
                        }
                    ],
                }
            ],
        }
    )
    daemon = Daemon(config, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        await asyncio.sleep(24 * HOUR / SPEED)  # to 3 Nov 12:00: 2 Nov's deadline passed
        clock.set_speed(1.0)  # time almost stands still while the figures are read
        await asyncio.sleep(1.0)  # the canary steps in flight land
        async with httpx.AsyncClient(base_url=daemon.server.url, timeout=30) as client:
            now = clock.now()
            answer = (await client.get("/api/sla")).json()
        [objective] = answer["services"][0]["objectives"]
        month = objective["windows"]["month"]
        shown = {
            d["date"]: {k: d[k] for k in ("state", "submitted", "in_time", "unprocessed")}
            for d in month["days"]
        }
        expected = _truth(system, now)
        assert shown == expected
        assert sum(d["submitted"] for d in expected.values()) >= 50
        assert {d["state"] for d in expected.values()} == {"final", "pending"}
        # Canaries past their deadline are no longer polled: missed, never processed.
        assert any(
            d["state"] == "final" and d["in_time"] < d["submitted"] for d in expected.values()
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await runner.cleanup()
