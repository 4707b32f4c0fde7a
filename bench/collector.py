"""(c) Collector ingest rate: results/s into metrics + the store + ledger windows.

``monitor.collector.Collector`` runs as in the daemon (real ``SqliteStore`` in WAL mode,
``Metrics``, ``Ledger``; batch 1,000, flush every second) while a generator task puts
synthetic ``Result`` objects on the queue as fast as the collector takes them (a
pre-built pool of 100,000 results over ``--probes`` probes: 99.5 % ok with lognormal
latencies, 0.5 % timeouts, all started in the current minute). The figure is results
written (committed) per second from the first put until the final flush after
``--seconds`` of production; "accept only" is the same with the store writes skipped.

    python bench/collector.py [--seconds 10] [--repeats 3] [--probes 100]
        [--store sqlite,postgres,memory] [--postgres URL] [--profile FILE]

``postgres`` writes a fresh database on the server at ``--postgres`` (default: the
machine's, 127.0.0.1:5432) per run, and drops it after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _common as c

from monitor.clock import SystemClock
from monitor.collector import Collector
from monitor.config import Config
from monitor.ledger.windows import Ledger
from monitor.metrics import Metrics
from monitor.results import Result
from monitor.store import MemoryStore, SqliteStore, Store
from monitor.store.postgres import PostgresStore
from probes.base import Outcome

POOL = 100_000


def config(probes: int, store: Path) -> Config:
    """Two services of ``probes`` HTTP probes in all, with the contract's objectives."""
    half = max(1, probes // 2)
    services: list[dict[str, Any]] = []
    for name, count, thresholds in (("online", half, (1.0, 2.0)), ("integrated", half, (4.0,))):
        services.append(
            {
                "name": name,
                "probes": [
                    {"name": f"p{i}", "kind": "http", "url": "http://127.0.0.1:9/x"}
                    for i in range(count)
                ],
                "objectives": [
                    {"name": f"t{t:g}", "kind": "latency", "threshold": t, "target": 99}
                    for t in thresholds
                ]
                + [{"name": "avail", "kind": "availability", "target": 99}],
            }
        )
    return Config.model_validate({"storage": {"path": str(store)}, "services": services})


def pool(cfg: Config) -> list[Result]:
    """Synthetic results, round-robin over every probe."""
    rng = random.Random(1)
    ids = [(s.name, p.name) for s in cfg.services for p in s.probes]
    now = time.time()
    out = []
    for i in range(POOL):
        service, probe = ids[i % len(ids)]
        if rng.random() < 0.005:
            outcome, latency, detail = Outcome.TIMEOUT, 5.0, "no answer within 5 s"
        else:
            outcome, latency, detail = Outcome.OK, rng.lognormvariate(-1.5, 0.6), ""
        out.append(Result(service, probe, "http", now, latency, outcome, detail, uuid.uuid4().hex))
    return out


async def run_once(
    cfg: Config, results: list[Result], seconds: float, store_kind: str, path: Path, url: str
) -> tuple[float, float, int]:
    """Produce for ``seconds``; return (written/s end to end, accepted/s while producing,
    results)."""
    store: Store
    if store_kind == "memory":
        store = MemoryStore()
    elif store_kind == "postgres":
        store = PostgresStore(url)
    else:
        store = SqliteStore(path)
    await store.open()
    metrics = Metrics(cfg)
    ledger = Ledger(cfg, grace_minutes=2)
    queue: asyncio.Queue[Result] = asyncio.Queue(cfg.scheduler.queue_size)
    collector = Collector(
        queue,
        ledger,
        store,
        metrics,
        SystemClock(),
        batch_size=cfg.storage.batch_size,
        flush_interval_s=cfg.storage.flush_interval,
    )
    done = asyncio.Event()
    put = 0

    async def produce(deadline: float) -> None:
        nonlocal put
        n = len(results)
        while time.perf_counter() < deadline:
            try:
                for _ in range(1000):
                    queue.put_nowait(results[put % n])
                    put += 1
            except asyncio.QueueFull:
                # Wait for a free slot (no busy loop: it would starve the store's thread).
                await queue.put(results[put % n])
                put += 1
        done.set()

    started = time.perf_counter()
    consumer = asyncio.create_task(collector.run(done))
    await produce(started + seconds)
    accepted_rate = collector.accepted / (time.perf_counter() - started)
    await consumer
    elapsed = time.perf_counter() - started
    assert collector.written == put == collector.accepted, (collector.written, put)
    await store.aclose()
    return put / elapsed, accepted_rate, put


def main() -> None:
    """Run ``--repeats`` times and print the median."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument(
        "--store",
        default="sqlite",
        help="comma list of: sqlite (the default store), postgres, memory (no store cost)",
    )
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--profile", type=Path, help="cProfile one extra run into this file")
    args = parser.parse_args()
    c.print_machine()
    kinds = args.store.split(",")
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="sla-bench-") as tmp:
        cfg = config(args.probes, Path(tmp) / "unused.sqlite3")
        results = pool(cfg)
        for repeat in range(args.repeats):
            for kind in kinds:
                _use_store(kind)
                path = Path(tmp) / f"{kind}-{repeat}.sqlite3"
                with _database(args.postgres if kind == "postgres" else None) as url:
                    rate, accepted, n = asyncio.run(
                        run_once(cfg, results, args.seconds, kind, path, url)
                    )
                rates[kind].append(rate)
                print(
                    f"  {kind:8} run {repeat + 1}: {rate:9.0f} results/s written "
                    f"({n} results; accepted while producing {accepted:.0f}/s)",
                    flush=True,
                )
        if args.profile:
            _use_store(kinds[0])
            profiler = cProfile.Profile()
            path = Path(tmp) / "profile.sqlite3"
            with _database(args.postgres if kinds[0] == "postgres" else None) as url:
                profiler.runcall(
                    asyncio.run, run_once(cfg, results, args.seconds, kinds[0], path, url)
                )
            profiler.dump_stats(args.profile)
            pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(15)
    print(f"\nmedians over repeats ({args.probes} probes):")
    for kind, values in rates.items():
        print(f"{kind:8}: {c.median(values):.0f} results/s")


@contextlib.contextmanager
def _database(admin: str | None) -> Iterator[str]:
    """A throwaway database on the server at ``admin`` ("" without one)."""
    if admin is None:
        yield ""
        return
    with c.throwaway_database(admin) as url:
        yield url


_ORIGINAL_WRITE = SqliteStore.write_batch


def _use_store(kind: str) -> None:
    SqliteStore.write_batch = _ORIGINAL_WRITE  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
