"""Event bodies read in worker processes (monitor/ingest/pool.py): real spawned workers
give exactly what reading on the loop gives, errors included; a worker that dies is
replaced and its body is still read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import signal
from typing import Any

import pytest

from monitor.config import Config
from monitor.ingest.events import (
    BodyError,
    EventReader,
    ReaderSpec,
    TooManyEvents,
    unknown_batches,
)
from monitor.ingest.pool import ReadPool

NOW = 1_795_000_020.0


def _spec(max_events: int = 100) -> ReaderSpec:
    config = Config.model_validate(
        {
            "ingest": {"max_events": max_events},
            "services": [
                {
                    "name": "online",
                    "probes": [{"name": "messages", "kind": "traffic"}],
                    "objectives": [
                        {"name": "data-4d", "kind": "batch", "deadline": "4d", "target": 99}
                    ],
                },
            ],
        }
    )
    return ReaderSpec.of(config)


def _at(seconds_before: float) -> str:
    return dt.datetime.fromtimestamp(NOW - seconds_before, dt.UTC).isoformat()


def _body() -> bytes:
    lines: list[object] = [
        {
            "type": "exchange",
            "id": f"e{n}",
            "service": "online",
            "start": _at(30 + n),
            "duration_s": 0.1 * n,
            "outcome": "ok" if n % 3 else "timeout",
        }
        for n in range(20)
    ]
    lines[4] = {**lines[4], "duration_s": -1}  # type: ignore[dict-item]
    lines[7] = {**lines[7], "service": "nowhere"}  # type: ignore[dict-item]
    common = {"type": "batch", "service": "online", "at": _at(10), "records": 5}
    lines += [
        {**common, "id": "p1", "batch": "b1", "event": "processed"},  # before its submitted
        {**common, "id": "s1", "batch": "b1", "event": "submitted"},
        {**common, "id": "p2", "batch": "b2", "event": "processed"},  # never submitted
    ]
    text = "\n".join(json.dumps(line) for line in lines)
    return (text + "\n{not json\n").encode()


async def test_a_worker_reads_a_body_exactly_as_the_loop_does() -> None:
    spec = _spec()
    pool = ReadPool(spec, 1)
    await pool.start()
    try:
        in_worker = await pool.read(_body(), NOW)
    finally:
        await pool.aclose()
    on_loop = EventReader(spec).read(_body(), NOW)
    assert in_worker == on_loop
    assert len(in_worker.events) == 18
    assert [(e.line, e.error.split(":")[0]) for e in in_worker.errors] == [
        (5, "duration_s"),
        (8, "service"),
        (24, "not JSON"),
    ]
    checked = unknown_batches(in_worker, lambda service, batch: False)
    assert [b.id for b in checked.batches] == ["p1", "s1"]
    assert [e.line for e in checked.errors] == [5, 8, 23, 24]
    assert checked.errors[2].error.startswith("batch: unknown batch 'b2'")


async def test_a_workers_refusal_of_the_whole_body_reaches_the_caller() -> None:
    pool = ReadPool(_spec(max_events=3), 1)
    await pool.start()
    try:
        with pytest.raises(TooManyEvents, match=r"more than ingest\.max_events"):
            await pool.read(_body(), NOW)
        with pytest.raises(BodyError, match="not UTF-8"):
            await pool.read(b"\xff\xfe", NOW)
        with pytest.raises(BodyError, match="array is malformed"):
            await pool.read(b"[{", NOW)
    finally:
        await pool.aclose()


async def test_a_dead_worker_is_replaced_and_its_body_still_read() -> None:
    spec = _spec()
    pool = ReadPool(spec, 1)
    await pool.start()
    try:
        executor = pool._executor
        assert executor is not None
        [pid] = list(executor._processes)  # the one worker, started and ready
        os.kill(pid, signal.SIGKILL)
        expected = EventReader(spec).read(_body(), NOW)
        assert await pool.read(_body(), NOW) == expected  # read on the loop
        assert pool.restarts == 1
        assert await pool.read(_body(), NOW) == expected  # by the new worker
        assert pool._executor is not executor
    finally:
        await pool.aclose()


def _explode() -> None:
    raise RuntimeError("this worker cannot start")


class _Unloadable:
    """Pickles, but a worker cannot load it: its initializer fails."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_explode, ())


async def test_workers_that_cannot_start_leave_the_reading_to_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = _spec()
    broken = dataclasses.replace(spec, thresholds={("online", "messages"): _Unloadable()})  # type: ignore[dict-item]
    pool = ReadPool(broken, 1)
    with caplog.at_level(logging.ERROR, logger="monitor.ingest.pool"):
        await pool.start()
    try:
        assert "ingest workers did not start" in caplog.text
        read = await pool.read(b'{"type": "exchange"}\n', NOW)  # on the loop, as its spec says
        assert [e.line for e in read.errors] == [1]
    finally:
        await pool.aclose()
