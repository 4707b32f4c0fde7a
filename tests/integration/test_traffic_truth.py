"""Real traffic, end to end: the simulator's traffic generator draws exchanges (a slow
tail, errors, an outage in which exchanges time out), reports them to a real daemon's
``POST /api/ingest`` like a gateway — in batches, some held back until after their
minutes were sealed — and the daemon's traffic-based objectives equal what the
simulator's truth log says, exactly, once everything is in.

The daemon and the simulator share one fake clock running 30 times faster than real time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.app import Daemon
from monitor.report.compute import build_report
from monitor.report.model import Month
from simulator.network import Simulator
from simulator.settings import SimulatorSettings
from tests.fakes import FakeClock
from tests.support.stack import validate

pytestmark = pytest.mark.timeout(120)

TOKEN = "traffic-truth-token-0123"
T0 = 1_795_000_020.0  # 2026-11-18T11:07:00Z
SPEED = 30.0
THRESHOLDS = {"online-1s": 1.0, "online-2s": 2.0}


def _daemon_config(tmp_path: Path) -> Any:
    return validate(
        {
            "timezone": "UTC",
            "server": {"listen": "127.0.0.1:0", "api_token_env": "TRAFFIC_TRUTH_TOKEN"},
            "storage": {"path": str(tmp_path / "sla.sqlite3"), "flush_interval": "0.2s"},
            "reports": {"enabled": False, "directory": str(tmp_path / "reports")},
            "services": [
                {
                    "name": "online",
                    "probes": [{"name": "messages", "kind": "traffic", "interval": "1s"}],
                    "objectives": [
                        {
                            "name": name,
                            "kind": "latency",
                            "source": "traffic",
                            "threshold": threshold,
                            "target": 99,
                        }
                        for name, threshold in THRESHOLDS.items()
                    ],
                }
            ],
        }
    )


def _simulator(url: str) -> SimulatorSettings:
    return SimulatorSettings.model_validate(
        {
            "seed": 7,
            "profiles": {
                "online": {
                    "latency": {
                        "median": "300ms",
                        "sigma": 0.6,
                        "tail_probability": 0.03,
                        "tail_min": 0.9,
                        "tail_max": 2.5,
                    },
                    "error_rate": 0.01,
                    # 40 s of every 3 minutes nothing answers: those exchanges time out.
                    "outages": [{"every": "3m", "duration": "40s", "offset": 30}],
                }
            },
            "traffic": [
                {
                    "service": "online",
                    "profile": "online",
                    "rate": 4,
                    "ingest_url": f"{url}/api/ingest",
                    "token_env": "TRAFFIC_TRUTH_TOKEN",
                    "send_every": "0.2s",
                    "timeout": "5s",
                    "backlog_probability": 0.15,
                    "backlog_delay": "150s",
                }
            ],
        }
    )


async def test_traffic_figures_equal_the_simulators_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAFFIC_TRUTH_TOKEN", TOKEN)
    clock = FakeClock(T0, speed=SPEED)
    daemon = Daemon(_daemon_config(tmp_path), clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        simulator = Simulator(_simulator(daemon.server.url), {}, wall_clock=clock.now)
        async with simulator:
            await asyncio.sleep(12)  # six simulated minutes, two outages
            await simulator.stop_traffic()
            assert await simulator.traffic.finish()
        [stream] = simulator.traffic.streams
        assert stream.refused == 0
        assert stream.held_back > 0  # some arrived after their minutes were sealed
        truth = [r for r in simulator.truth.records if r.kind == "traffic"]
        assert len(truth) > 1000
        assert {r.action for r in truth} == {"ok", "error", "drop"}
        # Everything in: let the last minutes seal.
        clock.advance(5 * 60)
        await asyncio.sleep(1.5)
        async with httpx.AsyncClient(base_url=daemon.server.url, timeout=30) as client:
            answer = (await client.get("/api/sla")).json()
        [service] = answer["services"]
        for objective in service["objectives"]:
            threshold = THRESHOLDS[objective["objective"]]
            month = objective["windows"]["month"]
            good = sum(1 for r in truth if r.action == "ok" and r.handled_s <= threshold)
            assert (month["valid"], month["good"]) == (len(truth), good), objective["objective"]
        # The sender retried nothing it had not been answered about, yet each id is once.
        assert stream.delivered >= len(truth)
        # The monthly report counts the same events (one truth, many views).
        report = await build_report(daemon.config, daemon.store, Month(2026, 11), now=clock.now())
        for objective in report.services[0].objectives:
            threshold = THRESHOLDS[objective.objective]
            good = sum(1 for r in truth if r.action == "ok" and r.handled_s <= threshold)
            assert (objective.source, objective.valid, objective.good) == (
                "traffic",
                len(truth),
                good,
            )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
