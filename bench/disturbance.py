"""Does the monitor's own work disturb what it measures? (issue 16)

N HTTP probes in S services (10 s interval by default) against the simulator, which
answers after a constant 5 ms and logs its true handling time per request. The daemon's
measured latency minus that truth, joined by request_id, is the timing error. Each run is
done twice: quiet, and with `/metrics` scraped every ``--scrape-every`` seconds (what a
Prometheus does); scrape durations and sizes are recorded too. Daemon and simulator are
separate processes (``bench/_proc.py``), as in the other benchmarks.

    python bench/disturbance.py [--probes 2000] [--services 200] [--seconds 60]
        [--scrape-every 15] [--repeats 1]

Run it in two checkouts in one sitting to compare a change.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sqlite3
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as c

DELAY_S = 0.005


@dataclass
class Run:
    """One run's figures (timing error in ms)."""

    mode: str
    ready_s: float
    joined: int
    p50: float
    p99: float
    worst: float
    over_100ms: int
    scrapes: list[tuple[float, int]]  # (seconds, bytes)


def document(
    probes: int, services: int, interval_s: float, sim_port: int, server_port: int, store: Path,
    truth: Path,
) -> dict[str, Any]:  # fmt: skip
    """Services of probes/services HTTP probes each, and the simulator that answers them."""
    per = max(1, probes // services)
    return {
        "server": {"listen": f"127.0.0.1:{server_port}"},
        "storage": {"path": str(store)},
        "alerting": {"enabled": True},
        "services": [
            {
                "name": f"s{i}",
                "probes": [
                    {
                        "name": f"p{j}",
                        "kind": "http",
                        "url": f"http://127.0.0.1:{sim_port}/svc",
                        "interval": interval_s,
                        "timeout": 2.0,
                    }
                    for j in range(per)
                ],
                "objectives": [
                    {"name": "fast-1s", "kind": "latency", "threshold": 1.0, "target": 99},
                    {"name": "avail", "kind": "availability", "target": 99},
                ],
            }
            for i in range(services)
        ],
        "simulator": {
            "seed": 1,
            "truth_log": str(truth),
            "profiles": {"bench": {"latency": {"distribution": "constant", "median": DELAY_S}}},
            "http": {
                "listen": f"127.0.0.1:{sim_port}",
                "routes": [{"path": "/svc", "profile": "bench"}],
            },
        },
    }


def _scraper(
    port: int, every_s: float, stop: threading.Event, out: list[tuple[float, int]]
) -> None:
    while not stop.wait(every_s):
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
                size = len(r.read())
        except OSError:
            continue
        out.append((time.perf_counter() - started, size))


def run_once(args: argparse.Namespace, scraped: bool, workdir: Path) -> Run:
    """Simulator and daemon; the join of measured against true latency."""
    sim_port, server_port = c.free_port(), c.free_port()
    stamp = time.monotonic_ns()
    store, truth = workdir / f"{stamp}.sqlite3", workdir / f"{stamp}-truth.csv"
    config = c.write_config(
        document(args.probes, args.services, args.interval, sim_port, server_port, store, truth),
        workdir / "disturbance.yaml",
    )
    sim = c.spawn("simulate", config, "asyncio", workdir / "simulator.log")
    daemon = None
    scrapes: list[tuple[float, int]] = []
    stop = threading.Event()
    try:
        c.wait_for_port(sim_port)
        started = time.monotonic()
        daemon = c.spawn("run", config, "asyncio", workdir / "daemon.log")
        c.wait_healthy(server_port, daemon, timeout_s=300)
        ready_s = time.monotonic() - started
        since = time.time() + args.warmup
        if scraped:
            thread = threading.Thread(
                target=_scraper, args=(server_port, args.scrape_every, stop, scrapes)
            )
            thread.start()
        time.sleep(args.warmup + args.seconds)
        stop.set()
        if scraped:
            thread.join()
    finally:
        stop.set()
        if daemon is not None:
            c.stop(daemon, timeout_s=120)
        c.stop(sim)
    with contextlib.closing(sqlite3.connect(store)) as db:
        rows = db.execute(
            "SELECT request_id, latency_s, outcome FROM results WHERE started_at >= ?", (since,)
        ).fetchall()
    with truth.open(newline="") as file:
        handled = {r["request_id"]: float(r["handled_s"]) for r in csv.DictReader(file)}
    errors = [
        1000 * (latency - handled[request_id])
        for request_id, latency, outcome in rows
        if outcome == "ok" and request_id in handled
    ]
    return Run(
        mode="scraped" if scraped else "quiet",
        ready_s=ready_s,
        joined=len(errors),
        p50=c.quantile(errors, 0.5),
        p99=c.quantile(errors, 0.99),
        worst=max(errors),
        over_100ms=sum(e > 100 for e in errors),
        scrapes=scrapes,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--scrape-every", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    c.print_machine()
    with tempfile.TemporaryDirectory(prefix="sla-disturbance-") as tmp:
        for _ in range(args.repeats):
            for scraped in (False, True):
                run = run_once(args, scraped, Path(tmp))
                scrape = ""
                if run.scrapes:
                    seconds = sorted(s for s, _ in run.scrapes)
                    scrape = (
                        f", scrapes {len(seconds)}: median {c.median(seconds) * 1000:.0f} ms,"
                        f" {run.scrapes[-1][1] / 1e6:.1f} MB"
                    )
                print(
                    f"{args.probes} probes / {args.services} services, {run.mode}: ready"
                    f" {run.ready_s:.1f} s, timing error p50 {run.p50:.2f} ms, p99"
                    f" {run.p99:.2f} ms, max {run.worst:.1f} ms, >100 ms {run.over_100ms}"
                    f" of {run.joined}{scrape}"
                )


if __name__ == "__main__":
    main()
