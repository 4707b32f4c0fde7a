"""The server alone on a free loopback port, with figures from a real ledger: /api/sla
shows the SLA core's figures and the Clock's time, /healthz follows the daemon's health,
/metrics exposes the registry given, and writes are refused without a token."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from monitor.ledger.windows import Ledger
from monitor.results import Result
from monitor.sla.figures import all_figures
from monitor.web.server import Health, Server
from probes.base import Outcome
from tests.fakes import FakeClock
from tests.support import builders

T0 = 1_795_000_020.0


class Running:
    def __init__(self) -> None:
        self.config = builders.config(
            builders.service("svc", latency={"fast": 1.0}, availability=["up"]),
            builders.service("other", availability=["up"]),
            server={"listen": "127.0.0.1:0"},
        )
        self.clock = FakeClock(T0 + 30)
        self.ledger = Ledger(self.config, grace_minutes=1)
        for i, latency in enumerate((0.2, 0.4, 1.5, 0.3)):
            self.ledger.add(Result("svc", "p", "http", T0 + i, latency, Outcome.OK))
        self.healthy = True
        self.registry = CollectorRegistry()
        Counter("sla_test_things", "A counter of this test.", registry=self.registry).inc(3)
        self.server = Server(
            self.config,
            self.registry,
            lambda: all_figures(self.config, self.ledger, self.clock.now()),
            lambda: Health(self.healthy, {"store": "ok" if self.healthy else "failing"}),
            clock=self.clock,
        )


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    r = Running()
    await r.server.start()
    try:
        yield r
    finally:
        await r.server.stop()


async def test_api_sla_shows_the_core_figures(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.server.url) as client:
        body = (await client.get("/api/sla", params={"service": "svc"})).json()
        missing = await client.get("/api/sla", params={"service": "nope"})
    clock_time = dt.datetime.fromtimestamp(T0 + 30, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["generated_at"] == clock_time  # the Clock's, not the host's
    assert set(body["windows"]) >= {"5m", "30d", "month", "previous_month"}
    [service] = body["services"]
    fast = next(o for o in service["objectives"] if o["objective"] == "fast")
    five = fast["windows"]["5m"]
    assert (five["valid"], five["good"], five["bad"], five["compliance"]) == (4, 3, 1, 0.75)
    # Counted, but no minute of the window is sealed yet: how much of it the monitor saw
    # is unknown, so no verdict (it would be "missed").
    assert (five["met"], five["verdict"], five["coverage"]) == (None, "insufficient_data", None)
    assert five["coverage_floor"] == 0.9
    assert set(five["latency_quantiles_s"]) == {"p50", "p99", "p99_5"}
    assert missing.status_code == 404
    assert "unknown service" in missing.json()["error"]


async def test_healthz_and_metrics(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.server.url) as client:
        ok = await client.get("/healthz")
        running.healthy = False
        failing = await client.get("/healthz")
        metrics = await client.get("/metrics")
    assert (ok.status_code, ok.json()["status"]) == (200, "ok")
    assert (failing.status_code, failing.json()["store"]) == (503, "failing")
    assert "sla_test_things_total 3.0" in metrics.text


async def test_writes_without_a_configured_token_are_refused(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.server.url) as client:
        answer = await client.post("/api/alerts/x/ack", headers={"Authorization": "Bearer x"})
    assert answer.status_code == 403  # no token configured: writes are off, not open
    assert "writes are disabled" in answer.json()["error"]
