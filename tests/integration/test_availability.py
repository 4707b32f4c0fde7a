"""Availability end to end, living through minutes in seconds with an accelerated clock
shared by the daemon and the simulator (60 virtual seconds per real second).

The simulator's outage is scheduled in that virtual time; the test knows when it happens
and computes the expected minute counts itself.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from monitor.app import Daemon
from monitor.sla.minutes import MinuteCode, ObjectiveKey
from simulator.network import Simulator
from tests.fakes import FakeClock
from tests.support.stack import daemon_config, simulator_settings, validate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SPEED = 60.0  # one virtual minute per real second
T0 = 1_795_000_000.0 - 1_795_000_000.0 % 60 + 60 * 60 * 24 * 7  # a minute boundary
OUTAGE_START = T0 + 4 * 60
OUTAGE_MINUTES = 2


def _profile() -> dict[str, Any]:
    return {
        "latency": {"distribution": "constant", "median": 0.002},
        "outages": [
            # One outage: [OUTAGE_START, +N min) once in ~30 years.
            {"every": 1e9, "duration": OUTAGE_MINUTES * 60, "offset": OUTAGE_START, "mode": "error"}
        ],
    }


def _service(port: int, maintenance: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "name": "svc",
        "probes": [
            {
                "name": f"p{i}",
                "kind": "http",
                "url": f"http://127.0.0.1:{port}/x",
                "interval": 2,
                "timeout": 0.5,
            }
            for i in range(2)
        ],
        "objectives": [{"name": "availability", "kind": "availability", "target": 99}],
        "maintenance": maintenance or [],
    }


async def _live(daemon: Daemon, clock: FakeClock, until: float) -> None:
    """Run ``daemon`` until the virtual clock reaches ``until``."""
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    await asyncio.wait_for(daemon.ready.wait(), 20)
    while clock.now() < until:
        assert not task.done()
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 20)


async def _scenario(
    tmp_path: Path, maintenance: list[dict[str, Any]] | None, gap: tuple[float, float] | None
) -> dict[str, Any]:
    clock = FakeClock(start=T0 + 1, speed=SPEED)
    settings = simulator_settings(seed=1, routes=["/x"], profile=_profile())
    async with Simulator(settings, {}, wall_clock=clock.now) as sim:
        assert sim.http_port is not None
        document = daemon_config(
            store=tmp_path / "a.sqlite3", services=[_service(sim.http_port, maintenance)]
        )
        config = validate(document)
        end = T0 + 12 * 60 + 30
        if gap is None:
            await _live(Daemon(config, clock=clock), clock, end)
        else:
            await _live(Daemon(config, clock=clock), clock, gap[0])
            while clock.now() < gap[1]:  # the monitor is down
                await asyncio.sleep(0.05)
            await _live(Daemon(config, clock=clock), clock, end)
        final = Daemon(config, clock=clock)  # a fresh daemon reads what the store holds
        await final.store.open()
        try:
            await final.reload_maintenance()
            # Read as of `end`, whatever time the shutdowns took (at 60x, a slow second of
            # shutdown is a virtual minute).
            await final.ledger.load(final.store, end)
            figures = final.figures_at(end)
            # The minutes the test controls: from 3 (after any slow start) to 11.
            codes = final.ledger.codes_between(
                ObjectiveKey("svc", "availability"), int(T0 // 60) + 3, int(T0 // 60) + 11, end
            )
        finally:
            await final.store.aclose()
    window = figures[0].windows["1h"]
    return {
        "ratio": window.compliance,
        "minutes": window.minutes,
        "valid": window.valid,
        "unmonitored": codes.count(MinuteCode.UNMONITORED),
    }


async def test_outage_inside_maintenance_leaves_availability_whole(tmp_path: Path) -> None:
    maintenance = [
        {
            "start": _iso(T0 + 3 * 60),
            "end": _iso(T0 + 8 * 60),
            "reason": "planned upgrade",
            "announced_at": _iso(T0 - 86400),
        }
    ]
    figures = await _scenario(tmp_path, maintenance, gap=None)
    assert figures["minutes"]["down"] == 0
    assert figures["minutes"]["maintenance"] == 5
    assert figures["ratio"] == 1.0


async def test_outage_outside_maintenance_costs_exactly_its_minutes(tmp_path: Path) -> None:
    figures = await _scenario(tmp_path, None, gap=None)
    minutes = figures["minutes"]
    assert minutes["down"] == OUTAGE_MINUTES
    eligible = minutes["up"] + minutes["down"]
    assert figures["ratio"] == (eligible - OUTAGE_MINUTES) / eligible


async def test_monitor_downtime_is_unmonitored_not_down(tmp_path: Path) -> None:
    # The daemon is down from 7:30 to 10:30 (virtual): the whole minutes inside the gap
    # (8 and 9) have no result; minutes 7 and 10 are partly monitored, so they count.
    gap = (T0 + 7.5 * 60, T0 + 10.5 * 60)
    whole_minutes_down = math.floor(gap[1] / 60) - math.ceil(gap[0] / 60)
    assert whole_minutes_down == 2
    baseline = await _scenario(tmp_path / "a", None, gap=None)
    figures = await _scenario(tmp_path / "b", None, gap=gap)
    minutes = figures["minutes"]
    assert baseline["unmonitored"] == 0
    assert figures["unmonitored"] == whole_minutes_down
    assert minutes["down"] == OUTAGE_MINUTES
    eligible = minutes["up"] + minutes["down"]
    assert figures["ratio"] == (eligible - OUTAGE_MINUTES) / eligible
    assert minutes["up"] + minutes["unmonitored"] == (
        baseline["minutes"]["up"] + baseline["minutes"]["unmonitored"]
    )


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()
