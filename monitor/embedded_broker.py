"""An MQTT broker inside the daemon's own event loop (amqtt), for the one-command demo.

Production uses a real broker (Mosquitto); this one exists so that ``sla-monitor demo``
runs on a fresh machine with nothing installed.
"""

from __future__ import annotations

import logging
import socket
from types import TracebackType
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import BrokerConfig, ListenerConfig

# amqtt logs every connection and packet at INFO; keep the demo's terminal readable.
for _name in ("amqtt", "transitions"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class _NoDelayBroker(Broker):  # type: ignore[misc]
    """amqtt's broker with TCP_NODELAY on every accepted socket (Nagle + delayed ACKs
    add ~30 ms to a request/reply round trip otherwise)."""

    async def stream_connected(self, reader: Any, writer: Any, listener_name: str) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await super().stream_connected(reader, writer, listener_name)


class EmbeddedBroker:
    """Start with ``async with EmbeddedBroker(host, port):`` inside the running loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._broker: Broker | None = None

    async def start(self) -> None:
        """Bind and start accepting clients."""
        config = BrokerConfig(
            listeners={"default": ListenerConfig(bind=f"{self.host}:{self.port}")},
            # No $SYS plugin (it polls psutil and warns), no packet logging.
            plugins={"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        )
        self._broker = _NoDelayBroker(config)
        await self._broker.start()

    async def stop(self) -> None:
        """Disconnect clients and stop listening."""
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
