"""The daemon end to end: /metrics against /api/sla, a broker outage, a restart."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.app import Daemon
from monitor.embedded_broker import EmbeddedBroker
from monitor.ledger.windows import Ledger
from monitor.sla.figures import all_figures
from monitor.store import SqliteStore
from simulator.network import Simulator
from tests.support.brokers import Mosquitto
from tests.support.stack import brokers_of, daemon_config, simulator_settings, validate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TOPICS = ["net/a/request", "net/b/request"]
PROFILE = {
    "latency": {
        "median": 0.02,
        "sigma": 0.8,
        "tail_probability": 0.05,
        "tail_min": 0.25,
        "tail_max": 0.6,
    },
    "error_rate": 0.02,
}
OBJECTIVES = [
    {"name": "fast", "kind": "latency", "threshold": "100ms", "target": 95},
    {"name": "slow", "kind": "latency", "threshold": "500ms", "target": 99},
    {"name": "availability", "kind": "availability", "target": 99},
]


def _mqtt_service(interval: float = 0.05, timeout: float = 1.0) -> dict[str, Any]:
    return {
        "name": "online",
        "probes": [
            {
                "name": f"p{i}",
                "kind": "mqtt",
                "request_topic": t,
                "interval": interval,
                "timeout": timeout,
            }
            for i, t in enumerate(TOPICS)
        ],
        "objectives": OBJECTIVES,
    }


class Running:
    """A daemon running in the test's loop."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def until(self, accepted: int, timeout_s: float = 60) -> None:
        async with asyncio.timeout(timeout_s):
            while self.daemon.collector.accepted < accepted:
                assert self.task is not None
                assert not self.task.done()
                await asyncio.sleep(0.05)


async def _start(document: dict[str, Any]) -> Running:
    running = Running(Daemon(validate(document)))
    running.task = asyncio.create_task(running.daemon.run(running.stop))
    await asyncio.wait_for(running.daemon.ready.wait(), 30)
    return running


async def _finish(running: Running) -> None:
    running.stop.set()
    assert running.task is not None
    await asyncio.wait_for(running.task, 30)


@pytest.fixture
async def amqtt_stack(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> AsyncIterator[tuple[dict[str, Any], Simulator]]:
    document = daemon_config(
        store=tmp_path / "store.sqlite3",
        broker_port=embedded_broker.port,
        services=[_mqtt_service()],
    )
    settings = simulator_settings(seed=3, topics=TOPICS, profile=PROFILE)
    async with Simulator(settings, brokers_of(document)) as sim:
        yield document, sim


def _scrape(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def _sum(samples: dict[tuple[tuple[str, str], ...], float], **match: str) -> float:
    return sum(v for labels, v in samples.items() if match.items() <= dict(labels).items())


async def test_metrics_sli_expression_equals_api_figure(
    amqtt_stack: tuple[dict[str, Any], Simulator],
) -> None:
    """sum(bucket{le=T}) / sum(attempts) over the scraped counters is /api/sla's figure."""
    document, _ = amqtt_stack
    running = await _start(document)
    try:
        await running.until(400)
        url = running.daemon.server.url
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            checked = 0
            for _ in range(200):
                metrics = _scrape((await client.get("/metrics")).text)
                sla = (await client.get("/api/sla")).json()
                attempts = _sum(metrics["sla_probe_attempts_total"], service="online")
                objectives = {o["objective"]: o for o in sla["services"][0]["objectives"]}
                if objectives["fast"]["windows"]["1h"]["valid"] != attempts:
                    continue  # a result landed between the two requests; try again
                for name, le in (("fast", "0.1"), ("slow", "0.5")):
                    good = _sum(
                        metrics["sla_probe_duration_seconds_bucket"], service="online", le=le
                    )
                    window = objectives[name]["windows"]["1h"]
                    assert window["good"] == good
                    assert window["compliance"] == pytest.approx(good / attempts, abs=1e-12)
                    gauge = metrics["sla_objective_compliance_ratio"][
                        (("objective", name), ("service", "online"), ("window", "1h"))
                    ]
                    assert 0.5 < gauge <= 1
                checked += 1
                if checked == 3:
                    break
            assert checked == 3, "never caught /metrics and /api/sla at the same count"
            health = (await client.get("/healthz")).json()
            assert health["status"] == "ok"
            missing = await client.get("/api/sla", params={"service": "nope"})
            assert missing.status_code == 404
            assert "error" in missing.json()
        names = set(metrics)
        for expected in (
            "sla_probe_duration_seconds_bucket",
            "sla_probe_attempts_total",
            "sla_probe_up",
            "sla_objective_compliance_ratio",
            "sla_objective_target_ratio",
            "sla_error_budget_remaining_ratio",
            "sla_latency_quantile_seconds",
            "sla_maintenance_active",
        ):
            assert expected in names, expected
        # Every threshold is a bucket bound, so `le` counts exactly what the contract counts.
        bounds = {dict(k)["le"] for k in metrics["sla_probe_duration_seconds_bucket"]}
        assert {"0.1", "0.5"} <= bounds
    finally:
        await _finish(running)


async def test_restart_rebuilds_the_same_figures(
    amqtt_stack: tuple[dict[str, Any], Simulator],
) -> None:
    """Figures rebuilt from the store after a stop equal the figures before it."""
    document, _ = amqtt_stack
    running = await _start(document)
    await running.until(300)
    await _finish(running)
    config = validate(document)
    now = running.daemon.clock.now()
    before = [f.to_dict() for f in running.daemon.figures()]

    store = SqliteStore(config.storage.path)
    await store.open()
    try:
        ledger = Ledger(config, grace_minutes=running.daemon.ledger.grace_minutes)
        await ledger.load(store, now)
        after = [f.to_dict() for f in all_figures(config, ledger, now)]
        assert after == before
        assert before[0]["windows"]["30d"]["valid"] == running.daemon.collector.accepted

        # Three minutes on, every minute of the run is sealed (moved into the window sums
        # and given its availability state): the old ledger slid forward and a fresh one
        # loaded at that time must still agree.
        later = now + 180
        await running.daemon.ledger.advance(later, store)
        slid = [f.to_dict() for f in running.daemon.figures_at(later)]
        fresh = Ledger(config, grace_minutes=running.daemon.ledger.grace_minutes)
        await fresh.load(store, later)
        assert [f.to_dict() for f in all_figures(config, fresh, later)] == slid
        minutes = slid[2]["windows"]["1h"]["minutes"]
        assert minutes["up"] >= 1
        assert minutes["unmonitored"] >= 1  # the minutes before the run
    finally:
        await store.aclose()


async def test_broker_outage_is_measured_and_survived(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Kill Mosquitto mid-run: failures are recorded, the daemon reconnects, nothing crashes."""
    store = tmp_path / "outage.sqlite3"
    document = daemon_config(
        store=store,
        broker_port=mosquitto.port,
        services=[_mqtt_service(interval=0.05, timeout=0.5)],
    )
    document["brokers"]["default"].update(reconnect_min=0.1, reconnect_max=0.5)
    settings = simulator_settings(seed=5, topics=TOPICS)
    async with Simulator(settings, brokers_of(document), ready_timeout_s=5) as _:
        running = await _start(document)
        try:
            await running.until(100)
            mosquitto.stop()
            down_at = running.daemon.clock.now()
            await asyncio.sleep(2.0)
            up_at = running.daemon.clock.now()
            mosquitto.start()
            async with asyncio.timeout(30):
                while True:  # wait for successes after the restart
                    await asyncio.sleep(0.2)
                    rows = _rows(store, "started_at > ? AND outcome = 'ok'", up_at + 1)
                    if rows > 20:
                        break
            assert running.task is not None
            assert not running.task.done()
        finally:
            await _finish(running)
    failed = _rows(store, "started_at BETWEEN ? AND ? AND outcome != 'ok'", down_at + 0.5, up_at)
    ok = _rows(store, "started_at BETWEEN ? AND ? AND outcome = 'ok'", down_at + 0.5, up_at)
    # ~2 probes x 20 runs/s x 1.5 s, every one of them a recorded failure.
    assert failed >= 40
    assert ok == 0
    with sqlite3.connect(store) as db:
        outcomes = {o for (o,) in db.execute("SELECT DISTINCT outcome FROM results")}
    assert "connect" in outcomes


def _rows(store: Path, where: str, *args: float) -> int:
    with sqlite3.connect(store) as db:
        (count,) = db.execute(f"SELECT count(*) FROM results WHERE {where}", args).fetchone()
    return int(count)
