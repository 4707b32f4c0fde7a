"""The truth log: in-memory records and the CSV file."""

from __future__ import annotations

import csv
from pathlib import Path

import aiohttp

from simulator.network import Simulator
from simulator.settings import (
    HttpRouteSettings,
    HttpServerSettings,
    LatencySettings,
    ProfileSettings,
    SimulatorSettings,
)
from simulator.truth import CSV_COLUMNS, TruthLog, TruthRecord


def test_records_in_memory_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "truth" / "log.csv"
    truth = TruthLog(path)
    first = truth.record("a", "t/req", "mqtt", 1_800_000_000.123456, 0.15, "ok")
    truth.record("b", "/x", "http", 1_800_000_001.5, 0.0, "drop")
    truth.close()
    assert first == TruthRecord("a", "t/req", "mqtt", 1_800_000_000.123456, 0.15, "ok")
    assert [r.request_id for r in truth.records] == ["a", "b"]

    # Reopening appends without a second header.
    again = TruthLog(path, keep_records=False)
    again.record("c", "/x", "http", 1_800_000_002.0, 0.25, "error")
    again.close()
    assert again.records == []
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1:] == [
        ["a", "t/req", "mqtt", "1800000000.123456", "0.15", "ok"],
        ["b", "/x", "http", "1800000001.5", "0.0", "drop"],
        ["c", "/x", "http", "1800000002.0", "0.25", "error"],
    ]


def test_flushes_after_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    truth = TruthLog(path, flush_interval_s=0.0)
    truth.record("a", "/x", "http", 1.0, 0.1, "ok")
    assert len(path.read_text().splitlines()) == 2  # header and the line, before close
    truth.close()
    truth.record("late", "/x", "http", 2.0, 0.1, "ok")  # after close: memory only
    assert len(path.read_text().splitlines()) == 2
    assert truth.closed


async def test_simulator_writes_its_truth_csv(tmp_path: Path) -> None:
    path = tmp_path / "truth.csv"
    settings = SimulatorSettings(
        profiles={"p": ProfileSettings(latency=LatencySettings(median=0.01, sigma=0.3))},
        http=HttpServerSettings(
            listen="127.0.0.1:0", routes=[HttpRouteSettings(path="/svc", profile="p")]
        ),
        truth_log=str(path),
    )
    async with Simulator(settings, {}) as sim, aiohttp.ClientSession() as session:
        for i in range(5):
            address = f"http://127.0.0.1:{sim.http_port}/svc"
            async with session.get(address, headers={"X-Request-Id": f"id{i}"}) as response:
                assert response.status == 200
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["request_id"] for row in rows] == [f"id{i}" for i in range(5)]
    assert [float(row["handled_s"]) for row in rows] == [r.handled_s for r in sim.truth.records]
    assert {row["endpoint"] for row in rows} == {"/svc"}
