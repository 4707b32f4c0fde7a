"""MQTT v5 with a login, against a real Mosquitto that refuses anonymous clients (its
password file made with ``mosquitto_passwd``): the right credentials, read from the
environment, get a v5 round trip; a wrong password and no credentials are refused and
measured as connection failures, never a crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from probes.base import Outcome
from probes.mqtt import MqttConnection
from probes.settings import MqttBrokerSettings
from tests.probes.support import delayed, responder
from tests.support.brokers import Mosquitto, free_port

pytestmark = pytest.mark.timeout(60)

TOPIC = "auth/requests"
USERS = {"prober": "s3cret-prober-password", "gateway": "s3cret-gateway-password"}


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(port=free_port(), workdir=tmp_path, users=USERS)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _settings(port: int) -> MqttBrokerSettings:
    return MqttBrokerSettings(
        port=port,
        protocol="5",
        username_env="TEST_MQTT_USER",
        password_env="TEST_MQTT_PASSWORD",
        reconnect_min=0.1,
        reconnect_max=0.2,
    )


async def test_a_v5_login_gets_a_round_trip(
    guarded: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MQTT_USER", "prober")
    monkeypatch.setenv("TEST_MQTT_PASSWORD", USERS["prober"])
    gateway = {
        "username": "gateway",
        "password": USERS["gateway"],
        "protocol": aiomqtt.ProtocolVersion.V5,
    }
    async with (
        responder(guarded.port, TOPIC, delayed(0.0), **gateway),
        MqttConnection(_settings(guarded.port)) as connection,
    ):
        assert await connection.wait_connected(5.0)
        observation = await connection.request(TOPIC, 1, None, "", 2.0)
    assert observation.outcome is Outcome.OK, observation.detail


async def test_a_wrong_password_is_refused_and_measured(
    guarded: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MQTT_USER", "prober")
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "not-the-password")
    async with MqttConnection(_settings(guarded.port)) as connection:
        assert not await connection.wait_connected(1.5)
        observation = await connection.request(TOPIC, 1, None, "", 1.0)
    assert observation.outcome is Outcome.CONNECT


async def test_anonymous_clients_are_refused(guarded: Mosquitto) -> None:
    settings = MqttBrokerSettings(port=guarded.port, protocol="5", reconnect_min=0.1)
    async with MqttConnection(settings) as connection:
        assert not await connection.wait_connected(1.5)
