"""What one computation of every objective's figures costs (issue 16): ``all_figures`` runs
at every scrape, alert evaluation and API call, on the probes' loop.

The ``bench/late.py`` config (N services x 10 probes, a latency and an availability
objective each), a ledger that has sealed ``--minutes`` minutes of results; then
``all_figures`` is timed ``--calls`` times as the minutes go on sealing (one call per
sealed minute, as a scrape every minute would): the first call after start, and the median
of the others. Median over ``--repeat`` fresh ledgers.

    python bench/figures.py [--services 100 500] [--minutes 5] [--calls 10] [--repeat 3]

Run it in two checkouts (before and after a change) in one sitting to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import print_machine
from bench.late import NOW, PROBES, config
from monitor.ledger.windows import Ledger
from monitor.results import Result
from monitor.sla.figures import all_figures
from monitor.store import MemoryStore
from probes.base import Outcome


async def one_run(services: int, minutes: int, calls: int) -> tuple[float, float]:
    """Seconds of the first ``all_figures`` and the median of the next ones."""
    cfg = config(services)
    ledger = Ledger(cfg, grace_minutes=1)
    store = MemoryStore()
    first_minute = int(NOW // 60)
    times = []
    for m in range(first_minute, first_minute + minutes + calls):
        for i in range(services):
            for j in range(PROBES):
                ok = Outcome.OK if (i + j + m) % 50 else Outcome.TIMEOUT
                ledger.add(Result(f"s{i}", f"p{j}", "http", m * 60 + j, 0.1, ok))
        now = (m + 1) * 60 + 59
        await ledger.advance(now, store)
        if m >= first_minute + minutes:
            started = time.perf_counter()
            all_figures(cfg, ledger, now)
            times.append(time.perf_counter() - started)
    return times[0], statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print_machine()
    for services in args.services:
        runs = [
            asyncio.run(one_run(services, args.minutes, args.calls)) for _ in range(args.repeat)
        ]
        first = statistics.median(r[0] for r in runs)
        then = statistics.median(r[1] for r in runs)
        print(
            f"all_figures, {services:>4} services x {PROBES} probes: first {first * 1e3:.1f} ms,"
            f" then {then * 1e3:.1f} ms a call (median of {args.repeat})"
        )


if __name__ == "__main__":
    main()
