"""(b) Measurement overhead: the daemon's measured latency minus the simulator's true
server-side handling time, joined by request_id.

HTTP at 500 probes/s and MQTT at 200 round trips/s, the simulator answering after a
constant 100 ms. Daemon, simulator and Mosquitto are separate processes. After
``--seconds`` the daemon is stopped with SIGTERM (it drains and flushes), then the
simulator (it flushes its truth CSV); the ``results`` rows of the daemon's SQLite store
are joined to the truth CSV by request_id. The first ``--warmup`` seconds are left out.

    python bench/latency.py [--kind http|mqtt|both] [--seconds 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _common as c
from throughput import document

RATES = {"http": 500.0, "mqtt": 200.0}
INTERVAL_S = 0.2
DELAY_S = 0.1


@dataclass
class Overhead:
    """Measured minus true latency over one run, in ms."""

    kind: str
    joined: int
    unmatched: int
    failed: int
    p50: float
    p99: float
    p999: float
    worst: float
    below_truth: int


def run_once(
    kind: str,
    seconds: float,
    warmup_s: float,
    workdir: Path,
    broker_port: int | None,
    loop: str,
    sim_loop: str,
) -> Overhead:
    """One run: simulator + daemon, then the join."""
    probes = round(RATES[kind] * INTERVAL_S)
    sim_port, server_port = c.free_port(), c.free_port()
    stamp = time.monotonic_ns()
    store = workdir / f"{kind}-{stamp}.sqlite3"
    truth = workdir / f"{kind}-{stamp}-truth.csv"
    config = c.write_config(
        document(
            kind,
            probes,
            sim_port=sim_port,
            broker_port=broker_port,
            server_port=server_port,
            store=store,
            delay_s=DELAY_S,
            interval_s=INTERVAL_S,
            truth_log=truth,
        ),
        workdir / "latency.yaml",
    )
    sim = c.spawn("simulate", config, sim_loop, workdir / "simulator.log")
    daemon = None
    try:
        if kind == "http":
            c.wait_for_port(sim_port)
        else:
            time.sleep(1.5)
        daemon = c.spawn("run", config, loop, workdir / "daemon.log")
        c.wait_healthy(server_port, daemon)
        since = time.time() + warmup_s
        time.sleep(warmup_s + seconds)
    finally:
        if daemon is not None:
            c.stop(daemon)
        c.stop(sim)
    with contextlib.closing(sqlite3.connect(store)) as db:
        rows = db.execute(
            "SELECT request_id, latency_s, outcome FROM results WHERE started_at >= ?", (since,)
        ).fetchall()
    with truth.open(newline="") as file:
        handled = {r["request_id"]: r for r in csv.DictReader(file)}
    overheads: list[float] = []
    unmatched = failed = below = 0
    for request_id, latency_s, outcome in rows:
        record = handled.get(request_id)
        if record is None:
            unmatched += 1
            continue
        if outcome != "ok" or record["action"] != "ok":
            failed += 1
            continue
        overhead = latency_s - float(record["handled_s"])
        below += overhead < 0
        overheads.append(1000 * overhead)
    return Overhead(
        kind=kind,
        joined=len(overheads),
        unmatched=unmatched,
        failed=failed,
        p50=c.quantile(overheads, 0.5),
        p99=c.quantile(overheads, 0.99),
        p999=c.quantile(overheads, 0.999),
        worst=max(overheads),
        below_truth=below,
    )


def main() -> None:
    """Run every kind ``--repeats`` times and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=["http", "mqtt", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--sim-loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    c.print_machine()
    kinds = ["http", "mqtt"] if args.kind == "both" else [args.kind]
    runs: list[Overhead] = []
    with tempfile.TemporaryDirectory(prefix="sla-bench-") as tmp:
        workdir = Path(tmp)
        for kind in kinds:
            broker: contextlib.AbstractContextManager[tuple[int | None, int | None]] = (
                contextlib.nullcontext((None, None)) if kind == "http" else c.mosquitto(workdir)
            )
            with broker as (broker_port, _):
                for repeat in range(args.repeats):
                    o = run_once(
                        kind,
                        args.seconds,
                        args.warmup,
                        workdir,
                        broker_port,
                        args.loop,
                        args.sim_loop,
                    )
                    runs.append(o)
                    print(
                        f"  {kind} {RATES[kind]:g}/s run {repeat + 1}: overhead p50 {o.p50:.3f} "
                        f"p99 {o.p99:.3f} p99.9 {o.p999:.3f} max {o.worst:.3f} ms  "
                        f"(n={o.joined}, unmatched {o.unmatched}, failed {o.failed}, "
                        f"below truth {o.below_truth})",
                        flush=True,
                    )
    print("\nmedians over repeats (ms):")
    for kind in kinds:
        mine = [r for r in runs if r.kind == kind]
        print(
            f"{kind} {RATES[kind]:g}/s: p50 {c.median([r.p50 for r in mine]):.3f}  "
            f"p99 {c.median([r.p99 for r in mine]):.3f}  "
            f"p99.9 {c.median([r.p999 for r in mine]):.3f}  "
            f"(n per run {c.median([r.joined for r in mine]):.0f})"
        )


if __name__ == "__main__":
    main()
