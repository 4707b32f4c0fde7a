"""``sla-monitor evidence --month YYYY-MM --out DIR``: the month's evidence pack
(``monitor.evidence.pack``): raw results, minute decisions, maintenance with its
announcements, batch events, the config and the archived reports, with SHA-256 sums.

Exit codes: 0 written; 1 no store; 2 a bad argument (a bad month, a folder not empty).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from monitor.cli.common import add_config_option
from monitor.config import Config
from monitor.errors import SlaMonitorError
from monitor.evidence.pack import Pack, PackError, write_pack
from monitor.report.model import BadMonthError, Month
from monitor.store.locate import is_database

EXIT_OK, EXIT_NO_DATA, EXIT_USAGE = 0, 1, 2


def add_evidence_parser(commands: Any) -> None:
    """``evidence --config PATH --month YYYY-MM --out DIR``."""
    evidence = commands.add_parser(
        "evidence",
        help="write a month's evidence pack: raw results, minute decisions, maintenance, "
        "reports, SHA-256 sums",
        description="Everything a month's figures were computed from, in CSV files another "
        "party can check without sla-monitor (README.txt in the pack says what each column "
        "holds; sha256sum -c SHA256SUMS checks it). Exit codes: 0 written, 1 no store, "
        "2 bad argument.",
    )
    add_config_option(evidence)
    evidence.add_argument("--month", required=True, metavar="YYYY-MM", help="config time zone")
    evidence.add_argument("--out", required=True, type=Path, metavar="DIR", help="a new folder")


def run_evidence(config: Config, config_file: Path, args: argparse.Namespace) -> int:
    """Run ``sla-monitor evidence``; prints its own errors and returns the exit code."""
    try:
        month = Month.parse(args.month)
    except BadMonthError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    location = config.storage.location
    if not is_database(location) and not Path(location).exists():
        print(f"sla-monitor: no data: the store {location} does not exist", file=sys.stderr)
        return EXIT_NO_DATA
    try:
        pack = asyncio.run(_write(config, config_file, location, month, args.out))
    except PackError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SlaMonitorError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_NO_DATA
    print(
        f"evidence of {month} in {pack.folder}: {pack.results} results, {pack.minutes} minute"
        f" rows, {pack.maintenance} maintenance windows, {pack.batch_events} batch events,"
        f" {pack.report_versions} report versions; check it with: cd {pack.folder} &&"
        " sha256sum -c SHA256SUMS"
    )
    return EXIT_OK


async def _write(config: Config, config_file: Path, location: str, month: Month, out: Path) -> Pack:
    from monitor.store import store_at

    store = store_at(location)
    await store.open()
    try:
        reports = Path(config.reports.directory)
        if config.storage.url is not None:
            from monitor.report.archive import ReportArchive

            # The versions other hosts archived, into this host's folder the pack copies.
            await asyncio.to_thread(ReportArchive(reports, config.storage.url).versions, month)
        return await write_pack(store, month, config.zone, out, config_file, reports)
    finally:
        await store.aclose()
