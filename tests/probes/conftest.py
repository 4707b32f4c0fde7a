"""Fixtures for the probe tests: a broker of either kind and a connection to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.embedded_broker import EmbeddedBroker
from probes.mqtt import MqttConnection
from probes.settings import MqttBrokerSettings
from tests.support.brokers import Mosquitto, free_port, running_mosquitto


@pytest.fixture(params=["mosquitto", "amqtt"])
async def broker_port(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[int]:
    """The port of a real Mosquitto or of the embedded amqtt broker."""
    if request.param == "mosquitto":
        with running_mosquitto(tmp_path) as broker:
            yield broker.port
    else:
        async with EmbeddedBroker("127.0.0.1", free_port()) as embedded:
            yield embedded.port


def broker_settings(port: int) -> MqttBrokerSettings:
    """Settings with a quick reconnect, so outage tests stay short."""
    return MqttBrokerSettings(port=port, reconnect_min=0.05, reconnect_max=0.2)


async def _connected(port: int) -> AsyncIterator[MqttConnection]:
    async with MqttConnection(broker_settings(port)) as connection:
        assert await connection.wait_connected(5.0)
        yield connection


@pytest.fixture
async def connection(broker_port: int) -> AsyncIterator[MqttConnection]:
    """A connected ``MqttConnection`` to ``broker_port``."""
    async for value in _connected(broker_port):
        yield value


@pytest.fixture
async def mosquitto_connection(mosquitto: Mosquitto) -> AsyncIterator[MqttConnection]:
    """A connected ``MqttConnection`` to the ``mosquitto`` fixture."""
    async for value in _connected(mosquitto.port):
        yield value
