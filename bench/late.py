"""What one late result costs (issue 16): a result whose minute the ledger has already
sealed, but within the re-decision horizon, corrects that minute's availability state.
N services x 10 probes (half of the services depend on the first, so a late result of a
provider re-decides its dependants too); the ledger seals a few minutes, then results of
the last sealed minute arrive; the time per late result is the median over --repeat runs.

    python bench/late.py [--services 10 100 500] [--late 200] [--repeat 3]

Run it in two checkouts (before and after a change) in one sitting to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import print_machine
from monitor.config import Config
from monitor.ledger.windows import Ledger
from monitor.results import Result
from monitor.store import MemoryStore
from probes.base import Outcome

NOW = 1_795_000_020.0
PROBES = 10


def config(services: int) -> Config:
    """``services`` services of 10 HTTP probes; every odd one depends on s0."""
    document: dict[str, Any] = {
        "storage": {"path": ":memory:"},
        "services": [
            {
                "name": f"s{i}",
                "probes": [
                    {"name": f"p{j}", "kind": "http", "url": "http://127.0.0.1:1/"}
                    for j in range(PROBES)
                ],
                "objectives": [
                    {"name": "fast", "kind": "latency", "threshold": 1, "target": 99},
                    {"name": "up", "kind": "availability", "target": 99},
                ],
                "depends_on": ["s0"] if i % 2 else [],
            }
            for i in range(services)
        ],
    }
    return Config.model_validate(document)


async def one_run(services: int, late: int) -> float:
    """Seconds per late result, for one fresh ledger."""
    cfg = config(services)
    ledger = Ledger(cfg, grace_minutes=1)
    store = MemoryStore()
    minute = int(NOW // 60)
    for m in range(minute, minute + 3):
        for i in range(services):
            for j in range(PROBES):
                ledger.add(Result(f"s{i}", f"p{j}", "http", m * 60 + j, 0.1, Outcome.OK))
        await ledger.advance((m + 1) * 60 + 59, store)
    sealed = minute + 1  # sealed, and within the re-decision horizon
    results = [
        Result(f"s{k % services}", f"p{k % PROBES}", "http", sealed * 60 + 30, 0.2, Outcome.OK)
        for k in range(late)
    ]
    started = time.perf_counter()
    for result in results:
        ledger.add(result)
    return (time.perf_counter() - started) / late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--late", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print_machine()
    for services in args.services:
        runs = [asyncio.run(one_run(services, args.late)) for _ in range(args.repeat)]
        median = statistics.median(runs)
        print(f"late result, {services:>4} services x {PROBES} probes: {median * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
