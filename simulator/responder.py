"""The MQTT side of the simulated network: answers online messages on request topics.

One aiomqtt client per broker subscribes to every request topic configured on it. Each
request (``probes.wire.Request``) gets a ``Decision`` from its topic's ``Behaviour`` and is
handled in its own task, so a slow answer never holds up the next request; the reply
(``probes.wire.Reply``) goes to the request's ``reply_to`` with the request's QoS, and the
true handling time goes to the ``TruthLog``. A lost broker is logged and reconnected to
with exponential backoff; it never stops the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiomqtt

from probes.settings import MqttBrokerSettings
from probes.wire import Reply, Request, WireError
from simulator.profiles import Behaviour, Decision
from simulator.settings import SimulatorSettings
from simulator.truth import TruthLog

log = logging.getLogger(__name__)

_WILDCARDS = frozenset("#+\x00")


@dataclass(frozen=True, slots=True)
class _Received:
    """A decoded request and what the responder knew when it arrived."""

    broker: str
    topic: str
    request: Request
    qos: int
    decision: Decision
    received_at: float
    t0_ns: int


class MqttResponder:
    """Answers simulated online messages on every configured request topic."""

    def __init__(
        self,
        settings: SimulatorSettings,
        brokers: Mapping[str, MqttBrokerSettings],
        truth: TruthLog,
        *,
        drain_timeout_s: float = 5.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Build the behaviours of every topic; raise ``ValueError`` for a bad mapping.

        Args:
            settings: the simulator section (its ``mqtt`` responders, profiles and seed).
            brokers: the config's brokers by name.
            truth: where every served request is recorded.
            drain_timeout_s: how long ``stop`` waits for replies still being prepared.
        """
        self.truth = truth
        # Outages are scheduled in wall-clock time; tests may pass an accelerated clock.
        self._wall_clock = wall_clock
        self._drain_timeout_s = drain_timeout_s
        self._brokers: dict[str, MqttBrokerSettings] = {}
        self._topics: dict[str, dict[str, Behaviour]] = {}
        for responder in settings.mqtt:
            if responder.broker not in brokers:
                raise ValueError(
                    f"simulator.mqtt: broker {responder.broker!r} is not defined under brokers"
                )
            topics = self._topics.setdefault(responder.broker, {})
            if responder.request_topic in topics:
                raise ValueError(
                    f"simulator.mqtt: topic {responder.request_topic!r} is answered twice "
                    f"on broker {responder.broker!r}"
                )
            self._brokers[responder.broker] = brokers[responder.broker]
            topics[responder.request_topic] = Behaviour.seeded(
                settings.profiles[responder.profile], settings.seed, responder.request_topic
            )
        self._clients: dict[str, aiomqtt.Client] = {}
        self._ready = {name: asyncio.Event() for name in self._brokers}
        self._serving: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._accepting = False

    @property
    def topics(self) -> dict[str, list[str]]:
        """The request topics answered, by broker name."""
        return {name: list(topics) for name, topics in self._topics.items()}

    async def start(self) -> None:
        """Start one connection loop per broker (returns at once; see ``wait_ready``)."""
        if self._serving:
            raise RuntimeError("MqttResponder is already started")
        self._accepting = True
        for name, broker in self._brokers.items():
            task = asyncio.create_task(self._serve(name, broker), name=f"mqtt-responder-{name}")
            self._serving.append(task)

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until every broker was connected and subscribed once; False on timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                for event in self._ready.values():
                    await event.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop taking requests, let replies in flight finish (bounded), then disconnect."""
        self._accepting = False
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=self._drain_timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("mqtt responder: %d replies cut short by shutdown", len(pending))
                await asyncio.wait(pending)
        for task in self._serving:
            task.cancel()
        for task in self._serving:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._serving.clear()

    def _new_client(self, name: str, broker: MqttBrokerSettings) -> aiomqtt.Client:
        return aiomqtt.Client(
            broker.host,
            broker.port,
            username=_secret(broker.username_env),
            password=_secret(broker.password_env),
            identifier=f"sla-simulator-{name}-{secrets.token_hex(4)}",
            keepalive=broker.keepalive,
            # Nagle + delayed ACKs add ~30 ms to a reply otherwise (see NOTES.md).
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            # paho's default of 20 QoS>0 messages in flight would queue a burst of replies
            # inside the client, adding a wait the probe sees but handled_s does not.
            max_inflight_messages=1000,
        )

    async def _serve(self, name: str, broker: MqttBrokerSettings) -> None:
        """Connect, subscribe and answer until cancelled; reconnect after any failure."""
        topics = self._topics[name]
        pause_s = broker.reconnect_min
        while True:
            try:
                async with self._new_client(name, broker) as client:
                    for topic in topics:
                        # QoS 2 so each request arrives with the QoS it was sent with.
                        await client.subscribe(topic, qos=2)
                    self._clients[name] = client
                    self._ready[name].set()
                    pause_s = broker.reconnect_min
                    log.info(
                        "mqtt responder: answering %d topics on %s:%d",
                        len(topics),
                        broker.host,
                        broker.port,
                    )
                    try:
                        async for message in client.messages:
                            self._receive(name, topics, message)
                    finally:
                        self._clients.pop(name, None)
            except aiomqtt.MqttError as exc:
                log.warning(
                    "mqtt responder: broker %r (%s:%d) unavailable: %s; retrying in %.2g s",
                    name,
                    broker.host,
                    broker.port,
                    exc,
                    pause_s,
                )
            except Exception:
                # A bug must not silence the responder for good: log it and start over.
                log.exception("mqtt responder: unexpected error on broker %r", name)
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, broker.reconnect_max)

    def _receive(
        self, broker: str, topics: Mapping[str, Behaviour], message: aiomqtt.Message
    ) -> None:
        """Decide a request's fate and hand it to its own task."""
        t0_ns = time.perf_counter_ns()
        received_at = self._wall_clock()
        if not self._accepting:
            return
        topic = message.topic.value
        behaviour = topics.get(topic)
        if behaviour is None:
            return
        if message.retain:
            # A retained request is stale: its sender stopped waiting long ago.
            log.warning("mqtt responder: ignoring a retained message on %s", topic)
            return
        payload = message.payload
        if not isinstance(payload, bytes | bytearray | str):
            log.warning("mqtt responder: ignoring a non-request payload on %s", topic)
            return
        try:
            request = Request.decode(payload)
        except WireError as exc:
            log.warning("mqtt responder: ignoring a malformed request on %s: %s", topic, exc)
            return
        if not request.reply_to or _WILDCARDS.intersection(request.reply_to):
            log.warning("mqtt responder: ignoring request %s: bad reply_to", request.id)
            return
        decision = behaviour.draw(received_at)
        if decision.action == "drop":
            self.truth.record(request.id, topic, "mqtt", received_at, 0.0, "drop")
            return
        received = _Received(broker, topic, request, message.qos, decision, received_at, t0_ns)
        task = asyncio.create_task(self._answer(received))
        self._in_flight.add(task)
        task.add_done_callback(self._reap)

    async def _answer(self, received: _Received) -> None:
        """Wait the drawn delay, publish the reply, record the truth."""
        request = received.request
        action = received.decision.action
        handled_s = 0.0
        try:
            await asyncio.sleep(received.decision.delay_s)
            # Look the client up now: after a reconnect the reply goes out on the new one.
            client = self._clients.get(received.broker)
            handled_s = (time.perf_counter_ns() - received.t0_ns) / 1e9
            if client is None:
                log.warning("mqtt responder: no broker connection for reply %s", request.id)
                action = "drop"
            else:
                status = "ok" if action == "ok" else "error"
                detail = "" if action == "ok" else "simulated error"
                reply = Reply(request.id, status, handled_s, detail)
                try:
                    await client.publish(request.reply_to, reply.encode(), qos=received.qos)
                except aiomqtt.MqttError as exc:
                    log.warning("mqtt responder: reply %s not sent: %s", request.id, exc)
                    action = "drop"
        except asyncio.CancelledError:
            action = "drop"  # shutdown cut it short: the requester got no answer
            raise
        finally:
            self.truth.record(
                request.id, received.topic, "mqtt", received.received_at, handled_s, action
            )

    def _reap(self, task: asyncio.Task[None]) -> None:
        """Forget a finished reply task and log what it raised, so no error is lost."""
        self._in_flight.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("mqtt responder: reply task failed", exc_info=exc)


def _secret(env: str | None) -> str | None:
    """The value of the environment variable named ``env`` (secrets never sit in config)."""
    if env is None:
        return None
    value = os.environ.get(env)
    if value is None:
        log.warning("mqtt responder: environment variable %s is not set", env)
    return value
