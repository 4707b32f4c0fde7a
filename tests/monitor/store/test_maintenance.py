"""Maintenance windows: one contract suite over every Store, plus SQLite sharing a file."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.sla.eligibility import MaintenanceWindow
from monitor.store import SqliteStore, Store
from tests.fakes import FakeClock

T0 = 1_795_000_000.0  # FakeClock's default start
HOUR = 3600.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


async def add(
    store: Store, start: float, service: str = "online", reason: str = "upgrade"
) -> MaintenanceWindow:
    """A one-hour window announced a day ahead."""
    return await store.add_maintenance(service, start, start + HOUR, reason, start - 86400, "ann")


# --- the contract ---------------------------------------------------------------------------


async def test_add_returns_the_stored_window(store: Store) -> None:
    window = await store.add_maintenance(
        "online", T0 + HOUR, T0 + 2 * HOUR, "kernel upgrade (é)", T0, "alice"
    )
    assert window == MaintenanceWindow(
        window.id, "online", T0 + HOUR, T0 + 2 * HOUR, "kernel upgrade (é)", T0, "store"
    )
    assert window.id.isdigit()
    assert await store.list_maintenance() == [window]


async def test_ids_are_distinct_text(store: Store) -> None:
    ids = [(await add(store, T0 + i * HOUR)).id for i in range(3)]
    assert len(set(ids)) == 3
    assert all(isinstance(i, str) for i in ids)


async def test_list_is_ordered_by_start_whatever_the_insertion_order(store: Store) -> None:
    late = await add(store, T0 + 5 * HOUR, reason="late")
    early = await add(store, T0 + 1 * HOUR, reason="early", service="integrated")
    middle = await add(store, T0 + 3 * HOUR, reason="middle")
    assert [w.reason for w in await store.list_maintenance()] == ["early", "middle", "late"]
    assert await store.list_maintenance() == [early, middle, late]


async def test_remove_hides_the_window_unless_removed_ones_are_asked_for(store: Store) -> None:
    kept = await add(store, T0 + HOUR)
    gone = await add(store, T0 + 2 * HOUR)
    assert await store.remove_maintenance(gone.id, "bob") is True
    assert await store.list_maintenance() == [kept]
    assert await store.list_maintenance(include_removed=True) == [kept, gone]


async def test_remove_twice_or_unknown_ids_answer_false(store: Store) -> None:
    window = await add(store, T0 + HOUR)
    assert await store.remove_maintenance(window.id, "bob") is True
    assert await store.remove_maintenance(window.id, "carol") is False
    for unknown in ("999", "cfg-1", "", "abc", "-1", "1.0", "9" * 40, "٣"):
        assert await store.remove_maintenance(unknown, "bob") is False, unknown
    assert await store.list_maintenance(include_removed=True) == [window]


async def test_records_keep_the_audit_trail(store: Store, clock: FakeClock) -> None:
    window = await store.add_maintenance("online", T0 + HOUR, T0 + 2 * HOUR, "r", T0 - 60, "ann")
    clock.advance(120)
    assert await store.remove_maintenance(window.id, "bob")
    clock.advance(60)
    assert await store.remove_maintenance(window.id, "carol") is False  # first removal stands
    assert await store.maintenance_records() == []
    [record] = await store.maintenance_records(include_removed=True)
    assert record.window == window
    assert (record.created_by, record.created_at) == ("ann", T0)
    assert (record.removed_by, record.removed_at, record.removed) == ("bob", T0 + 120, True)


async def test_version_changes_on_every_add_and_remove_only(store: Store) -> None:
    versions = [await store.maintenance_version()]
    first = await add(store, T0 + HOUR)
    versions.append(await store.maintenance_version())
    await add(store, T0 + 2 * HOUR)
    versions.append(await store.maintenance_version())
    assert await store.remove_maintenance(first.id, "bob")
    versions.append(await store.maintenance_version())
    assert len(set(versions)) == len(versions), versions
    # Reads and refused removals change nothing.
    await store.list_maintenance(include_removed=True)
    assert not await store.remove_maintenance(first.id, "bob")
    assert not await store.remove_maintenance("999", "bob")
    assert await store.maintenance_version() == versions[-1]


@pytest.mark.parametrize(
    ("start", "end", "announced_at"),
    [
        (T0, T0, T0),  # empty
        (T0, T0 - 1, T0),  # backwards
        (float("nan"), T0, T0),
        (T0, float("inf"), T0),
        (T0, T0 + 1, float("nan")),
    ],
)
async def test_a_window_that_does_not_end_after_it_starts_is_refused(
    store: Store, start: float, end: float, announced_at: float
) -> None:
    version = await store.maintenance_version()
    with pytest.raises(ValueError, match="maintenance"):
        await store.add_maintenance("online", start, end, "r", announced_at, "ann")
    assert await store.list_maintenance(include_removed=True) == []
    assert await store.maintenance_version() == version


async def test_an_empty_store_has_no_windows(store: Store) -> None:
    assert await store.list_maintenance() == []
    assert await store.list_maintenance(include_removed=True) == []
    assert await store.maintenance_records(include_removed=True) == []
    assert isinstance(await store.maintenance_version(), int)


# --- SQLite: the file outlives processes and is shared by the CLI and the daemon ------------


@contextlib.asynccontextmanager
async def opened(path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(path)
    await store.open()
    try:
        yield store
    finally:
        await store.aclose()


async def test_sqlite_windows_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sla.sqlite3"
    async with opened(path) as store:
        kept = await add(store, T0 + HOUR)
        gone = await add(store, T0 + 2 * HOUR)
        assert await store.remove_maintenance(gone.id, "bob")
        version = await store.maintenance_version()
    async with opened(path) as store:
        assert await store.list_maintenance() == [kept]
        assert await store.list_maintenance(include_removed=True) == [kept, gone]
        assert await store.maintenance_version() == version
        assert await store.remove_maintenance(gone.id, "bob") is False
        # Ids are not reused after a reopen.
        assert (await add(store, T0)).id not in {kept.id, gone.id}


async def test_sqlite_a_second_store_on_the_file_sees_the_first_ones_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sla.sqlite3"
    async with opened(path) as daemon, opened(path) as cli:
        before = await daemon.maintenance_version()
        window = await add(cli, T0 + HOUR)
        assert await daemon.maintenance_version() != before
        assert await daemon.list_maintenance() == [window]
        after_add = await daemon.maintenance_version()
        assert await cli.remove_maintenance(window.id, "bob")
        assert await daemon.maintenance_version() != after_add
        assert await daemon.list_maintenance() == []
        # ... and the other way round: both write the same file.
        assert await daemon.remove_maintenance(window.id, "bob") is False
        other = await add(daemon, T0 + 2 * HOUR)
        assert await cli.list_maintenance(include_removed=True) == [window, other]


async def test_sqlite_version_follows_writes_from_outside_the_store(tmp_path: Path) -> None:
    """The version is kept by triggers, so even a hand edit with sqlite3 reloads the daemon."""
    path = tmp_path / "sla.sqlite3"
    async with opened(path) as store:
        window = await add(store, T0 + HOUR)
        before = await store.maintenance_version()
        with contextlib.closing(sqlite3.connect(path)) as other:
            other.execute("UPDATE maintenance SET reason = 'fixed' WHERE id = ?", (window.id,))
            other.commit()
        assert await store.maintenance_version() != before
        assert [w.reason for w in await store.list_maintenance()] == ["fixed"]


async def test_sqlite_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "sla.sqlite3"
    async with opened(path) as store:
        # Another process holds the write lock for a moment, as the CLI or daemon may.
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO counters (name, value) VALUES ('other', 1)")
            loop = asyncio.get_running_loop()
            loop.call_later(0.3, other.execute, "COMMIT")
            started = loop.time()
            window = await add(store, T0 + HOUR)
            waited_s = loop.time() - started
        finally:
            other.close()
        assert waited_s >= 0.25  # it did wait for the lock
        assert await store.list_maintenance() == [window]
