"""Batch processing, end to end: the simulator's batch service hands in batches with
seeded volumes and processes them in steps after seeded delays (a share beyond the 4-day
deadline), reporting each step to a real daemon as it happens; with a clock running
20,000 times faster, six days pass in half a minute. The daemon's batch figures — each
day's volume, in-time volume, unprocessed volume and state (pending or final), and the
month — equal what the simulator's truth says, computed here by plain rules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.app import Daemon
from monitor.report.compute import build_report
from monitor.report.model import Month
from monitor.report.render import render
from simulator.batches import BatchTruth
from simulator.network import Simulator
from simulator.settings import SimulatorSettings
from tests.fakes import FakeClock
from tests.support.stack import validate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOKEN = "batch-truth-token-0123456"
T0 = dt.datetime(2026, 11, 2, tzinfo=dt.UTC).timestamp()
SPEED = 20_000.0
DAY = 86_400.0
DEADLINE = 4 * DAY


def _config(tmp_path: Path) -> Any:
    return validate(
        {
            "timezone": "UTC",
            "server": {"listen": "127.0.0.1:0", "api_token_env": "BATCH_TRUTH_TOKEN"},
            "storage": {"path": str(tmp_path / "sla.sqlite3")},
            "reports": {"enabled": False, "directory": str(tmp_path / "reports")},
            "services": [
                {
                    "name": "files",
                    "objectives": [
                        {"name": "data-4d", "kind": "batch", "deadline": "4d", "target": 99}
                    ],
                }
            ],
        }
    )


def _simulator(url: str) -> SimulatorSettings:
    return SimulatorSettings.model_validate(
        {
            "seed": 11,
            "batches": [
                {
                    "service": "files",
                    "per_day": 30,
                    "records_min": 100,
                    "records_max": 5000,
                    "delay_median": "1d",
                    "delay_sigma": 0.8,
                    "deadline": "4d",
                    "late_probability": 0.1,
                    "parts_max": 3,
                    "ingest_url": f"{url}/api/ingest",
                    "token_env": "BATCH_TRUTH_TOKEN",
                    "send_every": "0.05s",
                }
            ],
        }
    )


def _truth_days(batches: list[BatchTruth], cutoff: float, now: float) -> dict[str, dict[str, Any]]:
    """Each submission day from the truth: what the daemon must show."""
    days: dict[str, list[BatchTruth]] = {}
    for batch in batches:
        if batch.submitted_at <= cutoff:
            day = dt.datetime.fromtimestamp(batch.submitted_at, dt.UTC).date().isoformat()
            days.setdefault(day, []).append(batch)
    out = {}
    for day, members in days.items():
        end = (
            dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
        ).timestamp()
        submitted = in_time = unprocessed = 0
        complete = True
        for batch in members:
            done = sum(r for at, r in batch.steps if at <= cutoff)
            timely = sum(
                r for at, r in batch.steps if at <= min(cutoff, batch.submitted_at + DEADLINE)
            )
            submitted += batch.volume
            in_time += min(timely, batch.volume)
            unprocessed += batch.volume - min(done, batch.volume)
            complete = complete and done >= batch.volume
        final = now >= end + DEADLINE or (now >= end and complete)
        out[day] = {
            "state": "final" if final else "pending",
            "submitted": submitted,
            "in_time": in_time,
            "unprocessed": unprocessed,
        }
    return out


async def test_batch_figures_equal_the_simulators_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCH_TRUTH_TOKEN", TOKEN)
    clock = FakeClock(T0, speed=SPEED)
    daemon = Daemon(_config(tmp_path), clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        simulator = Simulator(_simulator(daemon.server.url), {}, wall_clock=clock.now)
        async with simulator:
            await asyncio.sleep(6 * DAY / SPEED)
            clock.set_speed(1.0)  # time almost stands still while the figures are read
            await simulator.stop_traffic()
            assert await simulator.batches.flush()
        [service] = simulator.batches.services
        assert service.refused == 0
        assert service.reported_until is not None
        truth = service.truth
        late = [b for b in truth if b.steps[-1][0] - b.submitted_at > DEADLINE]
        assert late  # some batches were finished after the deadline
        async with httpx.AsyncClient(base_url=daemon.server.url, timeout=30) as client:
            now = clock.now()
            answer = (await client.get("/api/sla")).json()
        [files] = answer["services"]
        [objective] = files["objectives"]
        month = objective["windows"]["month"]
        expected = _truth_days(truth, service.reported_until, now)
        shown = {
            d["date"]: {k: d[k] for k in ("state", "submitted", "in_time", "unprocessed")}
            for d in month["days"]
        }
        assert shown == expected
        states = {d["state"] for d in expected.values()}
        assert states == {"final", "pending"}
        final = [d for d in expected.values() if d["state"] == "final"]
        assert (month["valid"], month["good"]) == (
            sum(d["submitted"] for d in final),
            sum(d["in_time"] for d in final),
        )
        # The monthly report shows the same days and the same month (one truth).
        report = await build_report(daemon.config, daemon.store, Month(2026, 11), now=now)
        [batch] = report.services[0].batches
        assert {d.date: (d.state, d.submitted, d.in_time, d.unprocessed) for d in batch.days} == {
            day: (v["state"], v["submitted"], v["in_time"], v["unprocessed"])
            for day, v in expected.items()
        }
        assert (batch.valid, batch.good, batch.pending_days) == (
            month["valid"],
            month["good"],
            len(expected) - len(final),
        )
        html = render(report, "html").decode()
        markdown = render(report, "md").decode()
        for text in (html, markdown):
            assert "pending" in text
            assert f"{batch.valid:,}" in text
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
