"""Monthly report cost (issue 6): 100 services x 3 objectives over a 31-day month.

Seeds a SQLite store as a daemon that ran all October 2026 (Europe/Brussels, 44,700
minutes) leaves it: per service and minute a rollup (60 results, ~20 buckets) and a minute
decision, and per service and hour the compacted hour summary; each service has one
10-minute outage (so some hours are read minute by minute for the incidents' causes).
Then times, separately and median of ``--repeat``: computing the report from the store,
drawing the charts (one SVG figure per service, once for both documents, in a process per
core), rendering the HTML, and printing the PDF (its HTML without daily tables, through
headless Chromium), i.e. what the daemon does for a closed month.

    python bench/report.py [--services 100] [--repeat 3] [--keep DIR]
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
from monitor.report.charts import draw_charts
from monitor.report.compute import build_report
from monitor.report.model import Month, Report
from monitor.report.pdf import html_to_pdf
from monitor.report.render import render_html
from monitor.sla.counts import Rollup
from monitor.store import SqliteStore

MONTH = Month(2026, 10)
NOW = 1_794_000_000.0  # 2026-11-12: October is closed


def config(services: int) -> Config:
    """Services of one probe each, with 2 latency objectives and 1 availability."""
    return Config.model_validate(
        {
            "timezone": "Europe/Brussels",
            "storage": {"path": "unused"},
            "services": [
                {
                    "name": f"service-{i:03d}",
                    "probes": [{"name": "p", "kind": "http", "url": "http://127.0.0.1:1/"}],
                    "objectives": [
                        {"name": "online-1s", "kind": "latency", "threshold": 1, "target": 99},
                        {"name": "online-2s", "kind": "latency", "threshold": 2, "target": 99.5},
                        {"name": "availability", "kind": "availability", "target": 99},
                    ],
                }
                for i in range(services)
            ],
        }
    )


def _rollups() -> list[Rollup]:
    """A few realistic minute rollups (60 results, ~20 buckets)."""
    variants = []
    for variant in range(8):
        rollup = Rollup()
        for k in range(60):
            latency = 0.05 + 0.01 * ((k * 7 + variant) % 40) + (1.2 if k == variant else 0)
            ok = (k + variant) % 97 != 0
            rollup.add(ok, "ok" if ok else "timeout", latency, (1.0, 2.0))
        variants.append(rollup)
    return variants


def seed(path: Path, services: int) -> int:
    """Write the month with sqlite3 directly (the daemon's tables, the daemon's encoding)."""

    async def schema() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.aclose()

    asyncio.run(schema())
    first, after = MONTH.bounds(config(1).zone)
    variants = _rollups()
    bodies = [json.dumps(r.to_dict(), separators=(",", ":")) for r in variants]
    failed = Rollup()
    for _ in range(60):
        failed.add(False, "connect", 0.01, (1.0, 2.0))
    failed_body = json.dumps(failed.to_dict(), separators=(",", ":"))
    up, down = json.dumps({"availability": "up"}), json.dumps({"availability": "down"})
    db = sqlite3.connect(path)
    rows = 0
    for i in range(services):
        service = f"service-{i:03d}"
        outage = range(first + 1440 * (i % 31) + 600 + i, first + 1440 * (i % 31) + 610 + i)
        db.executemany(
            "INSERT INTO rollups (service, probe, minute, attempts, ok, body)"
            " VALUES (?, 'p', ?, 60, ?, ?)",
            (
                (service, m, 0, failed_body) if m in outage else (service, m, 59, bodies[m % 8])
                for m in range(first, after)
            ),
        )
        db.executemany(
            "INSERT INTO minute_states (service, minute, exclusion, states) VALUES (?, ?, NULL, ?)",
            ((service, m, down if m in outage else up) for m in range(first, after)),
        )
        hours = []
        for hour in range(first // 60, after // 60):
            total = Rollup()
            digits = ""
            for m in range(hour * 60, hour * 60 + 60):
                total.merge(failed if m in outage else variants[m % 8])
                digits += "2" if m in outage else "1"
            hours.append(
                (
                    service,
                    hour,
                    "1" * 60,
                    json.dumps({"availability": digits}),
                    json.dumps({"p": total.to_dict()}),
                )
            )
        db.executemany(
            "INSERT INTO hours (service, hour, exclusions, states, rollups) VALUES (?, ?, ?, ?, ?)",
            hours,
        )
        rows += after - first
    db.commit()
    db.close()
    return rows


async def compute(path: Path, services: int) -> Report:
    """The report from the store."""
    store = SqliteStore(path)
    await store.open()
    try:
        return await build_report(config(services), store, MONTH, now=NOW)
    finally:
        await store.aclose()


def main() -> None:
    """Seed once, then time compute, HTML and PDF ``--repeat`` times; print medians."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the last HTML and PDF here")
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "month.sqlite3"
        started = time.perf_counter()
        rows = seed(path, args.services)
        elapsed = time.perf_counter() - started
        print(f"seeded {rows:,} minute rollups + decisions in {elapsed:.1f} s")
        times: dict[str, list[float]] = {"compute": [], "charts": [], "html": [], "pdf": []}
        report: Any = None
        html = pdf = b""
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = asyncio.run(compute(path, args.services))
            times["compute"].append(time.perf_counter() - started)
            started = time.perf_counter()
            charts = draw_charts(report)
            times["charts"].append(time.perf_counter() - started)
            started = time.perf_counter()
            html = render_html(report, charts=charts)
            times["html"].append(time.perf_counter() - started)
            started = time.perf_counter()
            pdf = html_to_pdf(render_html(report, charts=charts, for_print=True))
            times["pdf"].append(time.perf_counter() - started)
            print(
                "run: "
                + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
                + f" (total {sum(v[-1] for v in times.values()):.2f} s)",
                flush=True,
            )
        medians = {k: statistics.median(v) for k, v in times.items()}
        assert report is not None
        assert len(report.objectives()) == args.services * 3
        print(
            f"{args.services} services x 3 objectives, {MONTH}: compute {medians['compute']:.2f} s,"
            f" charts {medians['charts']:.2f} s, HTML {medians['html']:.2f} s"
            f" ({len(html) / 1e6:.1f} MB),"
            f" PDF {medians['pdf']:.2f} s ({len(pdf) / 1e6:.1f} MB);"
            f" total {sum(medians.values()):.2f} s (medians of {args.repeat})"
        )
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            (args.keep / "report.html").write_bytes(html)
            (args.keep / "report.pdf").write_bytes(pdf)


if __name__ == "__main__":
    main()
