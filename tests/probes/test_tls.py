"""TLS on real parts with a test PKI made by ``openssl``: an MQTT probe over a real
Mosquitto TLS listener that requires client certificates, and an HTTPS probe against a
server that requires one; the wrong CA, or no client certificate, is refused."""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError

from probes.base import Outcome
from probes.http import HttpProbe
from probes.mqtt import MqttConnection, MqttProbe
from probes.settings import HttpProbeSettings, MqttBrokerSettings, MqttProbeSettings
from probes.tls import TlsSettings
from tests.probes.support import responder
from tests.support.brokers import Mosquitto, free_port
from tests.support.tls import TestPki, test_pki

TOPIC = "tls/request"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_mosquitto(tmp_path: Path, pki: TestPki) -> AsyncIterator[Mosquitto]:
    broker = Mosquitto(
        port=free_port(),
        workdir=tmp_path,
        tls=(free_port(), pki.ca, pki.server_cert, pki.server_key),
    )
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


def _client_tls(pki: TestPki, *, ca: Path | None = None, client: bool = True) -> TlsSettings:
    return TlsSettings(
        ca_file=str(ca or pki.ca),
        cert_file=str(pki.client_cert) if client else None,
        key_file=str(pki.client_key) if client else None,
    )


async def test_mqtt_probe_over_tls_with_a_client_certificate(
    tls_mosquitto: Mosquitto, pki: TestPki
) -> None:
    assert tls_mosquitto.tls is not None
    settings = MqttBrokerSettings(port=tls_mosquitto.tls[0], tls=_client_tls(pki))
    probe_settings = MqttProbeSettings(kind="mqtt", name="p", request_topic=TOPIC, timeout=2)
    # The responder answers on the plain listener of the same broker.
    async with responder(tls_mosquitto.port, TOPIC) as seen, MqttConnection(settings) as connection:
        await seen.connected.wait()
        assert await connection.wait_connected(5.0)
        observation = await MqttProbe(probe_settings, connection).observe()
    assert observation.outcome is Outcome.OK, observation.detail
    assert len(seen.requests) == 1


# paho-mqtt 2.2 (`_ssl_wrap_socket`) does not close the socket whose handshake failed; the
# garbage collector does, with a ResourceWarning this test would otherwise turn into an error.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("wrong", ["other CA", "no client certificate"])
async def test_mqtt_over_tls_refuses_the_wrong_ca_and_a_missing_client_certificate(
    tls_mosquitto: Mosquitto, pki: TestPki, wrong: str
) -> None:
    assert tls_mosquitto.tls is not None
    tls = (
        _client_tls(pki, ca=pki.other_ca) if wrong == "other CA" else _client_tls(pki, client=False)
    )
    settings = MqttBrokerSettings(
        port=tls_mosquitto.tls[0], tls=tls, reconnect_min=0.1, reconnect_max=0.2
    )
    probe_settings = MqttProbeSettings(kind="mqtt", name="p", request_topic=TOPIC, timeout=1)
    async with MqttConnection(settings) as connection:
        assert not await connection.wait_connected(2.0)
        observation = await MqttProbe(probe_settings, connection).observe()
    assert observation.outcome is Outcome.CONNECT


@pytest.fixture
async def https_port(pki: TestPki) -> AsyncIterator[int]:
    """An HTTPS server requiring a client certificate signed by the test CA; it answers
    with the client certificate's subject and the secret header it got."""

    async def handle(request: web.Request) -> web.Response:
        transport = request.transport
        assert transport is not None
        peer = transport.get_extra_info("peercert")
        subject = dict(x[0] for x in peer["subject"]) if peer else {}
        secret = request.headers.get("Authorization", "")
        return web.Response(text=f"ok {subject.get('commonName')} {secret}")

    app = web.Application()
    app.router.add_get("/x", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=pki.server_context()).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def _observe(settings: HttpProbeSettings) -> tuple[Outcome, str]:
    timeout = aiohttp.ClientTimeout(total=None, ceil_threshold=math.inf)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        observation = await HttpProbe(settings, session).observe()
    return observation.outcome, observation.detail


async def test_https_probe_with_a_custom_ca_a_client_certificate_and_a_secret_header(
    https_port: int, pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARGET_TOKEN", "Bearer from-the-environment")
    settings = HttpProbeSettings(
        kind="http",
        name="p",
        url=f"https://127.0.0.1:{https_port}/x",
        tls=_client_tls(pki),
        headers_env={"Authorization": "TARGET_TOKEN"},
        expect_body=f"ok client {os.environ['TARGET_TOKEN']}",
    )
    assert await _observe(settings) == (Outcome.OK, "")


@pytest.mark.parametrize("wrong", ["system CAs", "other CA", "no client certificate"])
async def test_https_probe_refuses_an_untrusted_server_and_is_refused_without_a_certificate(
    https_port: int, pki: TestPki, wrong: str
) -> None:
    tls = {
        "system CAs": None,
        "other CA": _client_tls(pki, ca=pki.other_ca),
        "no client certificate": _client_tls(pki, client=False),
    }[wrong]
    settings = HttpProbeSettings(
        kind="http", name="p", url=f"https://127.0.0.1:{https_port}/x", tls=tls, timeout=2
    )
    outcome, detail = await _observe(settings)
    assert outcome in (Outcome.CONNECT, Outcome.PROTOCOL), detail
    if wrong != "no client certificate":
        assert "certificate verify failed" in detail


def test_tls_settings_name_a_missing_file_and_an_unpaired_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ca_file: no file at"):
        TlsSettings(ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(ValidationError, match="cert_file and key_file together"):
        TlsSettings(cert_file=str(tmp_path / "x.pem"))
