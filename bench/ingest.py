"""Events a second through ``POST /api/ingest`` with durable commit (issue 13).

A real daemon (``sla-monitor run``, its own process, a SQLite file) with one traffic feed;
this process posts NDJSON batches of ``--batch`` events from ``--senders`` concurrent
connections for ``--seconds``, each request answered only after its events are
committed. Reported: events stored a second (from the answers, checked against the
store's row count after), requests a second, and the answer time p50 / p99.

    python bench/ingest.py [--batch 1000] [--senders 2] [--seconds 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    CpuMeter,
    free_port,
    print_machine,
    py_spy,
    quantile,
    spawn,
    stop,
    wait_healthy,
    write_config,
)

TOKEN = "bench-ingest-token-0123456789"


def _config(folder: Path, port: int) -> dict[str, object]:
    return {
        "timezone": "UTC",
        "server": {"listen": f"127.0.0.1:{port}", "api_token_env": "BENCH_INGEST_TOKEN"},
        "storage": {"path": str(folder / "sla.sqlite3")},
        "reports": {"enabled": False, "directory": str(folder / "reports")},
        "alerting": {"enabled": False},
        "ingest": {"max_events": 10_000},
        "services": [
            {
                "name": "online",
                "probes": [{"name": "messages", "kind": "traffic", "interval": "1s"}],
                "objectives": [
                    {
                        "name": "online-1s",
                        "kind": "latency",
                        "source": "traffic",
                        "threshold": "1s",
                        "target": 99,
                    }
                ],
            }
        ],
    }


def _body(sender: int, request: int, batch: int, now: float) -> bytes:
    lines = []
    for n in range(batch):
        start = now - 30 + (n % 30)
        lines.append(
            json.dumps(
                {
                    "type": "exchange",
                    "id": f"s{sender}-r{request}-{n}",
                    "service": "online",
                    "start": dt.datetime.fromtimestamp(start, dt.UTC).isoformat(),
                    "duration_s": 0.05 + (n % 97) / 100,
                    "outcome": "ok" if n % 50 else "timeout",
                }
            )
        )
    return ("\n".join(lines) + "\n").encode()


async def _sender(
    url: str, sender: int, batch: int, until: float, answers: list[float], stored: list[int]
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        request = 0
        while time.monotonic() < until:
            body = _body(sender, request, batch, time.time())
            started = time.perf_counter()
            answer = await client.post("/api/ingest", content=body, headers=headers)
            answers.append(time.perf_counter() - started)
            answer.raise_for_status()
            stored.append(answer.json()["stored"])
            request += 1


def run_once(
    batch: int, senders: int, seconds: float, folder: Path, profile: Path | None = None
) -> dict[str, float]:
    port = free_port()
    config = write_config(_config(folder, port), folder / "config.yaml")
    os.environ["BENCH_INGEST_TOKEN"] = TOKEN
    daemon = spawn("run", config, "asyncio", folder / "daemon.log")
    try:
        wait_healthy(port, daemon)
        meter = CpuMeter([daemon.pid])
        answers: list[float] = []
        stored: list[int] = []
        meter.start()
        started = time.monotonic()
        if profile is not None:
            py_spy(daemon.pid, seconds - 1, profile, "ingest")

        async def all_senders() -> None:
            until = time.monotonic() + seconds
            await asyncio.gather(
                *(
                    _sender(f"http://127.0.0.1:{port}", s, batch, until, answers, stored)
                    for s in range(senders)
                )
            )

        asyncio.run(all_senders())
        elapsed = time.monotonic() - started
        cpu = meter.stop()[daemon.pid]  # percent of one core
    finally:
        stop(daemon)
    with closing(sqlite3.connect(folder / "sla.sqlite3")) as db:
        rows = int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    if rows != sum(stored):
        raise AssertionError(f"the store holds {rows} events, the answers said {sum(stored)}")
    return {
        "events_per_s": sum(stored) / elapsed,
        "requests_per_s": len(answers) / elapsed,
        "p50_ms": quantile(answers, 0.5) * 1000,
        "p99_ms": quantile(answers, 0.99) * 1000,
        "daemon_cpu_pct": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="py-spy the daemon into this folder")
    args = parser.parse_args()
    print_machine()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
            runs.append(
                run_once(args.batch, args.senders, args.seconds, Path(folder), args.profile)
            )
        print(json.dumps({k: round(v, 1) for k, v in runs[-1].items()}))
    print(
        "median:",
        json.dumps({k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}),
    )


if __name__ == "__main__":
    main()
