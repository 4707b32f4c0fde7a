"""What only the PostgreSQL store has to show, on a real server: several writers on one
database, schema versions, and a server that goes away and comes back (the contract
itself runs on it in test_contract.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

import psycopg
import pytest

from monitor.errors import StoreError
from monitor.results import Result, ServiceMinute
from monitor.sla.counts import Rollup
from monitor.sla.minutes import ProbeId
from monitor.store.base import DecideMinute
from monitor.store.pg_migrations import SCHEMA_VERSION
from monitor.store.postgres import PostgresStore, redacted
from probes.base import Outcome
from tests.monitor.store.test_contract import M0, T0, counts_of, expected_counts, result, write
from tests.support.postgres import OwnPostgres, database, own_server


async def opened(url: str) -> PostgresStore:
    store = PostgresStore(url)
    await store.open()
    return store


async def test_two_stores_on_one_database_see_each_others_writes(postgres_url: str) -> None:
    first, second = await opened(postgres_url), await opened(postgres_url)
    try:
        await write(first, [result(T0 + 1, request_id="from-a")])
        await write(second, [result(T0 + 2, request_id="from-b", probe="p2")])
        for store in (first, second):
            got = await store.results(T0, T0 + 60)
            assert [r.request_id for r in got] == ["from-a", "from-b"]
        window = await first.add_maintenance("online", T0, T0 + 600, "upgrade", T0 - 86400, "ops")
        assert [w.id for w in await second.list_maintenance()] == [window.id]
        assert await second.maintenance_version() == await first.maintenance_version() == 1
    finally:
        await first.aclose()
        await second.aclose()


async def test_writers_racing_on_the_same_minutes_lose_no_count(postgres_url: str) -> None:
    """Each write reads, merges and writes back the minute's rollup: two daemons doing so
    at once must add up, not overwrite each other."""
    stores = [await opened(postgres_url) for _ in range(3)]
    batches = [
        [result(T0 + 1 + i * 0.01 + n, 0.1 * (1 + n % 30), probe="p1") for n in range(40)]
        for i in range(30)
    ]
    try:
        await asyncio.gather(
            *(write(stores[i % len(stores)], batch) for i, batch in enumerate(batches))
        )
        everything = [r for batch in batches for r in batch]
        assert counts_of(await stores[0].rollups(M0, M0 + 5)) == expected_counts(everything)
        assert len(await stores[1].results(T0, T0 + 300)) == len(everything)
    finally:
        for store in stores:
            await store.aclose()


async def test_daemons_starting_together_migrate_once(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    for store in stores:
        await store.aclose()
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute("SELECT value FROM counters WHERE name = 'schema version'")
        assert await cur.fetchone() == (SCHEMA_VERSION,)
        cur = await conn.execute("SELECT version FROM schema_history ORDER BY version")
        assert [v for (v,) in await cur.fetchall()] == list(range(2, SCHEMA_VERSION + 1))


async def test_a_database_of_a_newer_version_is_refused(postgres_url: str) -> None:
    await (await opened(postgres_url)).aclose()  # made at the current version
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("UPDATE counters SET value = 99 WHERE name = 'schema version'")
    store = PostgresStore(postgres_url)
    with pytest.raises(StoreError, match="schema version 99, newer than"):
        await store.open()
    await store.aclose()


async def test_a_refused_connection_is_a_store_error_without_the_password() -> None:
    store = PostgresStore("postgresql://sla:s3cret-word@127.0.0.1:1/sla")
    with pytest.raises(StoreError) as excinfo:
        await store.open()
    assert "s3cret-word" not in str(excinfo.value)
    assert "postgresql://sla@127.0.0.1:1/sla" in str(excinfo.value)
    assert redacted("host=db user=u password=x dbname=d") == "postgresql://u@db/d"


@pytest.fixture
def own() -> Iterator[OwnPostgres]:
    with own_server() as server:
        yield server


async def test_a_server_restart_fails_writes_then_loses_nothing_once_back(
    own: OwnPostgres,
) -> None:
    with database(own.url) as url:
        store = await opened(url)
        try:
            await write(store, [result(T0 + 1, request_id="before")])
            own.stop()
            held = [result(T0 + 2, 3.0, Outcome.TIMEOUT, request_id="during")]
            with pytest.raises(StoreError, match=r"cannot (write to|connect to) the store"):
                await write(store, held)
            own.start()
            await write(store, held)  # what the collector does: the same batch, again
            got = await store.results(T0, T0 + 60)
            assert [r.request_id for r in got] == ["before", "during"]
            [(_, minute)] = await store.rollups(M0, M0 + 1)
            assert (minute.attempts, minute.ok) == (2, 1)
        finally:
            await store.aclose()


async def test_a_minute_is_decided_once_whoever_asks_first(postgres_url: str) -> None:
    """Two daemons deciding the same minute at once: one decision is stored and both get
    it; each location's counts are what each wrote; a result written afterwards is late."""
    stores = [await opened(postgres_url), await opened(postgres_url)]
    for store in stores:
        store.share_minutes()
    seen: list[dict[str, dict[tuple[str, str], tuple[int, int]]]] = []

    def decider(label: str) -> DecideMinute:
        def decide(
            pooled: Mapping[ProbeId, Rollup], by_location: Mapping[str, Mapping[ProbeId, Rollup]]
        ) -> list[ServiceMinute]:
            seen.append(
                {
                    loc: {k: (r.attempts, r.ok) for k, r in v.items()}
                    for loc, v in by_location.items()
                }
            )
            return [ServiceMinute("online", M0, None, {"avail": label}, {"avail": ["a"]})]

        return decide

    try:
        a = [
            Result("online", "p1", "http", T0 + i, 0.1, Outcome.TIMEOUT, location="a")
            for i in range(3)
        ]
        b = [
            Result("online", "p1", "http", T0 + 10 + i, 0.1, Outcome.OK, location="b")
            for i in range(4)
        ]
        await write(stores[0], a)
        await write(stores[1], b)
        first, second = await asyncio.gather(
            stores[0].decide_minute(M0, decider("from-0")),
            stores[1].decide_minute(M0, decider("from-1")),
        )
        assert sorted([first.first, second.first]) == [False, True]
        assert first.decisions == second.decisions  # the one stored, for both
        assert seen == [{"a": {("online", "p1"): (3, 0)}, "b": {("online", "p1"): (4, 4)}}]
        assert first.rollups[("online", "p1")].attempts == 7  # every location pooled
        # Written after the decision: kept raw, counted late, not in the minute's rollup.
        await write(
            stores[0], [Result("online", "p1", "http", T0 + 30, 0.1, Outcome.OK, location="a")]
        )
        assert stores[0].take_late() == {("online", "p1"): 1}
        assert stores[0].take_late() == {}
        [(_, rollup)] = await stores[1].rollups(M0, M0 + 1)
        assert rollup.attempts == 7
        assert len(await stores[1].results(T0, T0 + 60)) == 8
        counts = await stores[1].location_counts(M0, M0 + 1)
        assert {loc: c[("online", "p1")].attempts for loc, c in counts[M0].items()} == {
            "a": 3,
            "b": 4,
        }
    finally:
        for store in stores:
            await store.aclose()
