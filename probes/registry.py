"""Builds probes from their settings (``kind`` -> class) over shared long-lived clients."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from probes.base import Probe
from probes.http import HttpProbe
from probes.integrated import IntegratedProbe
from probes.mqtt import MqttConnection, MqttProbe
from probes.settings import (
    HttpProbeSettings,
    IntegratedProbeSettings,
    MqttBrokerSettings,
    MqttProbeSettings,
    MqttStep,
    TrafficFeedSettings,
)

__all__ = ["PROBE_KINDS", "ProbeResources", "build_probe"]

#: How long the first use of a broker waits for its connection before probes run anyway
#: (and count CONNECT failures until it is up).
_FIRST_CONNECT_WAIT_S = 5.0


class ProbeResources:
    """The clients every probe shares, owned by the daemon: one MQTT connection per broker
    and one HTTP session. Create and use inside the running loop; ``aclose()`` at the end."""

    def __init__(self, brokers: Mapping[str, MqttBrokerSettings]) -> None:
        self.brokers = dict(brokers)
        self._connections: dict[str, MqttConnection] = {}
        self._session: aiohttp.ClientSession | None = None

    async def mqtt(self, broker: str) -> MqttConnection:
        """The shared connection to ``broker``, started (and briefly awaited) on first use."""
        connection = self._connections.get(broker)
        if connection is not None:
            return connection
        try:
            settings = self.brokers[broker]
        except KeyError:
            raise KeyError(f"unknown broker {broker!r}") from None
        connection = MqttConnection(settings, name=broker)
        self._connections[broker] = connection
        connection.start()
        await connection.wait_connected(_FIRST_CONNECT_WAIT_S)
        return connection

    @property
    def connections(self) -> Mapping[str, MqttConnection]:
        """The MQTT connections created so far, by broker name (for broker-state metrics)."""
        return self._connections

    def http_session(self) -> aiohttp.ClientSession:
        """The shared keep-alive HTTP session, created on first use (inside the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # No pool limit: a probe must never queue inside the client behind others.
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
                # Probes enforce their own deadlines; ceil_threshold=inf keeps aiohttp from
                # rounding any timeout above 5 s up to the next second.
                timeout=aiohttp.ClientTimeout(total=None, ceil_threshold=math.inf),
                # Probes are independent: no cookies carried from one run to the next.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the HTTP session and every MQTT connection."""
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            await connection.aclose()
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def _build_mqtt(settings: MqttProbeSettings, resources: ProbeResources) -> Probe:
    connection = await resources.mqtt(settings.broker)
    if settings.reply_topic is not None:
        await connection.add_reply_topic(settings.reply_topic)
    return MqttProbe(settings, connection)


async def _build_http(settings: HttpProbeSettings, resources: ProbeResources) -> Probe:
    return HttpProbe(settings, resources.http_session())


async def _build_integrated(settings: IntegratedProbeSettings, resources: ProbeResources) -> Probe:
    for step in settings.steps:
        if isinstance(step, MqttStep):
            connection = await resources.mqtt(step.broker)
            if step.reply_topic is not None:
                await connection.add_reply_topic(step.reply_topic)
    return IntegratedProbe(settings, resources)


#: Builds one probe kind from its settings over the shared resources.
ProbeFactory = Callable[[Any, ProbeResources], Awaitable[Probe]]

#: The probe kinds: config ``kind`` -> factory of its class.
PROBE_KINDS: dict[str, ProbeFactory] = {
    "mqtt": _build_mqtt,
    "http": _build_http,
    "integrated": _build_integrated,
}


async def build_probe(
    settings: MqttProbeSettings | HttpProbeSettings | IntegratedProbeSettings | TrafficFeedSettings,
    resources: ProbeResources,
) -> Probe:
    """Build the probe for ``settings.kind`` over the shared ``resources``."""
    try:
        factory = PROBE_KINDS[settings.kind]
    except KeyError:
        raise ValueError(f"unknown probe kind {settings.kind!r}") from None
    return await factory(settings, resources)
