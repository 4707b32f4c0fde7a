"""The whole simulated network: both sides at once, and the run-until-stopped helper."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from monitor.embedded_broker import EmbeddedBroker
from probes.settings import MqttBrokerSettings
from probes.wire import Request
from simulator.network import Simulator, run_simulator
from simulator.settings import (
    HttpRouteSettings,
    HttpServerSettings,
    MqttResponderSettings,
    ProfileSettings,
    SimulatorSettings,
)
from tests.simulator.helpers import collect_replies, mqtt_client
from tests.support.brokers import free_port


def both(port: int) -> SimulatorSettings:
    """An MQTT responder and an HTTP route with the same profile."""
    return SimulatorSettings(
        profiles={"p": ProfileSettings()},
        mqtt=[MqttResponderSettings(request_topic="net/request", profile="p")],
        http=HttpServerSettings(
            listen=f"127.0.0.1:{port}", routes=[HttpRouteSettings(path="/svc", profile="p")]
        ),
    )


async def test_run_simulator_until_stopped(broker: MqttBrokerSettings) -> None:
    port = free_port()
    stop = asyncio.Event()
    runner = asyncio.create_task(run_simulator(both(port), {"default": broker}, stop))
    async with aiohttp.ClientSession() as session, mqtt_client(broker) as client:
        await client.subscribe("net/reply", qos=1)
        # run_simulator gives no ready signal: ask until both sides answer.
        async with asyncio.timeout(5):
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/svc") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            while True:
                request = Request("n1", time.time(), "net/reply").encode()
                await client.publish("net/request", request, qos=1)
                try:
                    [(reply, _, _)] = await collect_replies(client, 1, timeout_s=0.5)
                    break
                except TimeoutError:
                    continue
    assert reply.id == "n1"
    stop.set()
    async with asyncio.timeout(5):
        await runner


async def test_simulator_without_broker_still_serves_http() -> None:
    # Nothing listens on the broker's port: start gives up waiting, HTTP serves anyway.
    broker = MqttBrokerSettings(port=free_port(), reconnect_min=0.05, reconnect_max=0.1)
    settings = both(0)
    sim = Simulator(settings, {"default": broker}, ready_timeout_s=0.2)
    async with (
        sim,
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{sim.http_port}/svc") as response,
    ):
        assert response.status == 200


async def test_a_simulator_runs_once() -> None:
    sim = Simulator(SimulatorSettings(), {})
    async with sim:
        assert sim.http_port is None
    with pytest.raises(RuntimeError, match="runs once"):
        await sim.start()


async def test_serves_the_demo_config(embedded_broker: EmbeddedBroker) -> None:
    demo = yaml.safe_load((Path(__file__).parents[2] / "config" / "demo.yaml").read_text())
    settings = SimulatorSettings.model_validate(demo["simulator"])
    assert settings.http is not None
    # The demo's ports may be taken here: the same network on free ports.
    settings = settings.model_copy(
        update={"http": settings.http.model_copy(update={"listen": "127.0.0.1:0"})}
    )
    broker = MqttBrokerSettings(port=embedded_broker.port)
    async with (
        Simulator(settings, {"default": broker}) as sim,
        mqtt_client(broker) as client,
        aiohttp.ClientSession() as session,
    ):
        await client.subscribe("demo/reply", qos=1)
        for topic in ("crossroads/online/onss/request", "crossroads/online/inami/request"):
            await client.publish(topic, Request(topic, time.time(), "demo/reply").encode(), qos=1)
        replies = await collect_replies(client, 2, timeout_s=5)
        for name in ("identity", "career", "pension"):
            address = f"http://127.0.0.1:{sim.http_port}/providers/{name}"
            async with session.get(address) as response:
                assert response.status in (200, 503)
    assert len(replies) == 2
    assert {r.kind for r in sim.truth.records} == {"mqtt", "http"}
