"""Fixtures of the simulator tests: a real broker of each kind, as broker settings."""

from __future__ import annotations

import pytest

from probes.settings import MqttBrokerSettings


@pytest.fixture(params=["mosquitto", "amqtt"])
def broker(request: pytest.FixtureRequest) -> MqttBrokerSettings:
    """A running broker (Mosquitto, then the embedded amqtt), with fast reconnects."""
    fixture = "mosquitto" if request.param == "mosquitto" else "embedded_broker"
    port = request.getfixturevalue(fixture).port
    return MqttBrokerSettings(port=port, reconnect_min=0.05, reconnect_max=0.5)
