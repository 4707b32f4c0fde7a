"""The daemon's own server over HTTPS (a test PKI made with ``openssl``): clients that
trust the CA get the API; plain HTTP gets nothing; with ``client_ca_file`` a client
without a certificate signed by that CA is refused; a key that does not match its
certificate is a config error naming both files."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

from monitor.errors import ConfigError
from monitor.web.server import Health, Server
from tests.support import builders
from tests.support.tls import TestPki, test_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return test_pki(tmp_path_factory.mktemp("pki"))


def _server(tls: dict[str, str]) -> Server:
    config = builders.config(
        builders.service("svc", availability=["up"]),
        server={"listen": "127.0.0.1:0", "tls": tls},
    )
    return Server(config, CollectorRegistry(), list, lambda: Health(True, {}))


@pytest.fixture
async def https(pki: TestPki) -> AsyncIterator[Server]:
    server = _server({"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_the_api_over_https_for_clients_that_trust_the_ca(
    https: Server, pki: TestPki
) -> None:
    assert https.url.startswith("https://127.0.0.1:")
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=pki.ca)) as client:
        answer = await client.get(f"{https.url}/healthz")
    assert answer.status_code == 200
    plain = https.url.replace("https://", "http://")
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(f"{plain}/healthz")
    untrusting = ssl.create_default_context(cafile=pki.other_ca)
    async with httpx.AsyncClient(verify=untrusting) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"{https.url}/healthz")


async def test_mutual_tls_refuses_a_client_without_a_certificate(pki: TestPki) -> None:
    server = _server(
        {
            "cert_file": str(pki.server_cert),
            "key_file": str(pki.server_key),
            "client_ca_file": str(pki.ca),
        }
    )
    await server.start()
    try:
        anonymous = ssl.create_default_context(cafile=pki.ca)
        async with httpx.AsyncClient(verify=anonymous) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(f"{server.url}/healthz")
        known = ssl.create_default_context(cafile=pki.ca)
        known.load_cert_chain(pki.client_cert, pki.client_key)
        async with httpx.AsyncClient(verify=known) as client:
            answer = await client.get(f"{server.url}/healthz")
        assert answer.status_code == 200
    finally:
        await server.stop()


async def test_a_key_that_does_not_match_is_a_config_error(pki: TestPki) -> None:
    server = _server({"cert_file": str(pki.server_cert), "key_file": str(pki.client_key)})
    with pytest.raises(ConfigError, match=r"cannot use cert_file .* with key_file"):
        await server.start()
    await server.stop()
