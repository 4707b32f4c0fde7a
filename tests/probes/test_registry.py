"""build_probe and ProbeResources: kinds map to classes over shared clients."""

from __future__ import annotations

import pytest

from probes.http import HttpProbe
from probes.integrated import IntegratedProbe
from probes.mqtt import MqttProbe
from probes.registry import PROBE_KINDS, ProbeResources, build_probe
from probes.settings import HttpProbeSettings, IntegratedProbeSettings, MqttProbeSettings
from tests.probes.conftest import broker_settings
from tests.support.brokers import Mosquitto

pytestmark = pytest.mark.timeout(60)


def test_every_config_kind_has_a_probe() -> None:
    assert set(PROBE_KINDS) == {"mqtt", "http", "integrated"}


async def test_builds_each_kind_over_shared_clients(mosquitto: Mosquitto) -> None:
    resources = ProbeResources({"default": broker_settings(mosquitto.port)})
    try:
        mqtt_a = await build_probe(
            MqttProbeSettings(kind="mqtt", name="a", request_topic="t/a"), resources
        )
        mqtt_b = await build_probe(
            MqttProbeSettings(kind="mqtt", name="b", request_topic="t/b", reply_topic="r/b"),
            resources,
        )
        http = await build_probe(
            HttpProbeSettings(kind="http", name="h", url="http://127.0.0.1/"), resources
        )
        integrated = await build_probe(
            IntegratedProbeSettings.model_validate(
                {
                    "kind": "integrated",
                    "name": "i",
                    "steps": [{"kind": "mqtt", "request_topic": "t/i", "reply_topic": "r/i"}],
                }
            ),
            resources,
        )
        assert isinstance(mqtt_a, MqttProbe)
        assert isinstance(mqtt_b, MqttProbe)
        assert isinstance(http, HttpProbe)
        assert isinstance(integrated, IntegratedProbe)
        assert mqtt_a.connection is mqtt_b.connection
        assert mqtt_a.connection.connected
        assert http.session is resources.http_session()
        assert set(resources.connections) == {"default"}
        for probe in (mqtt_a, mqtt_b, http, integrated):
            await probe.aclose()
    finally:
        session = resources.http_session()
        await resources.aclose()
    assert session.closed
    assert not mqtt_a.connection.connected


async def test_unknown_broker_is_named() -> None:
    resources = ProbeResources({})
    settings = MqttProbeSettings(kind="mqtt", name="a", broker="elsewhere", request_topic="t")
    with pytest.raises(KeyError, match="elsewhere"):
        await build_probe(settings, resources)
    await resources.aclose()


async def test_session_never_queues_and_never_rounds_timeouts() -> None:
    resources = ProbeResources({})
    session = resources.http_session()
    try:
        assert session.connector is not None
        assert session.connector.limit == 0
        assert session.timeout.ceil_threshold == float("inf")
    finally:
        await resources.aclose()
