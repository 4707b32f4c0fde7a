"""One contract suite run against every Store implementation, plus SQLite-only checks."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

import pytest

from monitor.errors import StoreError
from monitor.results import Result, ServiceMinute
from monitor.sla.counts import Rollup, bucket_index, count_result
from monitor.store import MemoryStore, RollupKey, SqliteStore, Store
from monitor.store.records import (
    Alert,
    AlertStatus,
    ConfigUse,
    DayDigest,
    InstanceRecord,
    RunMarks,
)
from probes.base import Outcome
from tests.fakes import FakeClock

THRESHOLDS = (1.0, 2.0)
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a whole minute
M0 = int(T0 // 60)


def result(
    started_at: float,
    latency_s: float = 0.2,
    outcome: Outcome = Outcome.OK,
    service: str = "online",
    probe: str = "p1",
    detail: str = "",
    request_id: str = "",
) -> Result:
    """A result with sensible defaults."""
    return Result(service, probe, "mqtt", started_at, latency_s, outcome, detail, request_id)


def deltas_of(results: Iterable[Result]) -> dict[RollupKey, Rollup]:
    """Per-minute rollup deltas, as the collector builds them."""
    deltas: dict[RollupKey, Rollup] = {}
    for r in results:
        key = (r.service, r.probe, r.minute)
        deltas.setdefault(key, Rollup()).add(r.ok, r.outcome.value, r.latency_s, THRESHOLDS)
    return deltas


async def write(store: Store, results: Sequence[Result]) -> None:
    """Write results with their deltas in one batch."""
    await store.write_batch(results, deltas_of(results))


def expected_counts(results: Iterable[Result]) -> dict[RollupKey, dict[str, object]]:
    """Per (service, probe, minute): the counts a rollup must hold, counted directly."""
    grouped: dict[RollupKey, list[Result]] = {}
    for r in results:
        grouped.setdefault((r.service, r.probe, int(r.started_at // 60)), []).append(r)
    return {
        key: {
            "attempts": len(rs),
            "ok": sum(1 for r in rs if r.outcome is Outcome.OK),
            "failures": dict(Counter(r.outcome.value for r in rs if r.outcome is not Outcome.OK)),
            "good": {
                t: sum(1 for r in rs if r.outcome is Outcome.OK and r.latency_s <= t)
                for t in THRESHOLDS
            },
            "buckets": dict(
                Counter(bucket_index(r.latency_s) for r in rs if r.outcome is Outcome.OK)
            ),
        }
        for key, rs in grouped.items()
    }


def counts_of(rollups: list[tuple[RollupKey, Rollup]]) -> dict[RollupKey, dict[str, object]]:
    """The same view of what a store returned."""
    return {
        key: {
            "attempts": r.attempts,
            "ok": r.ok,
            "failures": r.failures,
            "good": {t: r.good_within(t) for t in THRESHOLDS},
            "buckets": r.buckets,
        }
        for key, r in rollups
    }


# --- the contract ---------------------------------------------------------------------------


async def test_write_batch_then_rollups_returns_summed_deltas(store: Store) -> None:
    results = [
        result(T0 + 1, 0.5),
        result(T0 + 2, 1.0),  # exactly on the 1 s threshold: within
        result(T0 + 3, 1.5),
        result(T0 + 4, 5.0, Outcome.TIMEOUT, detail="no reply in 5 s"),
        result(T0 + 5, 0.01, Outcome.STATUS, detail="HTTP 503"),  # fast failure: still bad
        result(T0 + 61, 2.5),
        result(T0 + 62, 0.3, probe="p2"),
        result(T0 + 63, 0.4, service="integrated", probe="career"),
    ]
    await write(store, results)
    rollups = await store.rollups(M0, M0 + 10)
    assert counts_of(rollups) == expected_counts(results)
    assert [key for key, _ in rollups] == [
        ("online", "p1", M0),
        ("integrated", "career", M0 + 1),
        ("online", "p1", M0 + 1),
        ("online", "p2", M0 + 1),
    ]
    first = dict(rollups)[("online", "p1", M0)]
    assert (first.good_within(1.0), first.good_within(2.0)) == (2, 3)
    assert first.failures == {"timeout": 1, "status": 1}


async def test_rollups_at_reads_scattered_minutes_like_ranges_do(store: Store) -> None:
    results = [result(T0 + 60 * m + 1, 0.1 * (m + 1)) for m in range(12)]
    results.append(result(T0 + 60 * 5 + 2, 0.3, probe="p2"))
    await write(store, results)
    scattered = [M0 + 11, M0, M0 + 5, M0 + 5, M0 + 40]  # unordered, repeated, one empty
    expected = []
    for minute in sorted(set(scattered)):
        expected += await store.rollups(minute, minute + 1)
    got = await store.rollups_at(scattered)
    assert [key for key, _ in got] == [key for key, _ in expected]
    assert counts_of(got) == counts_of(expected)
    assert len(got) == 4  # p1 at M0, M0+5, M0+11 and p2 at M0+5
    assert await store.rollups_at([]) == []


async def test_two_batches_touching_the_same_minute_add_up(store: Store) -> None:
    first = [result(T0 + 1, 0.5), result(T0 + 2, 1.5), result(T0 + 70, 0.2)]
    second = [result(T0 + 30, 3.0), result(T0 + 31, 6.0, Outcome.TIMEOUT), result(T0 + 32, 0.4)]
    await write(store, first)
    await write(store, second)
    rollups = await store.rollups(M0, M0 + 2)
    assert counts_of(rollups) == expected_counts(first + second)
    minute = dict(rollups)[("online", "p1", M0)]
    assert (minute.attempts, minute.ok, minute.good_within(1.0)) == (5, 4, 2)
    assert minute.latency_sum_s == pytest.approx(0.5 + 1.5 + 3.0 + 0.4)


async def test_rollup_range_is_half_open_and_filters_by_service(store: Store) -> None:
    results = [
        result(T0 + 60 * offset + 5, service=service)
        for offset in range(4)
        for service in ("online", "integrated")
    ]
    await write(store, results)
    keys = [key for key, _ in await store.rollups(M0 + 1, M0 + 3)]
    assert keys == [
        ("integrated", "p1", M0 + 1),
        ("online", "p1", M0 + 1),
        ("integrated", "p1", M0 + 2),
        ("online", "p1", M0 + 2),
    ]
    online = [key for key, _ in await store.rollups(M0, M0 + 4, service="online")]
    assert online == [("online", "p1", M0 + m) for m in range(4)]
    assert await store.rollups(M0 + 4, M0 + 10) == []
    assert await store.rollups(M0, M0 + 4, service="nobody") == []


async def test_returned_rollups_are_copies(store: Store) -> None:
    await write(store, [result(T0 + 1)])
    [(_, rollup)] = await store.rollups(M0, M0 + 1)
    rollup.merge(rollup.copy())  # a caller summing windows in place
    [(_, again)] = await store.rollups(M0, M0 + 1)
    assert again.attempts == 1


async def test_results_come_back_in_start_order_with_every_field(store: Store) -> None:
    later = [
        result(T0 + 30, 5.0, Outcome.TIMEOUT, detail="no reply in 5 s", request_id="r-30"),
        result(T0 + 10, 0.123456789, request_id="r-10"),
    ]
    earlier = [
        result(T0 + 20, 0.05, Outcome.CONNECT, "integrated", "career", "refused", "r-20"),
        result(T0 + 0.5, 0.07, Outcome.BODY, detail="missing 'ok' (é, ✓)", request_id="r-0"),
    ]
    await write(store, later)
    await write(store, earlier)
    got = await store.results(T0, T0 + 60)
    assert got == sorted(later + earlier, key=lambda r: r.started_at)
    assert all(type(r.outcome) is Outcome for r in got)
    assert [r.outcome for r in got] == [Outcome.BODY, Outcome.OK, Outcome.CONNECT, Outcome.TIMEOUT]


async def test_results_range_is_half_open_and_filters_by_service(store: Store) -> None:
    results = [
        result(T0 - 0.001, request_id="before"),
        result(T0, request_id="at-start"),
        result(T0 + 59.999, request_id="inside"),
        result(T0 + 60, request_id="at-end"),
        result(T0 + 1, service="integrated", request_id="other-service"),
    ]
    await write(store, results)
    got = await store.results(T0, T0 + 60, service="online")
    assert [r.request_id for r in got] == ["at-start", "inside"]
    everything = await store.results(T0, T0 + 60)
    assert [r.request_id for r in everything] == ["at-start", "other-service", "inside"]


async def test_prune_removes_only_older_rows_and_counts_them(store: Store) -> None:
    results = [result(T0 + 60 * m + 1, request_id=f"r{m}") for m in range(5)]
    await write(store, results)
    # Raw rows before minute 2 (2 rows) and rollups before minute 1 (1 row) go.
    deleted = await store.prune(raw_before=T0 + 120, rollups_before_minute=M0 + 1)
    assert deleted == 3
    assert [r.request_id for r in await store.results(0, T0 + 1e6)] == ["r2", "r3", "r4"]
    minutes = [key[2] for key, _ in await store.rollups(0, M0 + 100)]
    assert minutes == [M0 + 1, M0 + 2, M0 + 3, M0 + 4]
    assert await store.prune(raw_before=T0, rollups_before_minute=M0) == 0


def event(
    event_id: str, started_at: float, latency_s: float = 0.3, service: str = "online"
) -> Result:
    """A traffic event as the ingest path makes it."""
    return Result(service, "messages", "traffic", started_at, latency_s, Outcome.OK, "", event_id)


async def test_events_are_stored_once_per_service_and_id(store: Store) -> None:
    first = [event("a", T0 + 1), event("b", T0 + 2, 1.5), event("a", T0 + 3)]
    counted = [count_result(e.ok, e.outcome.value, e.latency_s, THRESHOLDS) for e in first]
    assert await store.write_events(first, counted) == [True, True, False]
    # A retry, an id of another service, a new id: only the last two are new.
    second = [event("b", T0 + 2, 1.5), event("b", T0 + 2, service="portal"), event("c", T0 + 61)]
    counted = [count_result(e.ok, e.outcome.value, e.latency_s, THRESHOLDS) for e in second]
    assert await store.write_events(second, counted) == [False, True, True]
    kept = [first[0], first[1], second[1], second[2]]
    assert counts_of(await store.rollups(M0, M0 + 5)) == expected_counts(kept)
    assert sorted(r.request_id for r in await store.results(T0, T0 + 120)) == ["a", "b", "b", "c"]


async def test_empty_store_answers_empty(store: Store) -> None:
    assert await store.rollups(0, 2**40) == []
    assert await store.results(0, 1e12) == []
    assert await store.prune(1e12, 2**40) == 0
    await store.write_batch([], {})
    assert await store.results(0, 1e12) == []


# --- SQLite only ----------------------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sla.sqlite3"


@contextlib.asynccontextmanager
async def opened(path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(path)
    await store.open()
    try:
        yield store
    finally:
        await store.aclose()


def count_rows(path: Path, table: str) -> int:
    """Rows of a table, read through a separate (synchronous) connection."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(count)


async def test_sqlite_data_survives_close_and_reopen(db_path: Path) -> None:
    results = [result(T0 + 1, 0.5, request_id="a"), result(T0 + 65, 4.0, Outcome.TIMEOUT)]
    async with opened(db_path) as store:
        await write(store, results)
    async with opened(db_path) as store:
        assert await store.results(T0, T0 + 120) == results
        assert counts_of(await store.rollups(M0, M0 + 2)) == expected_counts(results)
        await write(store, [result(T0 + 2, 1.5)])  # and rollups keep adding up
        assert counts_of(await store.rollups(M0, M0 + 2)) == expected_counts(
            [*results, result(T0 + 2, 1.5)]
        )


async def test_sqlite_is_in_wal_mode(db_path: Path) -> None:
    async with opened(db_path) as store:
        async with store.db.execute("PRAGMA journal_mode") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        assert row[0] == "wal"
    # WAL is a property of the file, so a fresh connection sees it too.
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_sqlite_keeps_ten_thousand_results_written_in_batches(db_path: Path) -> None:
    results = [
        result(
            T0 + i * 0.5,
            latency_s=0.001 * (1 + i % 3000),
            outcome=Outcome.OK if i % 97 else Outcome.TIMEOUT,
            probe=f"p{i % 4}",
            request_id=f"r{i}",
        )
        for i in range(10_000)
    ]
    async with opened(db_path) as store:
        for start in range(0, len(results), 1000):
            await write(store, results[start : start + 1000])
        got = await store.results(T0, T0 + 10_000)
        assert len(got) == 10_000
        assert {r.request_id for r in got} == {f"r{i}" for i in range(10_000)}
        rollups = await store.rollups(M0, M0 + 200)
        assert counts_of(rollups) == expected_counts(results)
        assert sum(r.attempts for _, r in rollups) == 10_000
    assert count_rows(db_path, "results") == 10_000


async def test_sqlite_write_after_close_raises_store_error(db_path: Path) -> None:
    store = SqliteStore(db_path)
    await store.open()
    await store.aclose()
    with pytest.raises(StoreError):
        await write(store, [result(T0 + 1)])
    with pytest.raises(StoreError):
        await store.rollups(M0, M0 + 1)


async def test_sqlite_failed_write_raises_store_error_and_writes_nothing(db_path: Path) -> None:
    async with opened(db_path) as store:
        await write(store, [result(T0 + 1, request_id="kept")])
        # Break the second half of the transaction: the raw insert succeeds, the rollup
        # upsert fails, and the whole batch must be rolled back.
        with contextlib.closing(sqlite3.connect(db_path)) as other:
            other.execute("DROP TABLE rollups")
            other.commit()
        with pytest.raises(StoreError, match="cannot write") as excinfo:
            await write(store, [result(T0 + 2, request_id="lost")])
        assert isinstance(excinfo.value.__cause__, sqlite3.Error)
        assert [r.request_id for r in await store.results(T0, T0 + 60)] == ["kept"]
    assert count_rows(db_path, "results") == 1


async def test_sqlite_open_failure_raises_store_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    store = SqliteStore(not_a_dir / "sla.sqlite3")  # its folder cannot be created
    with pytest.raises(StoreError, match="cannot open"):
        await store.open()
    await store.aclose()


async def test_alerts_are_typed_records_newest_first(store: Store) -> None:
    def alert(alert_id: str, status: AlertStatus, pending_since: float) -> Alert:
        return Alert(
            alert_id=alert_id,
            fingerprint=f"f-{alert_id}",
            rule="burn-14x",
            severity="page",
            service="online",
            objective="online-1s",
            status=status,
            pending_since=pending_since,
            summary="burning",
            description="",
            notified=["oncall"],
        )

    firing = alert("a", "firing", T0)
    await store.save_alert(firing)
    await store.save_alert(alert("b", "resolved", T0 + 60))
    await store.save_alert(alert("c", "pending", T0 + 120))
    firing.notified.append("manager")  # the caller's object changes after the save...
    loaded = await store.load_alerts()
    assert [a.alert_id for a in loaded] == ["c", "b", "a"]
    assert loaded[2] == alert("a", "firing", T0)  # ...the stored one did not
    assert [a.alert_id for a in await store.load_alerts(active_only=True)] == ["c", "a"]
    assert [a.alert_id for a in await store.load_alerts(limit=1)] == ["c"]
    await store.save_alert(alert("a", "resolved", T0))  # replaced, not added
    assert [a.status for a in await store.load_alerts() if a.alert_id == "a"] == ["resolved"]


async def test_a_days_digest_is_kept_once_and_read_back_in_date_order(store: Store) -> None:
    first = DayDigest("2026-01-02", 3, "a" * 64, "0" * 64, "b" * 64, T0)
    earlier = DayDigest("2026-01-01", 0, "c" * 64, "0" * 64, "d" * 64, T0)
    assert await store.write_digest(first)
    assert await store.write_digest(earlier)
    # A digest is never rewritten: a second one for the same day changes nothing.
    assert not await store.write_digest(DayDigest("2026-01-02", 9, "e" * 64, "", "", T0 + 1))
    assert await store.digests() == [earlier, first]
    # Pruning every raw result keeps the digests (they outlive the rows they summarise).
    await store.prune(T0 + 10 * 86400, M0 + 10 * 1440)
    assert await store.digests() == [earlier, first]


async def test_a_result_keeps_the_location_it_was_measured_from(store: Store) -> None:
    here = Result("online", "p1", "http", T0 + 1, 0.2, Outcome.OK, "", "r1", "brussels")
    there = Result("online", "p1", "http", T0 + 2, 0.3, Outcome.OK, "", "r2", "liege")
    await write(store, [here, there, result(T0 + 3, request_id="r3")])
    got = await store.results(T0, T0 + 60)
    assert [(r.request_id, r.location) for r in got] == [
        ("r1", "brussels"),
        ("r2", "liege"),
        ("r3", ""),
    ]


async def test_instances_are_kept_one_row_each_by_location_then_name(store: Store) -> None:
    assert await store.instances() == []
    first = InstanceRecord("zulu", "brussels", "0.1.0", T0, T0 + 5, None)
    await store.write_instance(first)
    await store.write_instance(InstanceRecord("alpha", "liege", "0.1.0", T0, T0 + 5, T0 + 4.5))
    beat = InstanceRecord("zulu", "brussels", "0.1.0", T0, T0 + 10, T0 + 9.25)
    await store.write_instance(beat)  # the same instance again: its row, replaced
    assert await store.instances() == [
        beat,
        InstanceRecord("alpha", "liege", "0.1.0", T0, T0 + 5, T0 + 4.5),
    ]


async def test_daemons_sharing_a_store_keep_their_run_marks_apart(store: Store) -> None:
    await store.mark_run("started", T0, "bru-1")
    await store.mark_run("alive", T0 + 5, "bru-1")
    await store.mark_run("started", T0 + 1, "lgg-1")
    await store.mark_run("stopped", T0 + 9, "lgg-1")
    assert await store.run_marks("bru-1") == RunMarks(started=T0, alive=T0 + 5)
    assert (await store.run_marks("bru-1")).killed
    assert await store.run_marks("lgg-1") == RunMarks(started=T0 + 1, stopped=T0 + 9)
    assert await store.run_marks() == RunMarks()  # the store's only daemon: none yet


async def test_last_results_of_one_location(store: Store) -> None:
    await write(
        store,
        [
            Result("online", "p1", "http", T0 + 1, 0.2, Outcome.OK, "", "a", "brussels"),
            Result("online", "p1", "http", T0 + 7, 0.2, Outcome.OK, "", "b", "liege"),
        ],
    )
    assert await store.last_results(T0) == {("online", "p1"): T0 + 7}
    assert await store.last_results(T0, "brussels") == {("online", "p1"): T0 + 1}
    assert await store.last_results(T0, "ghent") == {}


async def test_a_lease_has_one_holder_until_it_expires_or_is_given_up(store: Store) -> None:
    assert await store.lease("leader") is None
    assert await store.take_lease("leader", "bru-1", 30.0)
    assert not await store.take_lease("leader", "lgg-1", 30.0)  # held by another
    assert await store.take_lease("leader", "bru-1", 30.0)  # a renewal
    holder, left = await store.lease("leader") or ("", 0.0)
    assert holder == "bru-1"
    assert 29.0 < left <= 30.0
    await store.release_lease("leader", "lgg-1")  # not its lease: nothing changes
    assert (await store.lease("leader") or ("",))[0] == "bru-1"
    await store.release_lease("leader", "bru-1")
    assert await store.lease("leader") is None
    assert await store.take_lease("leader", "lgg-1", 30.0)
    assert not await store.take_lease("leader", "bru-1", 30.0)


async def test_an_expired_lease_goes_to_the_next_taker(store: Store) -> None:
    assert await store.take_lease("leader", "bru-1", 0.2)
    assert not await store.take_lease("leader", "lgg-1", 0.2)
    await asyncio.sleep(0.3)  # the store's own clock (the memory store's: the system's)
    assert await store.lease("leader") is None
    assert await store.take_lease("leader", "lgg-1", 30.0)
    assert (await store.lease("leader") or ("",))[0] == "lgg-1"


async def test_a_memory_lease_expires_on_its_clock() -> None:
    clock = FakeClock(T0)
    store = MemoryStore(clock=clock)
    assert await store.take_lease("leader", "bru-1", 20.0)
    clock.advance(19.0)
    assert not await store.take_lease("leader", "lgg-1", 20.0)
    clock.advance(1.5)
    assert await store.take_lease("leader", "lgg-1", 20.0)


async def test_notices_wait_in_the_outbox_until_marked_done(store: Store) -> None:
    assert await store.unsent_notices() == []
    ids = await store.add_notices([("pager", '{"kind": "firing"}'), ("mail", "{}")], T0)
    assert len(set(ids)) == 2
    more = await store.add_notices([("pager", '{"kind": "resolved"}')], T0 + 60)
    assert [(n.id, n.notifier, n.body, n.created_at) for n in await store.unsent_notices()] == [
        (ids[0], "pager", '{"kind": "firing"}', T0),
        (ids[1], "mail", "{}", T0),
        (more[0], "pager", '{"kind": "resolved"}', T0 + 60),
    ]
    await store.mark_notices([(ids[0], "sent"), (more[0], "given up: HTTP 500 x6")], T0 + 61)
    assert [n.id for n in await store.unsent_notices()] == [ids[1]]
    assert await store.add_notices([], T0) == []
    await store.mark_notices([], T0)


async def test_the_outbox_keeps_each_notices_delivery_for_the_record(store: Store) -> None:
    [first] = await store.add_notices([("pager", "a")], T0)
    [second] = await store.add_notices([("mail", "b")], T0 + 10)
    await store.mark_notices([(first, "sent")], T0 + 1)
    got = await store.notices(T0)
    assert [(n.id, n.done_at, n.outcome) for n in got] == [
        (first, T0 + 1, "sent"),
        (second, None, None),
    ]
    assert [n.id for n in await store.notices(T0 + 5)] == [second]


async def test_config_texts_are_kept_once_and_each_start_in_order(store: Store) -> None:
    first = ConfigUse(T0, "bru-1", "/etc/sla/config.yaml", "a" * 64)
    again = ConfigUse(T0 + 60, "lgg-1", "/etc/sla/config.yaml", "a" * 64)
    other = ConfigUse(T0 + 120, "bru-1", "/etc/sla/config.yaml", "b" * 64)
    await store.record_config(first, "services: []\n")
    await store.record_config(again, "ignored: the text of a known hash is kept once\n")
    await store.record_config(other, "services: [x]\n")
    assert await store.config_uses(T0 + 120) == [first, again]
    assert await store.config_uses(T0 + 121) == [first, again, other]
    assert await store.config_body("a" * 64) == "services: []\n"
    assert await store.config_body("c" * 64) is None


async def test_minute_decisions_keep_their_location_faults(store: Store) -> None:
    await store.write_minute_states(
        [
            ServiceMinute("online", M0, None, {"avail": "up"}, {"avail": ["a"]}),
            ServiceMinute("online", M0 + 1, None, {"avail": "up"}),
            ServiceMinute("online", M0 + 2, None, {"avail": "up"}, {"avail": ["a", "b"]}),
            ServiceMinute("batch", M0 + 2, None, {"avail": "down"}),
            ServiceMinute("online", M0 + 9, None, {"avail": "up"}, {"avail": ["b"]}),
        ]
    )
    got = await store.minute_states(M0, M0 + 3, "online")
    assert [(m.minute, m.faults) for m in got] == [
        (M0, {"avail": ["a"]}),
        (M0 + 1, {}),
        (M0 + 2, {"avail": ["a", "b"]}),
    ]
    assert await store.location_faults(M0, M0 + 9) == [
        ("online", "avail", "a", 2),
        ("online", "avail", "b", 1),
    ]
    assert await store.location_faults(M0 + 3, M0 + 9) == []
