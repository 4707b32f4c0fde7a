"""The HTTP integrated services, served for real and called with aiohttp."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from simulator.http_services import parse_listen
from simulator.network import Simulator
from simulator.settings import (
    HttpRouteSettings,
    HttpServerSettings,
    LatencySettings,
    OutageSettings,
    ProfileSettings,
    SimulatorSettings,
)
from tests.simulator.helpers import eventually

FAST = LatencySettings(distribution="constant", median=0.02)
SETTINGS = SimulatorSettings(
    profiles={
        "fast": ProfileSettings(latency=FAST),
        "failing": ProfileSettings(latency=FAST, error_rate=1.0),
        "down": ProfileSettings(
            latency=FAST, outages=[OutageSettings(every=3600, duration=3600, mode="drop")]
        ),
    },
    http=HttpServerSettings(
        listen="127.0.0.1:0",
        routes=[
            HttpRouteSettings(path="/providers/identity", profile="fast"),
            HttpRouteSettings(path="/providers/career", profile="failing"),
            HttpRouteSettings(path="/providers/pension", profile="down"),
        ],
    ),
)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """The simulator serving SETTINGS on a free port."""
    async with Simulator(SETTINGS, {}) as simulator:
        yield simulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client standing in for a probe."""
    async with aiohttp.ClientSession() as client:
        yield client


def url(sim: Simulator, path: str) -> str:
    """The address of ``path`` on the simulator's bound port."""
    return f"http://127.0.0.1:{sim.http_port}{path}"


async def test_ok_echoes_the_request_id(sim: Simulator, session: aiohttp.ClientSession) -> None:
    before = time.time()
    async with session.get(
        url(sim, "/providers/identity"), headers={"X-Request-Id": "abc-1"}
    ) as response:
        body = await response.json()
    assert response.status == 200
    assert response.headers["X-Request-Id"] == "abc-1"
    assert body["id"] == "abc-1"
    assert 0.02 <= body["handled_s"] < 0.02 + 0.03
    [truth] = sim.truth.records
    assert (truth.request_id, truth.endpoint, truth.kind, truth.action) == (
        "abc-1",
        "/providers/identity",
        "http",
        "ok",
    )
    assert truth.handled_s == body["handled_s"]
    assert before <= truth.received_at <= time.time()


async def test_any_method_and_generated_id(sim: Simulator, session: aiohttp.ClientSession) -> None:
    async with session.post(url(sim, "/providers/identity"), data=b"x" * 10_000) as response:
        body = await response.json()
    assert response.status == 200
    assert len(body["id"]) == 32
    assert [r.request_id for r in sim.truth.records] == [body["id"]]


async def test_error_is_503(sim: Simulator, session: aiohttp.ClientSession) -> None:
    async with session.get(
        url(sim, "/providers/career"), headers={"X-Request-Id": "e"}
    ) as response:
        body = await response.json()
    assert response.status == 503
    assert body["error"] == "simulated error"
    assert body["id"] == "e"
    assert [(r.request_id, r.action) for r in sim.truth.records] == [("e", "error")]


async def test_unknown_path_is_404(sim: Simulator, session: aiohttp.ClientSession) -> None:
    async with session.get(url(sim, "/providers/nobody")) as response:
        assert response.status == 404
    assert sim.truth.records == []


async def test_drop_makes_the_client_time_out(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    timeout = aiohttp.ClientTimeout(total=0.3)
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        async with session.get(
            url(sim, "/providers/pension"), headers={"X-Request-Id": "d"}, timeout=timeout
        ):
            pass
    assert time.perf_counter() - started >= 0.3
    assert [(r.request_id, r.action) for r in sim.truth.records] == [("d", "drop")]


async def test_stop_releases_held_requests_quickly(session: aiohttp.ClientSession) -> None:
    sim = Simulator(SETTINGS, {})
    await sim.start()
    held = asyncio.create_task(session.get(url(sim, "/providers/pension")))
    await eventually(lambda: bool(sim.truth.records))  # the request is held by now
    started = time.perf_counter()
    await sim.stop()
    assert time.perf_counter() - started < 1.0
    # The connection is closed without an answer, never with one.
    with pytest.raises(aiohttp.ClientConnectionError):
        await held


async def test_many_requests_in_parallel(sim: Simulator, session: aiohttp.ClientSession) -> None:
    async def call(i: int) -> int:
        headers = {"X-Request-Id": f"p{i}"}
        async with session.get(url(sim, "/providers/identity"), headers=headers) as response:
            return response.status

    started = time.perf_counter()
    statuses = await asyncio.gather(*(call(i) for i in range(100)))
    # Serially 100 * 20 ms = 2 s.
    assert time.perf_counter() - started < 1.0
    assert statuses == [200] * 100
    assert len(sim.truth.records) == 100


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:8181", ("127.0.0.1", 8181)), ("[::1]:0", ("::1", 0)), ("host:1", ("host", 1))],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8181", ":8181", "host:", "host:http", "host:70000"])
def test_parse_listen_rejects(listen: str) -> None:
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_listen(listen)
