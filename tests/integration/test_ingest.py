"""``POST /api/ingest``: events of real traffic feed a traffic-based latency objective
exactly, once each, late and out of order; bad input is refused line by line and a
refused request changes nothing; a restart finds every answered event.

A real daemon on a real SQLite file; only the clock is fake. The truth is the list of
events the test generated (seeded), counted here by plain rules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.app import Daemon
from monitor.config import Config
from tests.fakes import FakeClock
from tests.support.stack import validate

pytestmark = pytest.mark.timeout(120)

TOKEN = "ingest-test-token-0123"
READER = "ingest-test-reader-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1_795_000_020.0  # 2026-11-18T11:07:00Z, on a minute
THRESHOLD_S = 1.0


def _config(tmp_path: Path) -> Config:
    return validate(
        {
            "timezone": "UTC",
            "server": {
                "listen": "127.0.0.1:0",
                "api_token_env": "INGEST_TEST_TOKEN",
                "tokens": {"reader": {"env": "INGEST_TEST_READER", "scopes": ["read"]}},
            },
            "storage": {"path": str(tmp_path / "sla.sqlite3"), "flush_interval": "0.2s"},
            "reports": {"enabled": False, "directory": str(tmp_path / "reports")},
            "ingest": {"max_body_bytes": 200_000, "max_events": 500},
            "services": [
                {
                    "name": "online",
                    "probes": [
                        {"name": "messages", "kind": "traffic", "interval": "1s"},
                        {"name": "replays", "kind": "traffic", "interval": "1m"},
                    ],
                    "objectives": [
                        {
                            "name": "online-1s",
                            "kind": "latency",
                            "source": "traffic",
                            "probes": ["messages"],
                            "threshold": THRESHOLD_S,
                            "target": 99,
                        }
                    ],
                },
                {
                    "name": "files",
                    "objectives": [
                        {"name": "data-4d", "kind": "batch", "deadline": "4d", "target": 99}
                    ],
                },
                {
                    "name": "portal",
                    "probes": [{"name": "calls", "kind": "traffic"}],
                    "objectives": [
                        {
                            "name": "integrated-4s",
                            "kind": "latency",
                            "source": "traffic",
                            "threshold": "4s",
                            "target": 99,
                        }
                    ],
                },
            ],
        }
    )


@dataclass
class Running:
    daemon: Daemon
    client: httpx.AsyncClient
    clock: FakeClock
    db: Path

    async def post(self, body: str | bytes, **headers: str) -> httpx.Response:
        return await self.client.post(
            "/api/ingest",
            content=body,
            headers={**AUTH, "Content-Type": "application/x-ndjson", **headers},
        )

    async def figures(self, service: str = "online", window: str = "month") -> dict[str, Any]:
        answer = (await self.client.get("/api/sla", headers=AUTH)).json()
        [found] = [s for s in answer["services"] if s["name"] == service]
        [objective] = found["objectives"]
        assert objective["source"] == "traffic"
        return dict(objective["windows"][window])

    def stored(self) -> int:
        with closing(sqlite3.connect(self.db)) as db:
            return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    async def state(self) -> tuple[int, int, int]:
        """What a refused request must leave alone: rows, and the month's counts."""
        month = await self.figures()
        return self.stored(), month["valid"], month["good"]

    async def seal(self) -> None:
        """Move past the sealing grace and let the collector slide its windows."""
        self.clock.advance(5 * 60)
        await asyncio.sleep(1.3)


@asynccontextmanager
async def running(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Running]:
    config = _config(tmp_path)
    daemon = Daemon(config, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 30)
        async with httpx.AsyncClient(base_url=daemon.server.url, timeout=30) as client:
            yield Running(daemon, client, clock, tmp_path / "sla.sqlite3")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture(autouse=True)
def _tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("INGEST_TEST_READER", READER)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


def _event(
    event_id: str, start: float, latency: float, ok: bool = True, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "exchange",
        "id": event_id,
        "service": "online",
        "feed": "messages",
        "start": _iso(start),
        "duration_s": latency,
        "outcome": "ok" if ok else "timeout",
        **extra,
    }


def _ndjson(events: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


async def test_traffic_events_are_counted_once_late_and_out_of_order(tmp_path: Path) -> None:
    rng = random.Random(13)
    clock = FakeClock(T0, speed=1.0)
    truth: dict[str, tuple[float, bool]] = {}  # id -> (latency, ok)
    delayed: list[dict[str, Any]] = []
    async with running(tmp_path, clock) as run:
        for minute in range(30):
            start_of_minute = clock.now()
            batch = []
            for n in range(rng.randint(20, 60)):
                latency = rng.lognormvariate(-1.2, 0.9)  # a tail past 1 s
                ok = rng.random() > 0.02
                event = _event(f"m{minute}-{n}", start_of_minute + rng.uniform(0, 59), latency, ok)
                truth[event["id"]] = (latency, ok)
                # Some reach the monitor minutes later (a gateway's backlog).
                (delayed if rng.random() < 0.1 else batch).append(event)
            rng.shuffle(batch)
            as_array = minute % 2 == 0
            body = json.dumps(batch) if as_array else _ndjson(batch)
            answer = await run.post(
                body, **({"Content-Type": "application/json"} if as_array else {})
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["stored"] == len(batch)
            # A retry of the same request (no answer seen): counted once.
            if minute % 7 == 3:
                again = await run.post(body)
                assert again.json() == {
                    "stored": 0,
                    "duplicate": len(batch),
                    "invalid": 0,
                    "late": 0,
                    "errors": [],
                }
            if minute % 10 == 9:  # the backlog arrives, minutes after its minutes sealed
                answer = await run.post(_ndjson(delayed))
                assert answer.json()["stored"] == len(delayed)
                delayed = []
            clock.advance(60)
            await asyncio.sleep(0.05)
        await run.seal()
        await run.seal()
        month = await run.figures()
        valid = len(truth)
        good = sum(1 for latency, ok in truth.values() if ok and latency <= THRESHOLD_S)
        assert (month["valid"], month["good"]) == (valid, good)
        assert run.stored() == valid
        # The other feed and the other service saw nothing.
        assert (await run.figures("portal"))["valid"] == 0
    async with running(tmp_path, FakeClock(clock.now(), speed=1.0)) as again:
        await again.seal()
        month = await again.figures()
        assert (month["valid"], month["good"]) == (valid, good)


BAD_LINES: list[tuple[str, dict[str, Any] | str, str]] = [
    ("not JSON", '{"type": "exchange", "id": ', "not JSON"),
    ("not an object", '"just text"', "a JSON object"),
    ("wrong type", {"duration_s": "fast"}, "duration_s"),
    ("negative duration", {"duration_s": -0.5}, "duration_s"),
    ("end before start", {"duration_s": None, "end": _iso(T0 - 120)}, "end: before start"),
    ("both duration and end", {"end": _iso(T0 - 50)}, "either duration_s or end"),
    ("unknown service", {"service": "nope"}, "unknown service"),
    ("unknown feed", {"feed": "nope"}, "no traffic feed 'nope'"),
    ("feed left out of two", {"feed": None}, "has several"),
    ("no id", {"id": None}, "id"),
    ("unknown key", {"colour": "red"}, "colour"),
    ("unknown outcome", {"outcome": "meh"}, "outcome"),
    ("no offset", {"start": "2026-11-18T11:00:00"}, "start"),
    ("in the future", {"start": _iso(T0 + 3600)}, "in the future"),
    ("too late", {"start": _iso(T0 - 7 * 3600)}, "max_age"),
]


async def test_bad_input_is_refused_line_by_line_and_changes_nothing(tmp_path: Path) -> None:
    clock = FakeClock(T0, speed=1.0)
    async with running(tmp_path, clock) as run:
        seed = await run.post(_ndjson([_event("seed", T0 - 90, 0.2)]))
        assert seed.status_code == 200
        await run.seal()
        before = await run.state()
        assert before == (1, 1, 1)
        for name, change, expected in BAD_LINES:
            if isinstance(change, str):
                body = change + "\n"
            else:
                event = {**_event("bad-" + name.replace(" ", "-"), T0 - 90, 0.2), **change}
                body = json.dumps({k: v for k, v in event.items() if v is not None}) + "\n"
            answer = await run.post(body)
            assert answer.status_code == 422, (name, answer.text)
            [error] = answer.json()["errors"]
            assert error["line"] == 1, (name, error)
            assert expected in error["error"], (name, error)
            assert error["reason"] == ("late" if name == "too late" else "invalid")
            assert await run.state() == before, name
        whole: list[tuple[str, bytes, dict[str, str], int, str]] = [
            ("malformed array", b'[{"type": "exchange"', AUTH, 400, "malformed"),
            ("empty body", b"\n\n", AUTH, 400, "no event"),
            ("not UTF-8", b"\xff\xfe{}", AUTH, 400, "UTF-8"),
            ("over max_body_bytes", b" " * 200_001, AUTH, 413, "max_body_bytes"),
            (
                "over max_events",
                _ndjson([_event(f"x{n}", T0 - 90, 0.1) for n in range(501)]).encode(),
                AUTH,
                413,
                "max_events",
            ),
            ("no token", _ndjson([_event("t1", T0 - 90, 0.1)]).encode(), {}, 401, "token"),
            (
                "wrong token",
                _ndjson([_event("t2", T0 - 90, 0.1)]).encode(),
                {"Authorization": "Bearer nope-nope-nope"},
                401,
                "token",
            ),
            (
                "read-only token",
                _ndjson([_event("t3", T0 - 90, 0.1)]).encode(),
                {"Authorization": f"Bearer {READER}"},
                403,
                "ingest",
            ),
        ]
        for name, body_bytes, headers, status, text in whole:
            answer = await run.client.post(
                "/api/ingest",
                content=body_bytes,
                headers={"Content-Type": "application/x-ndjson", **headers},
            )
            assert answer.status_code == status, (name, answer.text)
            assert text in answer.json()["error"], (name, answer.json())
            assert await run.state() == before, name
        # Good lines are not stopped by bad ones.
        mixed = _ndjson(
            [
                _event("good-1", T0 - 80, 0.3),
                {**_event("bad-1", T0 - 80, 0.3), "duration_s": -1},
                _event("good-2", T0 - 80, 2.5),
            ]
        )
        answer = await run.post(mixed)
        assert answer.status_code == 200
        body = answer.json()
        assert (body["stored"], body["invalid"], [e["line"] for e in body["errors"]]) == (2, 1, [2])
        await run.seal()
        assert await run.state() == (3, 3, 2)
        metrics = (await run.client.get("/metrics", headers=AUTH)).text
        assert 'sla_events_total{result="late"} 1.0' in metrics
        assert 'sla_events_total{result="stored"} 3.0' in metrics


def _batch(event_id: str, batch: str, kind: str, at: float, records: int) -> dict[str, Any]:
    return {
        "type": "batch",
        "id": event_id,
        "service": "files",
        "batch": batch,
        "event": kind,
        "at": _iso(at),
        "records": records,
    }


async def _batch_month(run: Running) -> dict[str, Any]:
    answer = (await run.client.get("/api/sla", headers=AUTH)).json()
    [files] = [s for s in answer["services"] if s["name"] == "files"]
    [objective] = files["objectives"]
    assert (objective["kind"], objective["source"]) == ("batch", "batch")
    return dict(objective["windows"]["month"])


async def test_batch_events_give_the_days_pending_then_final(tmp_path: Path) -> None:
    clock = FakeClock(T0, speed=1.0)
    h = 3600.0
    first = _ndjson(
        [
            # A processed event before its batch's submission, in the same request.
            _batch("x-done", "X", "processed", T0 - 1 * h, 1000),
            _batch("x-in", "X", "submitted", T0 - 3 * h, 1000),
            _batch("y-in", "Y", "submitted", T0 - 2 * h, 500),
            _batch("y-part", "Y", "processed", T0 - 0.5 * h, 200),
            # Two days ago, a quarter processed: pending (its deadline is days away).
            _batch("w-in", "W", "submitted", T0 - 48 * h, 400),
            _batch("w-part", "W", "processed", T0 - 24 * h, 100),
        ]
    )
    async with running(tmp_path, clock) as run:
        answer = await run.post(first)
        assert answer.json() == {"stored": 6, "duplicate": 0, "invalid": 0, "late": 0, "errors": []}
        month = await _batch_month(run)
        by_day = {d["date"]: d for d in month["days"]}
        assert by_day["2026-11-18"] == {
            "date": "2026-11-18",
            "state": "pending",
            "submitted": 1500,
            "in_time": 1200,
            "unprocessed": 300,
            "compliance": 0.8,
        }
        assert by_day["2026-11-16"]["state"] == "pending"
        assert (by_day["2026-11-16"]["in_time"], by_day["2026-11-16"]["unprocessed"]) == (100, 300)
        assert (month["valid"], month["compliance"], month["verdict"]) == (0, None, "no_data")
        assert month["pending"] == {"days": 2, "submitted": 1900, "unprocessed": 600}
        # A retry is counted once; a processed event of a batch nobody submitted is refused.
        again = await run.post(first)
        assert (again.json()["stored"], again.json()["duplicate"]) == (0, 6)
        unknown = await run.post(_ndjson([_batch("q", "Q", "processed", T0 - h, 5)]))
        assert unknown.status_code == 422
        assert "unknown batch 'Q'" in unknown.json()["errors"][0]["error"]
        # The rest of W: its day (16 Nov) is over and wholly processed, so final at once;
        # today, wholly processed too, stays pending: more batches may come today.
        done = await run.post(
            _ndjson(
                [
                    _batch("w-rest", "W", "processed", T0 - 0.2 * h, 300),
                    _batch("y-rest", "Y", "processed", T0 - 0.1 * h, 300),
                ]
            )
        )
        assert done.json()["stored"] == 2
        month = await _batch_month(run)
        assert (month["valid"], month["good"], month["verdict"]) == (400, 400, "met")
        assert month["pending"] == {"days": 1, "submitted": 1500, "unprocessed": 0}
    async with running(tmp_path, FakeClock(T0 + 60, speed=1.0)) as again:
        reloaded = await _batch_month(again)
        assert (reloaded["valid"], reloaded["good"], reloaded["pending"]) == (
            400,
            400,
            {"days": 1, "submitted": 1500, "unprocessed": 0},
        )
