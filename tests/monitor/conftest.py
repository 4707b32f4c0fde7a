"""Fixtures shared by the store-level tests: every Store implementation, opened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.clock import Clock, SystemClock
from monitor.store import MemoryStore, SqliteStore, Store
from monitor.store.postgres import PostgresStore


@pytest.fixture
def clock() -> Clock:
    """The store's clock; a module overrides it with a fake one where times matter."""
    return SystemClock()


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Store]:
    """An open store of each implementation (SQLite in a file of its own, PostgreSQL in a
    database of its own)."""
    impl: Store
    if request.param == "sqlite":
        impl = SqliteStore(tmp_path / "store" / "sla.sqlite3", clock=clock)
    elif request.param == "postgres":
        impl = PostgresStore(request.getfixturevalue("postgres_url"), clock=clock)
    else:
        impl = MemoryStore(clock=clock)
    await impl.open()
    try:
        yield impl
    finally:
        await impl.aclose()
