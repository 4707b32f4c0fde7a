"""The MQTT responder against real brokers (Mosquitto and the embedded amqtt)."""

from __future__ import annotations

import asyncio
import time

import pytest

from probes.settings import MqttBrokerSettings
from probes.wire import Request
from simulator.network import Simulator
from simulator.settings import (
    LatencySettings,
    MqttResponderSettings,
    OutageSettings,
    ProfileSettings,
    SimulatorSettings,
)
from tests.simulator.helpers import collect_replies, eventually, mqtt_client
from tests.support.brokers import Mosquitto

REQUEST = "sim/online/request"
REPLY = "sim/test/reply"


def settings(profile: ProfileSettings) -> SimulatorSettings:
    """One responder on REQUEST with ``profile``."""
    return SimulatorSettings(
        profiles={"p": profile},
        mqtt=[MqttResponderSettings(request_topic=REQUEST, profile="p")],
    )


def constant(delay_s: float, **profile: object) -> ProfileSettings:
    """A profile answering after exactly ``delay_s``."""
    latency = LatencySettings(distribution="constant", median=delay_s)
    return ProfileSettings.model_validate({"latency": latency, **profile})


#: An outage that covers every instant (duration == every).
ALWAYS = {"every": 3600, "duration": 3600}


@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_answers_a_request(
    broker: MqttBrokerSettings, qos: int, request: pytest.FixtureRequest
) -> None:
    async with (
        Simulator(settings(constant(0.05)), {"default": broker}) as sim,
        mqtt_client(broker) as client,
    ):
        await client.subscribe(REPLY, qos=2)
        before = time.time()
        sent = time.perf_counter()
        await client.publish(REQUEST, Request("req-1", before, REPLY).encode(), qos=qos)
        [(reply, message, arrived)] = await collect_replies(client, 1, timeout_s=3)
        await eventually(lambda: len(sim.truth.records) == 1)

    assert reply.id == "req-1"
    assert reply.ok
    if request.node.callspec.params["broker"] == "mosquitto":
        # The reply goes back with the request's QoS. amqtt 0.12 delivers every message at
        # the subscription's QoS instead (not MQTT 3.1.1 §3.8.4), so only Mosquitto shows it.
        assert message.qos == qos
    assert 0.05 <= reply.handled_s < 0.05 + 0.03
    assert reply.handled_s <= arrived - sent
    [truth] = sim.truth.records
    assert (truth.request_id, truth.endpoint, truth.kind, truth.action) == (
        "req-1",
        REQUEST,
        "mqtt",
        "ok",
    )
    assert truth.handled_s == reply.handled_s
    assert before <= truth.received_at <= time.time()


async def test_requests_are_answered_concurrently(broker: MqttBrokerSettings) -> None:
    count, delay_s = 100, 0.2
    async with (
        Simulator(settings(constant(delay_s)), {"default": broker}) as sim,
        mqtt_client(broker) as client,
    ):
        await client.subscribe(REPLY, qos=1)
        started = time.perf_counter()
        for i in range(count):
            await client.publish(REQUEST, Request(f"r{i}", time.time(), REPLY).encode(), qos=1)
        replies = await collect_replies(client, count, timeout_s=5)
        elapsed = time.perf_counter() - started
        await eventually(lambda: len(sim.truth.records) == count)

    # Serially this would take count * delay_s = 20 s.
    assert elapsed < 5 * delay_s
    assert sorted(reply.id for reply, _, _ in replies) == sorted(f"r{i}" for i in range(count))
    assert all(delay_s <= reply.handled_s < delay_s + 0.2 for reply, _, _ in replies)


async def test_error_and_drop(broker: MqttBrokerSettings) -> None:
    simulator_settings = SimulatorSettings(
        profiles={
            "failing": constant(0.01, error_rate=1.0),
            "down": constant(0.01, outages=[OutageSettings.model_validate(ALWAYS)]),
        },
        mqtt=[
            MqttResponderSettings(request_topic="sim/failing", profile="failing"),
            MqttResponderSettings(request_topic="sim/down", profile="down"),
        ],
    )
    async with (
        Simulator(simulator_settings, {"default": broker}) as sim,
        mqtt_client(broker) as client,
    ):
        await client.subscribe(REPLY, qos=1)
        await client.publish("sim/down", Request("lost", time.time(), REPLY).encode(), qos=1)
        await client.publish("sim/failing", Request("bad", time.time(), REPLY).encode(), qos=1)
        [(reply, _, _)] = await collect_replies(client, 1, timeout_s=3)
        # Nothing else comes: the dropped request is never answered.
        with pytest.raises(TimeoutError):
            await collect_replies(client, 1, timeout_s=0.3)
        await eventually(lambda: len(sim.truth.records) == 2)

    assert (reply.id, reply.status, reply.detail) == ("bad", "error", "simulated error")
    actions = {r.request_id: (r.endpoint, r.action) for r in sim.truth.records}
    assert actions == {"lost": ("sim/down", "drop"), "bad": ("sim/failing", "error")}


async def test_ignores_malformed_and_retained_requests(broker: MqttBrokerSettings) -> None:
    async with mqtt_client(broker) as client:
        await client.subscribe(REPLY, qos=1)
        # Retained before the responder subscribes: it would arrive flagged as retained.
        stale = Request("stale", time.time(), REPLY).encode()
        await client.publish(REQUEST, stale, qos=1, retain=True)
        async with Simulator(settings(constant(0.01)), {"default": broker}) as sim:
            for junk in (
                b"not json",
                b"[1]",
                b'{"id": "x"}',
                b'{"id":"w","sent_at":1,"reply_to":"a/#"}',
            ):
                await client.publish(REQUEST, junk, qos=1)
            await client.publish(REQUEST, Request("good", time.time(), REPLY).encode(), qos=1)
            replies = await collect_replies(client, 1, timeout_s=3)
            await eventually(lambda: len(sim.truth.records) == 1)
        await client.publish(REQUEST, b"", qos=1, retain=True)  # clear the retained message

    assert [reply.id for reply, _, _ in replies] == ["good"]
    assert [r.request_id for r in sim.truth.records] == ["good"]


async def test_survives_a_broker_restart(mosquitto: Mosquitto) -> None:
    broker = MqttBrokerSettings(port=mosquitto.port, reconnect_min=0.05, reconnect_max=0.2)
    async with Simulator(settings(constant(0.01)), {"default": broker}) as sim:
        await asyncio.to_thread(mosquitto.stop)
        await asyncio.sleep(0.3)  # the responder notices and starts retrying
        await asyncio.to_thread(mosquitto.start)
        async with mqtt_client(broker) as client:
            await client.subscribe(REPLY, qos=1)
            # The responder may not have resubscribed yet: ask until it answers.
            async with asyncio.timeout(5):
                while True:
                    await client.publish(
                        REQUEST, Request("again", time.time(), REPLY).encode(), qos=1
                    )
                    try:
                        [(reply, _, _)] = await collect_replies(client, 1, timeout_s=0.3)
                        break
                    except TimeoutError:
                        continue
    assert reply.id == "again"
    assert sim.truth.records[-1].action == "ok"


async def test_stop_lets_replies_in_flight_finish(broker: MqttBrokerSettings) -> None:
    async with mqtt_client(broker) as client:
        await client.subscribe(REPLY, qos=1)
        sim = Simulator(settings(constant(0.3)), {"default": broker})
        async with sim:
            await client.publish(REQUEST, Request("late", time.time(), REPLY).encode(), qos=1)
            await eventually(lambda: sim._mqtt is not None and bool(sim._mqtt._in_flight))
        # stop() returned only after the reply was published.
        [(reply, _, _)] = await collect_replies(client, 1, timeout_s=1)
    assert reply.id == "late"
    assert [r.action for r in sim.truth.records] == ["ok"]


def test_unknown_broker_is_rejected() -> None:
    with pytest.raises(ValueError, match="broker 'elsewhere' is not defined"):
        Simulator(
            SimulatorSettings(
                profiles={"p": ProfileSettings()},
                mqtt=[MqttResponderSettings(broker="elsewhere", request_topic="t", profile="p")],
            ),
            {"default": MqttBrokerSettings()},
        )
