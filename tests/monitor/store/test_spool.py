"""The spool on a real file: order kept, bounded, all-or-nothing appends, and a replay that
resumes where a crash stopped it without writing anything twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from monitor.errors import StoreError
from monitor.results import Result
from monitor.sla.counts import Rollup
from monitor.store import MemoryStore
from monitor.store.records import RollupKey
from monitor.store.spool import Spool, SpoolFull, replay, rollup_deltas
from probes.base import Outcome

T0 = 1_796_032_800.0


def _results(n: int, offset: int = 0) -> list[Result]:
    return [
        Result("svc", "p", "http", T0 + i + offset, 0.1 * (i % 7), Outcome.OK, "", f"id-{i}")
        for i in range(n)
    ]


def test_append_keeps_order_and_reads_back_in_batches(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.spool", max_bytes=10**6)
    first, second = _results(5), _results(4, offset=100)
    spool.append(first)
    spool.append(second)
    assert spool.pending() == 9
    read = [r for batch, _ in spool.batches(4) for r in batch]
    assert read == first + second


def test_the_bound_refuses_a_whole_append(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.spool", max_bytes=600)
    spool.append(_results(3))
    size = spool.size()
    with pytest.raises(SpoolFull):
        spool.append(_results(20))
    assert spool.size() == size  # nothing of the refused append is in it


def test_a_partial_last_line_is_ignored(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.spool", max_bytes=10**6)
    spool.append(_results(2))
    with spool.path.open("ab") as raw:
        raw.write(b'["svc","p"')  # a crash mid-write
    assert [len(batch) for batch, _ in spool.batches(10)] == [2]


class FailsAfter(MemoryStore):
    """Takes ``allowed`` batches, then fails like a disk that filled up again."""

    def __init__(self, allowed: int) -> None:
        super().__init__()
        self.allowed = allowed
        self.taken: list[Result] = []

    async def write_batch(
        self, results: Sequence[Result], deltas: Mapping[RollupKey, Rollup]
    ) -> None:
        if self.allowed == 0:
            raise StoreError("disk full")
        self.allowed -= 1
        self.taken.extend(results)
        await super().write_batch(results, deltas)


async def test_an_interrupted_replay_resumes_without_writing_twice(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.spool", max_bytes=10**6)
    results = _results(25)
    spool.append(results)
    store = FailsAfter(allowed=2)
    with pytest.raises(StoreError):
        await replay(spool, store, {("svc", "p"): (0.25,)}, batch_size=10)
    assert spool.pending() == 5
    store.allowed = 10
    assert await replay(spool, store, {("svc", "p"): (0.25,)}, batch_size=10) == 5
    assert store.taken == results
    assert not spool.path.exists()


def test_rollup_deltas_count_as_the_collector_does() -> None:
    results = _results(14)
    deltas = rollup_deltas(results, {("svc", "p"): (0.25,)})
    total = Rollup()
    for delta in deltas.values():
        total.merge(delta)
    assert total.attempts == 14
    assert total.good_within(0.25) == sum(1 for r in results if r.latency_s <= 0.25)


def test_a_location_comes_back_and_a_line_from_before_locations_still_reads(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    measured = Result("svc", "p", "http", 1000.5, 0.25, Outcome.OK, "", "r1", "liege")
    spool.append([measured])
    with (tmp_path / "spool").open("ab") as file:  # written by a version without locations
        file.write(b'["svc","p","http",1001.5,0.5,"timeout","no reply","r2"]\n')
    [(batch, _)] = list(spool.batches(10))
    assert batch == [
        measured,
        Result("svc", "p", "http", 1001.5, 0.5, Outcome.TIMEOUT, "no reply", "r2", ""),
    ]
