"""Online messages over MQTT: a request on a topic, its reply matched by correlation id.

All MQTT probes on one broker share one long-lived ``MqttConnection``. Its background task
owns the aiomqtt client: it connects with exponential backoff, (re)subscribes to the reply
topics in use and routes each reply to the request waiting for its id. A request never
waits for a connection: while the broker is down each attempt is a measured failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import aiomqtt

from probes.base import Observation, Outcome
from probes.settings import MqttBrokerSettings, MqttProbeSettings
from probes.tls import ssl_context
from probes.wire import Reply, Request, WireError

__all__ = ["MqttConnection", "MqttProbe"]

log = logging.getLogger(__name__)

#: How long the ids of abandoned requests are remembered, to tell a late reply from a stray.
_LATE_MEMORY_S = 300.0
_LATE_MEMORY_MAX = 100_000
_NS_PER_S = 1e9


@dataclass(frozen=True, slots=True)
class _Failed:
    """Put in a pending future instead of a reply when the request cannot be answered."""

    outcome: Outcome
    detail: str


_Answer = Reply | _Failed


class MqttConnection:
    """One long-lived connection to a broker, shared by every MQTT probe on it.

    Use ``start()`` (or ``async with``) inside the running loop and ``aclose()`` at the end.
    """

    def __init__(self, settings: MqttBrokerSettings, *, name: str = "default") -> None:
        self.settings = settings
        self.name = name
        self.client_id = f"{settings.client_id_prefix}-{secrets.token_hex(4)}"
        self.default_reply_topic = f"sla-monitor/{self.client_id}/reply"
        # Read once: the config names the variables, the environment holds the secrets.
        self._username = _from_env(settings.username_env, "username_env")
        self._password = _from_env(settings.password_env, "password_env")
        #: Replies for an id whose request had already given up (timeout, lost connection).
        self.late_replies = 0
        #: Replies for an id this connection never sent (or answered twice).
        self.unknown_replies = 0
        #: Messages with the retain flag: stale by definition, never an answer.
        self.retained_replies = 0
        #: Payloads that are not a reply.
        self.invalid_replies = 0
        self._reply_topics: set[str] = {self.default_reply_topic}
        self._pending: dict[str, asyncio.Future[_Answer]] = {}
        self._abandoned: dict[str, float] = {}  # id -> perf_counter() when it was sent
        self._client: aiomqtt.Client | None = None
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """True while connected and subscribed to every reply topic."""
        return self._up.is_set()

    def start(self) -> None:
        """Start the background connect loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"mqtt-connection-{self.name}"
            )

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the connection; return whether it is up."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._up.wait()
        return self.connected

    async def add_reply_topic(self, topic: str) -> None:
        """Subscribe to ``topic`` now if connected, and after every reconnect."""
        if topic in self._reply_topics:
            return
        self._reply_topics.add(topic)
        client = self._client
        if client is not None and self.connected:
            try:
                await client.subscribe(topic, qos=2)
            except aiomqtt.MqttError as exc:
                # The reconnect loop subscribes to every registered topic.
                log.info("broker %s: subscribe to %s failed: %s", self.name, topic, exc)

    async def request(
        self,
        topic: str,
        qos: int = 1,
        reply_topic: str | None = None,
        pad: str = "",
        timeout_s: float = 5.0,
        *,
        request_id: str | None = None,
    ) -> Observation:
        """Publish one request and wait for its reply; classify what happened.

        Args:
            topic: the request topic.
            qos: QoS of the request.
            reply_topic: where the responder should answer; the connection's default if None.
            pad: filler to give the message a realistic size.
            timeout_s: the whole budget, from publish to reply.
            request_id: the correlation id; a fresh uuid4 hex when None.
        """
        reply_to = reply_topic or self.default_reply_topic
        if reply_to not in self._reply_topics:
            await self.add_reply_topic(reply_to)
        request_id = request_id or uuid.uuid4().hex
        with self._pending_reply(request_id) as future:
            start = time.perf_counter_ns()
            client = self._client
            if client is None or not self.connected:
                return _observe(
                    start, Outcome.CONNECT, f"broker {self.name} not connected", request_id
                )
            payload = Request(id=request_id, sent_at=time.time(), reply_to=reply_to, pad=pad)
            publish = asyncio.ensure_future(client.publish(topic, payload.encode(), qos=qos))
            # The publish runs beside the wait: a QoS 1/2 PUBACK that never comes (the broker
            # died) must not hold the request once the connection loss is known.
            publish.add_done_callback(lambda task: _fail_on_publish_error(task, future))
            try:
                async with asyncio.timeout(timeout_s):
                    answer = await future
            except TimeoutError:
                self._abandon(request_id)
                return _observe(
                    start, Outcome.TIMEOUT, f"no reply within {timeout_s:g} s", request_id
                )
            except asyncio.CancelledError:
                self._abandon(request_id)
                raise
            finally:
                if not publish.done():
                    publish.cancel()
        if isinstance(answer, _Failed):
            self._abandon(request_id)
            return _observe(start, answer.outcome, answer.detail, request_id)
        if not answer.ok:
            detail = f"responder {answer.status}: {answer.detail or 'no detail'}"
            return _observe(start, Outcome.ERROR, detail, request_id)
        return _observe(start, Outcome.OK, "", request_id)

    async def aclose(self) -> None:
        """Disconnect and stop reconnecting; pending requests end as CONNECT."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # Swallow only the cancellation we asked for, not one aimed at our caller.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        self._fail_pending(f"connection to broker {self.name} closed")

    async def __aenter__(self) -> MqttConnection:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @contextlib.contextmanager
    def _pending_reply(self, request_id: str) -> Iterator[asyncio.Future[_Answer]]:
        """Register the future for a reply before publishing; always unregister it."""
        if request_id in self._pending:
            raise ValueError(f"request id {request_id!r} is already pending")
        future: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            yield future
        finally:
            del self._pending[request_id]

    def _abandon(self, request_id: str) -> None:
        """Remember an id given up on, so that its reply is counted as late, not unknown."""
        now = time.perf_counter()
        self._abandoned[request_id] = now
        # Insertion order is age order: drop from the front.
        while self._abandoned:
            old_id, when = next(iter(self._abandoned.items()))
            if now - when < _LATE_MEMORY_S and len(self._abandoned) <= _LATE_MEMORY_MAX:
                break
            del self._abandoned[old_id]

    def _fail_pending(self, detail: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_result(_Failed(Outcome.CONNECT, detail))

    def _dispatch(self, message: aiomqtt.Message) -> None:
        """Route one incoming message to the request waiting for it, if any."""
        if message.retain:
            self.retained_replies += 1
            log.info("broker %s: ignored retained message on %s", self.name, message.topic)
            return
        payload = message.payload
        try:
            if not isinstance(payload, bytes | bytearray | str):
                raise WireError(f"payload of type {type(payload).__name__}")
            reply = Reply.decode(payload)
        except WireError as exc:
            self.invalid_replies += 1
            log.info("broker %s: ignored invalid reply on %s: %s", self.name, message.topic, exc)
            return
        future = self._pending.get(reply.id)
        if future is not None and not future.done():
            future.set_result(reply)
            return
        sent = self._abandoned.get(reply.id)
        if sent is not None:
            self.late_replies += 1
            late_s = time.perf_counter() - sent
            log.info(
                "broker %s: late reply %s, %.3f s after its request", self.name, reply.id, late_s
            )
        else:
            self.unknown_replies += 1
            log.info("broker %s: reply for unknown id %s", self.name, reply.id)

    async def _run(self) -> None:
        """Connect, subscribe, route replies; on any loss back off and start over, forever."""
        delay_s = self.settings.reconnect_min
        failures = 0
        while True:
            client = self._new_client()
            try:
                async with client:
                    subscribed: set[str] = set()
                    # Loop: a probe may register a topic while we await a SUBACK.
                    while missing := self._reply_topics - subscribed:
                        for topic in missing:
                            await client.subscribe(topic, qos=2)
                            subscribed.add(topic)
                    self._client = client
                    self._up.set()
                    failures = 0
                    delay_s = self.settings.reconnect_min
                    log.info("broker %s: connected as %s", self.name, self.client_id)
                    async for message in client.messages:
                        self._dispatch(message)
            except aiomqtt.MqttError as exc:
                _close_socket(client)
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "broker %s: %s; retrying in %.2f s", self.name, exc, delay_s)
            except Exception:
                # A bug here must not end the loop: every MQTT probe on the broker would stop.
                log.exception("broker %s: connection loop failed; retrying", self.name)
            finally:
                self._up.clear()
                self._client = None
                # Clean sessions: replies to requests sent on this connection are gone.
                self._fail_pending(f"connection to broker {self.name} lost")
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, self.settings.reconnect_max)

    def _new_client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self.settings.host,
            self.settings.port,
            identifier=self.client_id,
            username=self._username,
            password=self._password,
            keepalive=self.settings.keepalive,
            protocol=_PROTOCOLS[self.settings.protocol],
            # Nagle + delayed ACKs add ~30 ms to the p99 round trip (NOTES.md).
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            # Mosquitto (default max_inflight_messages 20) silently drops a v3.1.1 client's
            # QoS 2 publishes beyond 20 awaiting PUBREL, so never exceed that (measured with
            # Mosquitto 2.0.11: 60 concurrent, 20 delivered). paho queues the rest briefly.
            max_inflight_messages=20,
            tls_context=None if self.settings.tls is None else ssl_context(self.settings.tls),
            tls_insecure=None
            if self.settings.tls is None
            else self.settings.tls.insecure_skip_verify,
        )
        # Hundreds of concurrent probes are normal here, not a leak worth a warning.
        client.pending_calls_threshold = 1_000_000
        return client


_PROTOCOLS = {"3.1.1": aiomqtt.ProtocolVersion.V311, "5": aiomqtt.ProtocolVersion.V5}


def _close_socket(client: aiomqtt.Client) -> None:
    """aiomqtt leaves paho's socket open when connecting fails (a TLS handshake the broker
    refuses, say): close it, or every reconnect attempt leaks one. Private paho API, so
    looked up defensively."""
    paho = getattr(client, "_client", None)
    close = getattr(paho, "_sock_close", None)
    if callable(close):
        close()


class MqttProbe:
    """Times one online message: request published, matching reply received."""

    def __init__(self, settings: MqttProbeSettings, connection: MqttConnection) -> None:
        self.settings = settings
        self.connection = connection
        self._pad = "x" * settings.payload_bytes

    async def observe(self) -> Observation:
        """Send one request and classify its reply (or the lack of one)."""
        s = self.settings
        return await self.connection.request(
            s.request_topic, s.qos, s.reply_topic, self._pad, s.timeout
        )

    async def aclose(self) -> None:
        """Nothing to release: the connection belongs to ``ProbeResources``."""


def _observe(start_ns: int, outcome: Outcome, detail: str, request_id: str) -> Observation:
    return Observation((time.perf_counter_ns() - start_ns) / _NS_PER_S, outcome, detail, request_id)


def _fail_on_publish_error(task: asyncio.Future[None], future: asyncio.Future[_Answer]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is None or future.done():
        return
    if isinstance(exc, aiomqtt.MqttError):
        future.set_result(_Failed(Outcome.CONNECT, f"publish failed: {exc}"))
    else:
        future.set_result(_Failed(Outcome.ERROR, f"publish failed: {type(exc).__name__}: {exc}"))


def _from_env(variable: str | None, key: str) -> str | None:
    if variable is None:
        return None
    try:
        return os.environ[variable]
    except KeyError:
        raise ValueError(f"{key}: environment variable {variable} is not set") from None
