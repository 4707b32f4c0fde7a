"""IntegratedProbe: HTTP and MQTT steps timed as one answer, against real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from probes.base import Outcome
from probes.integrated import IntegratedProbe
from probes.registry import ProbeResources
from probes.settings import IntegratedProbeSettings
from tests.probes.conftest import broker_settings
from tests.probes.support import Responder, delayed, eventually, http_server, responder
from tests.support.brokers import Mosquitto

pytestmark = pytest.mark.timeout(60)

TOPIC = "test/integrated"


@pytest.fixture
def request_ids() -> list[str]:
    return []


@pytest.fixture
async def base_url(request_ids: list[str]) -> AsyncIterator[str]:
    async def delay(request: web.Request) -> web.Response:
        request_ids.append(request.headers["X-Request-Id"])
        await asyncio.sleep(int(request.match_info["ms"]) / 1000)
        return web.Response(text="ok")

    async def status(request: web.Request) -> web.Response:
        request_ids.append(request.headers["X-Request-Id"])
        return web.Response(status=int(request.match_info["code"]))

    app = web.Application()
    app.router.add_get("/delay/{ms}", delay)
    app.router.add_get("/status/{code}", status)
    async with http_server(app) as url:
        yield url


@pytest.fixture
async def mqtt_responder(mosquitto: Mosquitto) -> AsyncIterator[Responder]:
    async with responder(mosquitto.port, TOPIC, delayed(0.1)) as seen:
        yield seen


@pytest.fixture
async def resources(mosquitto: Mosquitto) -> AsyncIterator[ProbeResources]:
    resources = ProbeResources({"default": broker_settings(mosquitto.port)})
    yield resources
    await resources.aclose()


def integrated(resources: ProbeResources, **fields: Any) -> IntegratedProbe:
    settings = IntegratedProbeSettings.model_validate(
        {"kind": "integrated", "name": "career", **fields}
    )
    return IntegratedProbe(settings, resources)


def three_steps(base_url: str) -> list[dict[str, Any]]:
    """Three steps of 0.1 s each: HTTP, MQTT (the responder's delay), HTTP."""
    return [
        {"kind": "http", "name": "identity", "url": f"{base_url}/delay/100"},
        {"kind": "mqtt", "name": "register", "request_topic": TOPIC},
        {"kind": "http", "url": f"{base_url}/delay/100"},
    ]


async def test_sequential_latency_is_the_sum(
    base_url: str,
    mqtt_responder: Responder,
    resources: ProbeResources,
    request_ids: list[str],
) -> None:
    probe = integrated(resources, steps=three_steps(base_url), timeout=2.0)
    observation = await probe.observe()
    await probe.aclose()
    assert observation.outcome is Outcome.OK, observation.detail
    assert 0.3 <= observation.latency_s < 0.38
    # One correlation id joins the steps: <id>-<step number>.
    mqtt_ids = [r.id for r in mqtt_responder.requests]
    assert request_ids + mqtt_ids == [
        f"{observation.request_id}-1",
        f"{observation.request_id}-3",
        f"{observation.request_id}-2",
    ]


async def test_parallel_latency_is_the_max(
    base_url: str, mqtt_responder: Responder, resources: ProbeResources
) -> None:
    probe = integrated(resources, mode="parallel", steps=three_steps(base_url), timeout=2.0)
    observation = await probe.observe()
    assert observation.outcome is Outcome.OK, observation.detail
    assert 0.1 <= observation.latency_s < 0.17


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
async def test_failure_names_the_step(
    base_url: str, mqtt_responder: Responder, resources: ProbeResources, mode: str
) -> None:
    steps = [
        *three_steps(base_url)[:2],
        {"kind": "http", "name": "career", "url": f"{base_url}/status/503"},
    ]
    observation = await integrated(resources, mode=mode, steps=steps, timeout=2.0).observe()
    assert observation.outcome is Outcome.STATUS
    assert observation.detail == "step 'career': status 503"


async def test_parallel_failure_does_not_wait_for_the_others(
    base_url: str, resources: ProbeResources
) -> None:
    steps = [
        {"kind": "http", "url": f"{base_url}/delay/1000"},
        {"kind": "http", "url": f"{base_url}/status/500"},
    ]
    observation = await integrated(resources, mode="parallel", steps=steps, timeout=2.0).observe()
    assert observation.outcome is Outcome.STATUS
    assert observation.detail == "step 2: status 500"
    assert observation.latency_s < 0.1


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
async def test_timeout_spans_all_steps(
    base_url: str, mqtt_responder: Responder, resources: ProbeResources, mode: str
) -> None:
    steps = three_steps(base_url)
    if mode == "parallel":
        steps[1] = {"kind": "http", "name": "slow", "url": f"{base_url}/delay/1000"}
    observation = await integrated(resources, mode=mode, steps=steps, timeout=0.25).observe()
    assert observation.outcome is Outcome.TIMEOUT
    assert observation.latency_s == pytest.approx(0.25, abs=0.03)
    expected = "step 3" if mode == "sequential" else "step 'slow'"
    assert observation.detail.startswith(f"{expected}: ")


async def test_broker_down_is_a_connect_failure(
    mosquitto: Mosquitto, base_url: str, resources: ProbeResources
) -> None:
    probe = integrated(resources, steps=three_steps(base_url), timeout=1.0)
    await resources.mqtt("default")
    await asyncio.to_thread(mosquitto.stop)
    connection = await resources.mqtt("default")
    await eventually(lambda: not connection.connected)
    observation = await probe.observe()
    assert observation.outcome is Outcome.CONNECT
    assert observation.detail.startswith("step 'register': ")
