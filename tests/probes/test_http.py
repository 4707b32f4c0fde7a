"""HttpProbe against a real aiohttp server (and raw sockets for broken answers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from probes.base import Outcome
from probes.http import HttpProbe, http_exchange
from probes.registry import ProbeResources
from probes.settings import HttpProbeSettings, HttpTarget
from tests.probes.support import http_server
from tests.support.brokers import free_port

pytestmark = pytest.mark.timeout(60)


class Server:
    """What the test server saw: client ports and request ids."""

    def __init__(self) -> None:
        self.peers: list[int] = []
        self.request_ids: list[str] = []
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/ok", self.ok)
        app.router.add_get("/status/{code}", self.status)
        app.router.add_get("/delay/{ms}", self.delay)
        return app

    async def record(self, request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.peers.append(peer[1] if peer else -1)
        self.request_ids.append(request.headers.get("X-Request-Id", ""))
        self.headers.append(dict(request.headers))
        self.bodies.append(await request.read())

    async def ok(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(text="service answered: all good")

    async def status(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(status=int(request.match_info["code"]), text="nope")

    async def delay(self, request: web.Request) -> web.Response:
        await self.record(request)
        await asyncio.sleep(int(request.match_info["ms"]) / 1000)
        return web.Response(text="late but fine")


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
async def base_url(server: Server) -> AsyncIterator[str]:
    async with http_server(server.app()) as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    resources = ProbeResources({})
    yield resources.http_session()
    await resources.aclose()


def probe(session: aiohttp.ClientSession, url: str, **fields: object) -> HttpProbe:
    settings = HttpProbeSettings.model_validate({"kind": "http", "name": "h", "url": url, **fields})
    return HttpProbe(settings, session)


async def test_ok_sends_correlation_id(
    base_url: str, server: Server, session: aiohttp.ClientSession
) -> None:
    observation = await probe(session, f"{base_url}/ok", expect_body="all good").observe()
    assert observation.outcome is Outcome.OK, observation.detail
    assert 0 < observation.latency_s < 0.1
    assert server.request_ids == [observation.request_id]
    assert len(observation.request_id) == 32


async def test_method_headers_and_body_from_settings(
    base_url: str, server: Server, session: aiohttp.ClientSession
) -> None:
    observation = await probe(
        session,
        f"{base_url}/ok",
        method="POST",
        headers={"X-Institution": "42"},
        body='{"ssin": "x"}',
        request_id_header="X-Correlation",
    ).observe()
    assert observation.ok
    assert server.bodies == [b'{"ssin": "x"}']
    assert server.headers[0]["X-Institution"] == "42"
    assert server.headers[0]["X-Correlation"] == observation.request_id


async def test_unexpected_status(base_url: str, session: aiohttp.ClientSession) -> None:
    observation = await probe(session, f"{base_url}/status/503").observe()
    assert observation.outcome is Outcome.STATUS
    assert observation.detail == "status 503"
    accepted = await probe(session, f"{base_url}/status/204", expect_status=[200, 204]).observe()
    assert accepted.ok


async def test_body_check(base_url: str, session: aiohttp.ClientSession) -> None:
    observation = await probe(session, f"{base_url}/ok", expect_body="citizen").observe()
    assert observation.outcome is Outcome.BODY
    assert "citizen" in observation.detail


async def test_timeout_is_exact(base_url: str, session: aiohttp.ClientSession) -> None:
    observation = await probe(session, f"{base_url}/delay/1000", timeout=0.3).observe()
    assert observation.outcome is Outcome.TIMEOUT
    assert observation.latency_s == pytest.approx(0.3, abs=0.05)


async def test_latency_covers_the_handler(base_url: str, session: aiohttp.ClientSession) -> None:
    observation = await probe(session, f"{base_url}/delay/150").observe()
    assert observation.ok
    assert 0.15 <= observation.latency_s < 0.2


async def test_connection_refused(session: aiohttp.ClientSession) -> None:
    observation = await probe(session, f"http://127.0.0.1:{free_port()}/").observe()
    assert observation.outcome is Outcome.CONNECT
    assert observation.latency_s < 0.1


async def test_keep_alive_reuses_one_connection(
    base_url: str, server: Server, session: aiohttp.ClientSession
) -> None:
    for _ in range(5):
        assert (await probe(session, f"{base_url}/ok").observe()).ok
    assert len(server.peers) == 5
    assert len(set(server.peers)) == 1


async def _raw_server(answer: bytes) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"", id="disconnect"),
        pytest.param(b"SPEAK FRIEND\r\n\r\n", id="not-http"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", id="truncated"),
    ],
)
async def test_broken_answers_are_protocol_errors(
    session: aiohttp.ClientSession, answer: bytes
) -> None:
    raw = await _raw_server(answer)
    port = raw.sockets[0].getsockname()[1]
    try:
        observation = await probe(session, f"http://127.0.0.1:{port}/").observe()
    finally:
        raw.close()
        await raw.wait_closed()
    assert observation.outcome is Outcome.PROTOCOL, observation.detail


async def test_exchange_is_reusable_with_a_given_id(
    base_url: str, server: Server, session: aiohttp.ClientSession
) -> None:
    target = HttpTarget(url=f"{base_url}/ok")
    observation = await http_exchange(session, target, "abc-1", 1.0)
    assert observation.ok
    assert observation.request_id == "abc-1"
    assert server.request_ids == ["abc-1"]


async def test_cancellation_propagates(base_url: str, session: aiohttp.ClientSession) -> None:
    task = asyncio.create_task(probe(session, f"{base_url}/delay/2000").observe())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
