"""Small helpers of the simulator tests."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import aiomqtt

from probes.settings import MqttBrokerSettings
from probes.wire import Reply


def mqtt_client(broker: MqttBrokerSettings) -> aiomqtt.Client:
    """A plain aiomqtt client standing in for a probe."""
    return aiomqtt.Client(
        broker.host,
        broker.port,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        max_inflight_messages=1000,
    )


async def collect_replies(
    client: aiomqtt.Client, count: int, timeout_s: float
) -> list[tuple[Reply, aiomqtt.Message, float]]:
    """The next ``count`` replies, each with its message and perf_counter arrival time."""
    replies: list[tuple[Reply, aiomqtt.Message, float]] = []
    async with asyncio.timeout(timeout_s):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            replies.append((Reply.decode(message.payload), message, time.perf_counter()))
            if len(replies) == count:
                break
    return replies


async def eventually(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    """Wait until ``condition()`` holds (the truth is recorded just after a reply is sent)."""
    async with asyncio.timeout(timeout_s):
        # Polling: the code under test offers no event to wait on, and should not for tests.
        while not condition():
            await asyncio.sleep(0.01)
