"""Shared fixtures: real brokers on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor.embedded_broker import EmbeddedBroker
from tests.support.brokers import Mosquitto, free_port, running_mosquitto
from tests.support.postgres import database, postgres_server


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto (set_tcp_nodelay true) on a free loopback port."""
    with running_mosquitto(tmp_path) as broker:
        yield broker


@pytest.fixture
async def embedded_broker() -> AsyncIterator[EmbeddedBroker]:
    """The embedded amqtt broker on a free loopback port, in the test's event loop."""
    async with EmbeddedBroker("127.0.0.1", free_port()) as broker:
        yield broker


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[str]:
    """A running PostgreSQL for the session: the machine's, or one started here."""
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """A database of this test's own on the session's PostgreSQL server."""
    with database(postgres_admin) as url:
        yield url
