"""A tiny MQTT responder and an HTTP test server for the probe tests (real sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from aiohttp import web

from probes.wire import Reply, Request

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

#: Handles one request; may sleep, reply, reply twice, or never reply.
Handler = Callable[[Request, aiomqtt.Client], Coroutine[Any, Any, None]]


async def answer(
    client: aiomqtt.Client,
    request: Request,
    *,
    status: str = "ok",
    detail: str = "",
    reply_id: str | None = None,
    topic: str | None = None,
    retain: bool = False,
) -> None:
    """Publish a reply to ``request`` (or a deliberately wrong one)."""
    reply = Reply(id=reply_id or request.id, status=status, handled_s=0.0, detail=detail)
    await client.publish(topic or request.reply_to, reply.encode(), qos=1, retain=retain)


def delayed(delay_s: float) -> Handler:
    """A handler that answers OK after ``delay_s``."""

    async def handle(request: Request, client: aiomqtt.Client) -> None:
        await asyncio.sleep(delay_s)
        await answer(client, request)

    return handle


@dataclass
class Responder:
    """What the responder saw."""

    requests: list[Request] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def responder(
    port: int, topic: str, handle: Handler | None = None, **client_options: Any
) -> AsyncIterator[Responder]:
    """Answer requests on ``topic`` until the block ends; reconnects after a broker outage.
    ``client_options`` go to ``aiomqtt.Client`` (credentials, protocol version)."""
    seen = Responder()
    handle = handle or delayed(0.0)
    tasks: set[asyncio.Task[None]] = set()

    async def serve() -> None:
        while True:
            try:
                client = aiomqtt.Client("127.0.0.1", port, socket_options=NODELAY, **client_options)
                client.pending_calls_threshold = 1_000_000  # hundreds in flight is the point
                async with client:
                    await client.subscribe(topic, qos=1)
                    seen.connected.set()
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        request = Request.decode(message.payload)
                        seen.requests.append(request)
                        task = asyncio.create_task(handle(request, client))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
            except aiomqtt.MqttError:
                seen.connected.clear()
                await asyncio.sleep(0.05)

    server = asyncio.create_task(serve())
    try:
        async with asyncio.timeout(10):
            await seen.connected.wait()
        yield seen
    finally:
        for task in [server, *tasks]:
            task.cancel()
        results = await asyncio.gather(server, *tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, aiomqtt.MqttError):
                raise result


@contextlib.asynccontextmanager
async def http_server(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port; yield its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``check`` until it is true; fail after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.01)
