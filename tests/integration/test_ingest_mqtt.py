"""Events over MQTT survive the daemon: a gateway publishes batches of events with QoS 1
to a real Mosquitto; the daemon (a real process) is SIGKILLed mid-stream, the gateway
goes on publishing while it is down, and sends one batch twice. After the restart every
event the broker acknowledged to the gateway is stored and counted exactly once: the
broker kept the daemon's persistent session (its subscription and the messages it had
not acknowledged — the daemon acknowledges only after storing)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import aiomqtt
import httpx
import pytest
import yaml

from tests.support.brokers import Mosquitto, free_port
from tests.support.events import start_daemon, traffic_daemon_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOKEN = "mqtt-ingest-token-0123456789"
BATCH = 50
TOPIC = "crossroads/events/gateway-1"


def _config(folder: Path, port: int, broker: int) -> Path:
    return traffic_daemon_config(
        folder,
        port,
        "MQTT_INGEST_TOKEN",
        brokers={"default": {"host": "127.0.0.1", "port": broker}},
        ingest={"mqtt": {"topic": "crossroads/events/#", "client_id": "sla-test-events"}},
    )


def _start(config: Path) -> subprocess.Popen[bytes]:
    return start_daemon(config, {"MQTT_INGEST_TOKEN": TOKEN})


def _payload(batch: int) -> bytes:
    # Minutes already sealed: counted as they arrive (the late path), no wait for sealing.
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=180)
    lines = [
        json.dumps(
            {
                "type": "exchange",
                "id": f"b{batch}-e{n}",
                "service": "online",
                "start": start.isoformat(),
                "duration_s": 0.5 if n % 5 else 1.5,
                "outcome": "ok",
            }
        )
        for n in range(BATCH)
    ]
    return "\n".join(lines).encode()


def _stored(path: Path) -> list[str]:
    try:
        with closing(sqlite3.connect(path)) as db:
            return [str(row[0]) for row in db.execute("SELECT request_id FROM results")]
    except sqlite3.OperationalError:  # not created yet
        return []


async def _subscribed(client: httpx.AsyncClient) -> None:
    """Wait until the daemon says it has subscribed to the events' topic."""
    for _ in range(300):
        try:
            health = (await client.get("/healthz")).json()
        except httpx.TransportError:
            health = {}
        if health.get("events_mqtt") == "subscribed":
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the daemon did not subscribe to the events' topic")


async def _until(condition: object, what: str, timeout_s: float = 60) -> None:
    assert callable(condition)
    for _ in range(int(timeout_s * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_mqtt_events_survive_a_killed_daemon_once_each(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    port = free_port()
    config = _config(tmp_path, port, mosquitto.port)
    store = tmp_path / "sla.sqlite3"
    daemon = _start(config)
    published = 0
    try:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="gateway-1") as gateway:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await _subscribed(client)  # its session exists once it has subscribed
            await gateway.publish(TOPIC, _payload(published), qos=1)
            published += 1
            await _until(lambda: len(_stored(store)) == BATCH, "the first batch")
            for _ in range(30):  # a stream, killed in the middle
                await gateway.publish(TOPIC, _payload(published), qos=1)
                published += 1
                if published == 15:
                    os.kill(daemon.pid, signal.SIGKILL)
                    daemon.wait(10)
                await asyncio.sleep(0.01)
            # While the daemon is down: the broker queues these for its session.
            await gateway.publish(TOPIC, _payload(3), qos=1)  # a batch sent twice
            daemon = _start(config)
            expected = {f"b{b}-e{n}" for b in range(published) for n in range(BATCH)}
            await _until(lambda: len(_stored(store)) >= len(expected), "every event", 90)
            await asyncio.sleep(1)  # anything more that would still come (it must not)
        stored = _stored(store)
        assert sorted(stored) == sorted(expected)  # each once: none lost, none twice
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            figures = (await client.get("/api/sla")).json()
        month = figures["services"][0]["objectives"][0]["windows"]["month"]
        assert (month["valid"], month["good"]) == (len(expected), len(expected) * 4 // 5)
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)


async def test_messages_are_stored_in_the_order_they_came(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Messages are parsed a few at a time but stored in order: a batch submitted in one
    message and processed in the next, published back to back, is never refused as an
    unknown batch (the processed event is checked once the message before is stored)."""
    port = free_port()
    config = _config(tmp_path, port, mosquitto.port)
    document = yaml.safe_load(config.read_text())
    document["services"][0]["objectives"].append(
        {"name": "data-4d", "kind": "batch", "deadline": "4d", "target": 99}
    )
    config.write_text(yaml.safe_dump(document))
    daemon = _start(config)
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)).isoformat()

    def event(n: int, batch: int, what: str) -> str:
        common = {"type": "batch", "service": "online", "at": at, "records": 10}
        return json.dumps({**common, "id": f"ev{n}", "batch": f"B{batch}", "event": what})

    messages = 60
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await _subscribed(client)
            async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="gw-2") as gateway:
                for n in range(messages):  # message n: B(n) handed in, B(n-1) processed
                    lines = [event(2 * n, n, "submitted")]
                    if n:
                        lines.append(event(2 * n + 1, n - 1, "processed"))
                    await gateway.publish(TOPIC, "\n".join(lines).encode(), qos=1)
            store = tmp_path / "sla.sqlite3"

            def rows() -> int:
                try:
                    with closing(sqlite3.connect(store)) as db:
                        return int(db.execute("SELECT COUNT(*) FROM batch_events").fetchone()[0])
                except sqlite3.OperationalError:
                    return 0

            await _until(lambda: rows() >= 2 * messages - 1, "every batch event")
            metrics = (await client.get("/metrics")).text
        assert rows() == 2 * messages - 1
        assert 'sla_events_total{result="invalid"} 0.0' in metrics
        assert f'sla_events_total{{result="stored"}} {2 * messages - 1}.0' in metrics
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
