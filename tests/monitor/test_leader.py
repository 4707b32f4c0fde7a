"""Leadership by a lease in the store: one leader, a clean hand-over, and a leader that
cannot renew stops acting before its lease could go to another."""

from __future__ import annotations

import asyncio

from monitor.errors import StoreError
from monitor.leader import LEADER, Leadership
from monitor.store import MemoryStore


class Recorder:
    def __init__(self) -> None:
        self.changes: list[bool] = []

    async def __call__(self, leading: bool) -> None:
        self.changes.append(leading)


async def test_one_leads_and_a_clean_stop_hands_over_at_the_next_try() -> None:
    store = MemoryStore()
    seen_a, seen_b = Recorder(), Recorder()
    a = Leadership("a", store, 3.0, seen_a)
    b = Leadership("b", store, 3.0, seen_b)
    assert await a.try_once()
    assert not await b.try_once()
    assert a.leading()
    assert not b.leading()
    assert await a.try_once()  # a renewal
    await a.release()
    assert not a.leading()
    assert await b.try_once()
    assert not await a.try_once()
    assert seen_a.changes == [True, False]
    assert seen_b.changes == [True]
    assert (await store.lease(LEADER) or ("",))[0] == "b"


class Unreachable(MemoryStore):
    """A store whose lease cannot be renewed (the database is away)."""

    down = False

    async def take_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        if self.down:
            raise StoreError("connection refused (injected)")
        return await super().take_lease(name, holder, ttl_s)


async def test_a_leader_that_cannot_renew_stops_before_its_lease_ends() -> None:
    store = Unreachable()
    a = Leadership("a", store, 3.0)  # a 2 s term
    assert await a.try_once()
    store.down = True
    assert await a.try_once()  # the lease it holds is still good
    await asyncio.sleep(a.term_s * 5 / 6 + 0.05)
    assert not await a.try_once()
    # The store still shows a's lease: a stopped acting first, never both at once.
    assert (await store.lease(LEADER) or ("",))[0] == "a"
    store.down = False
    b = Leadership("b", store, 3.0)
    assert not await b.try_once()
    await asyncio.sleep(a.term_s / 6 + 0.05)
    assert await b.try_once()


async def test_a_daemon_alone_on_its_store_leads_without_a_lease() -> None:
    alone = Leadership("solo", None, 30.0)
    assert alone.leading()
    assert await alone.try_once()
    await alone.release()
    assert alone.leading()


async def test_taking_over_catches_up_before_any_duty_runs() -> None:
    store = MemoryStore()
    seen: list[bool] = []
    b: Leadership

    async def catch_up(leading: bool) -> None:
        seen.append(b.leading())  # what a duty checking leadership sees meanwhile
        await asyncio.sleep(0)

    b = Leadership("b", store, 3.0, catch_up)
    assert await b.try_once()
    assert seen == [False]  # no duty ran on the stale view while catching up
    assert b.leading()
