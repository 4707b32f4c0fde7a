"""Window computation cost (issue 3).

(a) Full recomputation: a store holding 30 days of minute rollups for 100 services x 1
    probe (4.3 M rows) plus their minute decisions and hour summaries; time `Ledger.load`
    (what a restart does) and then one computation of every figure of 100 services x 3
    objectives x every window; then again once the day summaries the daemon's
    housekeeping writes are there.
(b) Per-minute evaluation at 1,000 probes: 100 services x 10 probes, one minute of results
    open; time sealing that minute and sliding every window (`Ledger.advance`, which reads
    the minutes leaving the rolling windows back from SQLite), then all figures.

    python bench/windows.py [--services 100] [--days 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import print_machine
from monitor.config import Config
from monitor.ledger.compaction import compact_days
from monitor.ledger.windows import Ledger
from monitor.results import Result
from monitor.sla.counts import Rollup
from monitor.sla.figures import all_figures
from monitor.store import SqliteStore
from probes.base import Outcome

NOW = 1_795_000_000.0  # 2026-11-18, late in the month


def config(services: int, probes: int) -> Config:
    """services x probes HTTP probes, each service with 2 latency + 1 availability."""
    document: dict[str, Any] = {
        "storage": {"path": "unused"},
        "services": [
            {
                "name": f"s{i}",
                "probes": [
                    {"name": f"p{j}", "kind": "http", "url": "http://127.0.0.1:1/"}
                    for j in range(probes)
                ],
                "objectives": [
                    {"name": "fast", "kind": "latency", "threshold": 1, "target": 99},
                    {"name": "slow", "kind": "latency", "threshold": 2, "target": 99.5},
                    {"name": "up", "kind": "availability", "target": 99},
                ],
            }
            for i in range(services)
        ],
    }
    return Config.model_validate(document)


def _bodies() -> list[str]:
    """A few realistic minute rollups (60 results, ~20 buckets) to write over and over."""
    bodies = []
    for variant in range(8):
        rollup = Rollup()
        for k in range(60):
            latency = 0.05 + 0.01 * ((k * 7 + variant) % 40)
            ok = (k + variant) % 97 != 0
            rollup.add(ok, "ok" if ok else "timeout", latency, (1.0, 2.0))
        bodies.append(json.dumps(rollup.to_dict(), separators=(",", ":")))
    return bodies


def seed(path: Path, services: int, days: int, compacted: bool) -> int:
    """Write `days` of rollups and decisions for `services` x 1 probe directly with sqlite3;
    with `compacted`, also the hour summaries a running daemon writes as hours complete."""
    store = SqliteStore(path)
    asyncio.run(_open_close(store))
    bodies = _bodies()
    hour_bodies = {}
    for offset in (0, 4):  # an hour starts at minute % 8 == 0 or 4
        total = Rollup()
        for m in range(60):
            total.merge(Rollup.from_dict(json.loads(bodies[(offset + m) % len(bodies)])))
        hour_bodies[offset] = json.dumps({"p0": total.to_dict()})
    end = int(NOW // 60)
    first = end - days * 1440
    db = sqlite3.connect(path)
    rows = 0
    states = json.dumps({"up": "up"})
    for i in range(services):
        db.executemany(
            "INSERT INTO rollups (service, probe, minute, attempts, ok, body)"
            " VALUES (?, 'p0', ?, 60, 59, ?)",
            ((f"s{i}", m, bodies[m % len(bodies)]) for m in range(first, end)),
        )
        db.executemany(
            "INSERT INTO minute_states (service, minute, exclusion, states) VALUES (?, ?, NULL, ?)",
            ((f"s{i}", m, states) for m in range(first, end)),
        )
        rows += end - first
        if compacted:
            # Hours with data, and the hours before (the daemon did not run yet), which a
            # first restart compacts as unmonitored: the previous calendar month is read too.
            db.executemany(
                "INSERT INTO hours (service, hour, exclusions, states, rollups)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    (f"s{i}", h, "1" * 60, json.dumps({"up": "1" * 60}), hour_bodies[h * 60 % 8])
                    if h * 60 >= first
                    else (f"s{i}", h, "1" * 60, json.dumps({"up": "3" * 60}), "{}")
                    for h in range((end - 64 * 1440) // 60, end // 60)
                ),
            )
    db.commit()
    db.close()
    return rows


async def _open_close(store: SqliteStore) -> None:
    await store.open()
    await store.aclose()


async def compact(path: Path) -> int:
    """What the daemon's housekeeping does: join every settled day's hours into a day row."""
    store = SqliteStore(path)
    await store.open()
    try:
        return await compact_days(store, 0, int(NOW // 60))
    finally:
        await store.aclose()


async def full_recompute(path: Path, services: int) -> tuple[float, float]:
    """Seconds for Ledger.load and for all figures of every objective and window."""
    cfg = config(services, 1)
    store = SqliteStore(path)
    await store.open()
    try:
        ledger = Ledger(cfg, grace_minutes=1)
        started = time.perf_counter()
        await ledger.load(store, NOW)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        figures = all_figures(cfg, ledger, NOW)
        computed = time.perf_counter() - started
        assert len(figures) == services * 3
    finally:
        await store.aclose()
    return loaded, computed


async def per_minute(services: int, probes: int) -> tuple[float, float]:
    """Seconds to seal one minute of 1,000 probes and slide windows; then all figures."""
    cfg = config(services, probes)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "m.sqlite3")
        await store.open()
        try:
            ledger = Ledger(cfg, grace_minutes=1)
            await ledger.load(store, NOW)
            minute_start = (NOW // 60) * 60
            deltas: dict[tuple[str, str, int], Rollup] = {}
            results = []
            for s in range(services):
                for p in range(probes):
                    for k in range(6):  # a probe every 10 s
                        result = Result(
                            f"s{s}",
                            f"p{p}",
                            "http",
                            minute_start + 10 * k,
                            0.1 + 0.01 * k,
                            Outcome.OK,
                        )
                        ledger.add(result)
                        results.append(result)
                        key = (result.service, result.probe, result.minute)
                        deltas.setdefault(key, Rollup()).add(True, "ok", result.latency_s, (1, 2))
            await store.write_batch(results, deltas)
            started = time.perf_counter()
            await ledger.advance(minute_start + 60 * 3 + 1, store)  # seals the minute
            sealed = time.perf_counter() - started
            started = time.perf_counter()
            all_figures(cfg, ledger, minute_start + 60 * 3 + 1)
            computed = time.perf_counter() - started
        finally:
            await store.aclose()
    return sealed, computed


def main() -> None:
    """Run both measurements `--repeat` times and print medians."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cold-services", type=int, default=10, help="services for the uncompacted load"
    )
    args = parser.parse_args()
    print_machine()
    for compacted in (True, False):
        if not compacted and args.cold_services == 0:
            continue
        services = args.services if compacted else args.cold_services
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "month.sqlite3"
            started = time.perf_counter()
            rows = seed(path, services, args.days, compacted)
            print(f"seeded {rows:,} minute rollups in {time.perf_counter() - started:.1f} s")
            stages = ["hour summaries, no day summaries yet", "day and hour summaries"]
            if not compacted:
                stages = ["no hour summaries (first start after an upgrade: every minute row)"]
            for stage in stages:
                if stage.startswith("day"):
                    started = time.perf_counter()
                    written = asyncio.run(compact(path))
                    elapsed = time.perf_counter() - started
                    print(f"compacted {written:,} service days in {elapsed:.1f} s (housekeeping)")
                loads, computes = [], []
                for _ in range(args.repeat):
                    loaded, computed = asyncio.run(full_recompute(path, services))
                    loads.append(loaded)
                    computes.append(computed)
                print(
                    f"(a) full recomputation, {services} services x 3 objectives, {rows:,} rows,"
                    f" {stage}: load median {statistics.median(loads):.2f} s, all figures"
                    f" median {statistics.median(computes):.3f} s"
                    f" (runs: {[round(x, 2) for x in loads]})"
                )
    seals, figures = [], []
    for _ in range(args.repeat):
        sealed, computed = asyncio.run(per_minute(100, 10))
        seals.append(sealed)
        figures.append(computed)
    print(
        f"(b) per-minute evaluation at 1,000 probes: seal + slide median"
        f" {statistics.median(seals) * 1000:.1f} ms, all figures median"
        f" {statistics.median(figures) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
