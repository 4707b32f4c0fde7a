"""MqttConnection and MqttProbe against real brokers and a responder in the test."""

from __future__ import annotations

import asyncio
import time

import aiomqtt
import pytest

from probes.base import Outcome
from probes.mqtt import MqttConnection, MqttProbe
from probes.settings import MqttBrokerSettings, MqttProbeSettings
from probes.wire import Request
from tests.probes.conftest import broker_settings
from tests.probes.support import answer, delayed, eventually, responder
from tests.support.brokers import Mosquitto, free_port

pytestmark = pytest.mark.timeout(60)

TOPIC = "test/requests"


@pytest.mark.parametrize("delay_s", [0.0, 0.1])
async def test_round_trip_is_ok_and_timed(
    broker_port: int, connection: MqttConnection, delay_s: float
) -> None:
    async with responder(broker_port, TOPIC, delayed(delay_s)) as seen:
        for _ in range(5):
            observation = await connection.request(TOPIC, 1, None, "", 2.0)
            assert observation.outcome is Outcome.OK, observation.detail
            assert delay_s <= observation.latency_s < delay_s + 0.05
        assert observation.request_id == seen.requests[-1].id
        assert seen.requests[-1].reply_to == connection.default_reply_topic


async def test_probe_uses_its_settings(broker_port: int, connection: MqttConnection) -> None:
    settings = MqttProbeSettings(
        kind="mqtt",
        name="online",
        request_topic=TOPIC,
        reply_topic="test/own-replies",
        qos=0,
        payload_bytes=1000,
        timeout=2.0,
    )
    probe = MqttProbe(settings, connection)
    async with responder(broker_port, TOPIC) as seen:
        observation = await probe.observe()
        await probe.aclose()
    assert observation.outcome is Outcome.OK, observation.detail
    assert seen.requests[0].reply_to == "test/own-replies"
    assert len(seen.requests[0].pad) == 1000


async def test_error_reply_is_error(broker_port: int, connection: MqttConnection) -> None:
    async def refuse(request: Request, client: aiomqtt.Client) -> None:
        await answer(client, request, status="error", detail="register offline")

    async with responder(broker_port, TOPIC, refuse):
        observation = await connection.request(TOPIC, 1, None, "", 2.0)
    assert observation.outcome is Outcome.ERROR
    assert "register offline" in observation.detail


async def test_reply_for_another_id_is_not_success(
    mosquitto: Mosquitto, mosquitto_connection: MqttConnection
) -> None:
    async def wrong_id(request: Request, client: aiomqtt.Client) -> None:
        await answer(client, request, reply_id="0" * 32)

    async with responder(mosquitto.port, TOPIC, wrong_id):
        observation = await mosquitto_connection.request(TOPIC, 1, None, "", 0.3)
    assert observation.outcome is Outcome.TIMEOUT
    assert mosquitto_connection.unknown_replies == 1
    assert mosquitto_connection.late_replies == 0


async def test_invalid_payload_is_not_success(
    mosquitto: Mosquitto, mosquitto_connection: MqttConnection
) -> None:
    async def garbage(request: Request, client: aiomqtt.Client) -> None:
        await client.publish(request.reply_to, b"not json", qos=1)
        await client.publish(request.reply_to, b'{"status": "ok"}', qos=1)

    async with responder(mosquitto.port, TOPIC, garbage):
        observation = await mosquitto_connection.request(TOPIC, 1, None, "", 0.3)
    assert observation.outcome is Outcome.TIMEOUT
    assert mosquitto_connection.invalid_replies == 2


async def test_late_reply_is_timeout_and_counted_late(
    broker_port: int, connection: MqttConnection
) -> None:
    async with responder(broker_port, TOPIC, delayed(0.4)):
        observation = await connection.request(TOPIC, 1, None, "", 0.2)
        assert observation.outcome is Outcome.TIMEOUT
        assert observation.latency_s == pytest.approx(0.2, abs=0.03)
        await eventually(lambda: connection.late_replies == 1)
    assert connection.unknown_replies == 0


async def test_retained_reply_is_never_success(
    mosquitto: Mosquitto, mosquitto_connection: MqttConnection
) -> None:
    """A retained message is stale by definition, even when its id matches a pending request."""
    stored = asyncio.Event()

    async def retain_elsewhere(request: Request, client: aiomqtt.Client) -> None:
        await answer(client, request, topic="test/stale", retain=True)
        stored.set()

    async with responder(mosquitto.port, TOPIC, retain_elsewhere):
        pending = asyncio.create_task(mosquitto_connection.request(TOPIC, 1, None, "", 0.5))
        await asyncio.wait_for(stored.wait(), 2)
        # Subscribing now makes the broker deliver the stored reply with the retain flag.
        await mosquitto_connection.add_reply_topic("test/stale")
        observation = await pending
    assert observation.outcome is Outcome.TIMEOUT
    assert mosquitto_connection.retained_replies == 1


async def test_live_reply_published_with_retain_flag_still_counts(
    mosquitto: Mosquitto, mosquitto_connection: MqttConnection
) -> None:
    """MQTT clears the retain flag on delivery to established subscriptions."""

    async def retain(request: Request, client: aiomqtt.Client) -> None:
        await answer(client, request, retain=True)

    async with responder(mosquitto.port, TOPIC, retain):
        observation = await mosquitto_connection.request(TOPIC, 1, None, "", 1.0)
    assert observation.outcome is Outcome.OK


@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_concurrent_requests_share_one_connection(
    broker_port: int, connection: MqttConnection, qos: int
) -> None:
    async with responder(broker_port, TOPIC, delayed(0.05)) as seen:
        observations = await asyncio.gather(
            *(connection.request(TOPIC, qos, None, "", 5.0) for _ in range(200))
        )
    assert [o.outcome for o in observations] == [Outcome.OK] * 200
    assert len({o.request_id for o in observations}) == 200
    assert len(seen.requests) == 200
    assert connection.unknown_replies == connection.late_replies == 0


async def test_no_broker_is_connect_failure_without_waiting() -> None:
    async with MqttConnection(broker_settings(free_port())) as connection:
        assert not await connection.wait_connected(0.2)
        observation = await connection.request(TOPIC, 1, None, "", 2.0)
    assert observation.outcome is Outcome.CONNECT
    assert observation.latency_s < 0.01


async def test_broker_outage_is_measured_and_recovered(
    mosquitto: Mosquitto, mosquitto_connection: MqttConnection
) -> None:
    connection = mosquitto_connection
    async with responder(mosquitto.port, TOPIC, delayed(0.5)) as seen:
        in_flight = asyncio.create_task(connection.request(TOPIC, 1, None, "", 3.0))
        await eventually(lambda: len(seen.requests) == 1)
        started = time.perf_counter()
        await asyncio.to_thread(mosquitto.stop)
        lost = await in_flight
        # The loss is known when the socket closes, well before the 3 s timeout.
        assert lost.outcome in (Outcome.CONNECT, Outcome.TIMEOUT)
        assert time.perf_counter() - started < 1.0
        await eventually(lambda: not connection.connected)

        down = [await connection.request(TOPIC, 1, None, "", 3.0) for _ in range(20)]
        assert {o.outcome for o in down} == {Outcome.CONNECT}
        assert max(o.latency_s for o in down) < 0.01

        mosquitto.start()  # blocks briefly; see conftest._Mosquitto
        assert await connection.wait_connected(5.0)
        await asyncio.wait_for(seen.connected.wait(), 5.0)
        # The responder resubscribes on its own schedule; allow it a few attempts.
        for _ in range(20):
            again = await connection.request(TOPIC, 1, None, "", 1.0)
            if again.ok:
                break
        assert again.outcome is Outcome.OK, again.detail


async def test_cancellation_propagates_and_cleans_up(
    mosquitto: Mosquitto, mosquitto_connection: MqttConnection
) -> None:
    async with responder(mosquitto.port, TOPIC, delayed(5.0)) as seen:
        task = asyncio.create_task(mosquitto_connection.request(TOPIC, 1, None, "", 3.0))
        await eventually(lambda: len(seen.requests) == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not mosquitto_connection._pending


async def test_credentials_come_from_the_environment(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MQTT_USER", "prober")
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "secret")
    settings = MqttBrokerSettings(
        port=mosquitto.port, username_env="TEST_MQTT_USER", password_env="TEST_MQTT_PASSWORD"
    )
    async with MqttConnection(settings) as connection:
        assert connection._username == "prober"
        assert connection._password == "secret"
        assert await connection.wait_connected(5.0)

    monkeypatch.delenv("TEST_MQTT_PASSWORD")
    with pytest.raises(ValueError, match="TEST_MQTT_PASSWORD"):
        MqttConnection(settings)


async def test_client_id_has_prefix_and_random_suffix(mosquitto: Mosquitto) -> None:
    settings = MqttBrokerSettings(port=mosquitto.port, client_id_prefix="probe-a")
    one, two = MqttConnection(settings), MqttConnection(settings)
    assert one.client_id.startswith("probe-a-")
    assert one.client_id != two.client_id
    assert one.default_reply_topic == f"sla-monitor/{one.client_id}/reply"
