"""Events gateways publish on MQTT, taken through the same intake as the API's.

Durability is the broker's persistent session, not a replay: the subscriber connects with
a fixed client id and ``clean_session = false``, so while the daemon is down the broker
keeps its subscription and queues the QoS 1 messages published meanwhile; and each
message is acknowledged (PUBACK) only after its events are committed, so a message the
daemon took but had not stored when it died is delivered again at the next connect. A
message delivered twice is counted once: its events' ids are known.

aiomqtt has no switch for manual acknowledgement yet (aiomqtt issue #345, PR #346); paho,
under it, has one (``manual_ack_set`` and ``ack``), reached through ``Client._client``.
"""

from __future__ import annotations

import asyncio
import logging
import os

import aiomqtt

from monitor.config import Config, MqttIngestConfig
from monitor.errors import StoreError
from monitor.ingest.events import BodyError, Read, TooManyEvents
from monitor.ingest.intake import Intake
from probes.settings import MqttBrokerSettings
from probes.tls import ssl_context

log = logging.getLogger(__name__)

#: Longest wait between two attempts to store a message's events while the store fails.
_RETRY_MAX_S = 10.0
#: Messages taken at once (Mosquitto sends at most 20 unacknowledged by default).
_IN_FLIGHT = 4


class MqttEventSubscriber:
    """Subscribes to ``ingest.mqtt.topic`` until cancelled, reconnecting with backoff."""

    def __init__(self, config: Config, intake: Intake) -> None:
        settings = config.ingest.mqtt
        if settings is None:
            raise ValueError("the config has no ingest.mqtt section")
        self.settings: MqttIngestConfig = settings
        self.broker: MqttBrokerSettings = config.brokers[settings.broker]
        self._intake = intake
        #: Messages taken (their events stored, or refused as invalid) and acknowledged.
        self.messages = 0
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Take messages until cancelled."""
        backoff = self.broker.reconnect_min
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                log.warning(
                    "events on broker %s: %s; reconnecting in %.1f s",
                    self.settings.broker,
                    exc,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(self.broker.reconnect_max, backoff * 2)

    async def _session(self) -> None:
        broker = self.broker
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            identifier=self.settings.client_id,
            clean_session=False,
            username=_env(broker.username_env),
            password=_env(broker.password_env),
            keepalive=broker.keepalive,
            # 3.1.1 whatever the probes speak: its persistent session is one flag.
            protocol=aiomqtt.ProtocolVersion.V311,
            tls_context=None if broker.tls is None else ssl_context(broker.tls),
            tls_insecure=None if broker.tls is None else broker.tls.insecure_skip_verify,
        ) as client:
            client._client.manual_ack_set(True)  # PUBACK only once stored (see above)
            await client.subscribe(self.settings.topic, qos=self.settings.qos)
            self.connected.set()
            log.info("events: subscribed to %s on %s", self.settings.topic, self.settings.broker)
            # A few messages at a time: one is parsed (in an ingest worker) while the one
            # before it is stored. They are stored in the order they came (a batch's
            # processed event may follow its submitted one in the next message), each
            # acknowledged once its own events are committed.
            room = asyncio.Semaphore(_IN_FLIGHT)
            taking: set[asyncio.Task[None]] = set()
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            turn.set_result(None)
            try:
                async for message in client.messages:
                    await room.acquire()
                    mine = asyncio.get_running_loop().create_future()
                    task = asyncio.create_task(self._take_and_ack(client, message, turn, mine))
                    task.add_done_callback(lambda _: room.release())
                    taking.add(task)
                    task.add_done_callback(taking.discard)
                    turn = mine
            finally:
                # Unacknowledged ones are delivered again at the next connect (and
                # counted once).
                for task in taking:
                    task.cancel()
                await asyncio.gather(*taking, return_exceptions=True)

    async def _take_and_ack(
        self,
        client: aiomqtt.Client,
        message: aiomqtt.Message,
        turn: asyncio.Future[None],
        mine: asyncio.Future[None],
    ) -> None:
        """Parse the message, wait for the one before it to be stored, store it, ack it."""
        try:
            parsed = await self._parse(message)
            await asyncio.shield(turn)
            if parsed is not None:
                await self._take(message, self._intake.known(parsed))
            client._client.ack(message.mid, message.qos)
            self.messages += 1
        except Exception:  # a bug: the message stays unacknowledged (again at reconnect)
            log.exception("events on %s: message not taken", message.topic)
        finally:
            if not mine.done():
                mine.set_result(None)

    async def _parse(self, message: aiomqtt.Message) -> Read | None:
        """The message's events, or None when it can never be taken (logged)."""
        payload = message.payload
        if not isinstance(payload, bytes | bytearray):
            log.error("events on %s: the payload is not bytes: dropped", message.topic)
            return None
        try:
            return await self._intake.parse(bytes(payload))
        except (BodyError, TooManyEvents) as exc:
            log.error("events on %s: message dropped: %s", message.topic, exc)
            return None

    async def _take(self, message: aiomqtt.Message, read: Read) -> None:
        """Store the message's events, retrying while the store fails: it is acknowledged
        only afterwards."""
        delay = 0.5
        while True:
            try:
                taken = await self._intake.take(read)
                break
            except (StoreError, TimeoutError) as exc:
                log.error(
                    "events on %s not stored (retry in %.1f s): %s", message.topic, delay, exc
                )
                await asyncio.sleep(delay)
                delay = min(_RETRY_MAX_S, delay * 2)
        for error in taken.errors[:5]:
            log.warning("events on %s: line %d refused: %s", message.topic, error.line, error.error)


def _env(variable: str | None) -> str | None:
    return os.environ.get(variable) if variable else None
