"""``sla-monitor report``: the monthly report, the yearly summary, archived versions and
corrections, from the command line.

Exit codes: 0 done; 1 nothing to report (the month has no data) or a runtime failure;
2 a bad argument (``2026-13``, ``last``, a format the output cannot take).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from monitor.cli.common import add_config_option
from monitor.config import Config
from monitor.contract import LANGUAGES
from monitor.errors import SlaMonitorError
from monitor.report.archive import Produced, ReportArchive, Version, correct, output, produce
from monitor.report.model import (
    BadMonthError,
    Month,
    MonthStatus,
    NoDataError,
    Progress,
    Report,
    ReportError,
    UnmonitoredSpan,
    parse_year,
)
from monitor.report.render import FORMATS, render_year
from monitor.report.year import year_report
from monitor.store.locate import is_database
from monitor.timeparse import parse_instant

EXIT_OK = 0
EXIT_NO_DATA = 1
EXIT_USAGE = 2

_SUFFIXES = {
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".md": "md",
    ".json": "json",
    ".csv": "csv",
}


class ReportUsageError(ReportError):
    """A bad combination of arguments."""


def add_report_parser(commands: Any) -> None:
    """``report [correct] --config PATH (--month YYYY-MM | --year YYYY) ...``."""
    report = commands.add_parser(
        "report",
        help="the monthly SLA report (html, pdf, md, json, csv), yearly summary, versions",
        description="The monthly SLA report from the store. A closed month is archived the "
        "first time it is reported and served from the archive after that; a month not over "
        "is marked provisional. 'report correct' records a correction (who, when, why) and "
        "archives a new version. Exit codes: 0 done, 1 no data, 2 bad argument.",
    )
    report.add_argument(
        "action", nargs="?", choices=["correct"], help="correct: archive a corrected version"
    )
    add_config_option(report)
    when = report.add_mutually_exclusive_group(required=True)
    when.add_argument("--month", metavar="YYYY-MM", help="calendar month, config time zone")
    when.add_argument("--year", metavar="YYYY", help="yearly summary: each month side by side")
    report.add_argument("--service", metavar="NAME", help="only this service")
    report.add_argument(
        "--format", choices=FORMATS, help="default: from --out's suffix, else md on stdout"
    )
    report.add_argument("--out", type=Path, metavar="PATH", help="file to write (default stdout)")
    report.add_argument(
        "--lang",
        choices=LANGUAGES,
        help="html and pdf in this language, rendered from the archived figures (default: "
        "the archived document, in the contract's first language)",
    )
    report.add_argument(
        "--versions", action="store_true", help="list the month's archived versions"
    )
    report.add_argument("--reason", metavar="TEXT", help="correct: why (kept in the report)")
    report.add_argument("--by", metavar="NAME", help="correct: who (default: $USER)")
    report.add_argument(
        "--unmonitored",
        nargs=2,
        action="append",
        default=[],
        metavar=("START", "END"),
        help="correct: the monitor was faulty from START to END (ISO times): count those "
        "minutes as unmonitored (with --service: that service only); repeatable",
    )


def run_report(config: Config, args: argparse.Namespace, now: float | None = None) -> int:
    """Run ``sla-monitor report``; prints its own errors and returns the exit code."""
    try:
        month = Month.parse(args.month) if args.month is not None else None
        year = parse_year(args.year) if args.year is not None else None
        _check(config, args)
        fmt = _format(args)
        if fmt == "pdf" and args.out is None and not args.versions:
            raise ReportUsageError("a PDF needs --out PATH")
        archive = ReportArchive(config.reports.directory, config.storage.url)
        if args.versions and month is not None:
            return _list_versions(archive, month, fmt == "json")
        location = config.storage.location
        if not is_database(location) and not Path(location).exists():
            raise NoDataError(
                f"no data: the store {location} does not exist (has the monitor run?)"
            )
        moment = time.time() if now is None else now
        data = asyncio.run(_run(config, args, location, archive, month, year, fmt, moment))
        _write(data, args.out)
        return EXIT_OK
    except (BadMonthError, ReportUsageError) as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NoDataError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_NO_DATA
    except SlaMonitorError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_NO_DATA


def _format(args: argparse.Namespace) -> str:
    if args.format is not None:
        return str(args.format)
    if args.out is not None:
        fmt = _SUFFIXES.get(args.out.suffix.lower())
        if fmt is None:
            raise ReportUsageError(f"--out {args.out}: give --format (html, pdf, md, json, csv)")
        return fmt
    return "md"


def _check(config: Config, args: argparse.Namespace) -> None:
    names = [s.name for s in config.services]
    if args.service is not None and args.service not in names:
        known = ", ".join(names)
        raise ReportUsageError(f"unknown service {args.service!r} (the config has: {known})")
    if args.action == "correct":
        if args.month is None:
            raise ReportUsageError("report correct needs --month")
        if not (args.reason or "").strip():
            raise ReportUsageError("report correct needs --reason: why the figures change")
    elif args.reason or args.unmonitored or args.by:
        raise ReportUsageError("--reason, --by and --unmonitored go with 'report correct'")
    if args.versions and args.month is None:
        raise ReportUsageError("--versions needs --month")


async def _run(
    config: Config,
    args: argparse.Namespace,
    location: str,
    archive: ReportArchive,
    month: Month | None,
    year: int | None,
    fmt: str,
    now: float,
) -> bytes:
    from monitor.store import store_at

    store = store_at(location)
    await store.open()
    try:
        with _progress_bar() as progress:
            if year is not None:
                return await _year(config, store, archive, year, now, fmt, args.service)
            assert month is not None
            if args.action == "correct":
                return await _correct(config, store, archive, month, now, args, fmt, progress)
            produced = await produce(
                config,
                store,
                archive,
                month,
                now=now,
                created_by=f"cli:{_user()}",
                progress=progress,
            )
            _describe(produced.report, produced.version, produced.created)
            return output(produced, archive, fmt, args.service, progress, args.lang)
    finally:
        await store.aclose()


async def _correct(
    config: Config,
    store: Any,
    archive: ReportArchive,
    month: Month,
    now: float,
    args: argparse.Namespace,
    fmt: str,
    progress: Progress | None,
) -> bytes:
    spans = []
    for start_text, end_text in args.unmonitored:
        try:
            start = parse_instant(start_text, config.zone, now)
            end = parse_instant(end_text, config.zone, now)
        except ValueError as exc:
            raise ReportUsageError(f"--unmonitored: {exc}") from None
        if end <= start:
            raise ReportUsageError(f"--unmonitored: {end_text} is not after {start_text}")
        spans.append(UnmonitoredSpan(service=args.service, start=start, end=end))
    version = await correct(
        config,
        store,
        archive,
        month,
        now=now,
        by=args.by or _user(),
        reason=args.reason,
        unmonitored=spans,
        progress=progress,
    )
    report = archive.report(version)
    print(
        f"sla-monitor: {month} corrected: version {version.number} archived in {version.path}"
        f" (correction {report.corrections[-1].number}: {report.corrections[-1].reason})",
        file=sys.stderr,
    )
    return output(Produced(report, version, True), archive, fmt, args.service, progress, args.lang)


async def _year(
    config: Config,
    store: Any,
    archive: ReportArchive,
    year: int,
    now: float,
    fmt: str,
    service: str | None,
) -> bytes:
    months: list[tuple[Month, Report | None, MonthStatus]] = []
    for number in range(1, 13):
        month = Month(year, number)
        first, _ = month.bounds(config.zone)
        if first * 60 > now:
            months.append((month, None, "not started"))
            continue
        try:
            produced = await produce(
                config, store, archive, month, now=now, created_by=f"cli:{_user()}"
            )
        except NoDataError:
            months.append((month, None, "no data"))
            continue
        report = produced.report if service is None else produced.report.only(service)
        months.append((month, report, "provisional" if report.period.provisional else "final"))
    if all(report is None for _, report, _ in months):
        raise NoDataError(f"no data for any month of {year}")
    summary = year_report(config, year, months, now)
    if service is not None:
        summary.rows = [r for r in summary.rows if r.service == service]
    return render_year(summary, fmt)


def _describe(report: Report, version: Version | None, created: bool) -> None:
    """One line on stderr: what was produced and where it came from."""
    period = report.period
    if version is None:
        origin = f"provisional, to {period.end}"
    elif created:
        origin = f"archived now as version {version.number} in {version.path}"
    else:
        origin = f"archived version {version.number} (figures SHA-256 {version.figures_sha256})"
    print(f"sla-monitor: report {period.month}: {report.verdict}; {origin}", file=sys.stderr)


def _list_versions(archive: ReportArchive, month: Month, as_json: bool) -> int:
    versions = archive.versions(month)
    if as_json:
        print(json.dumps([v.to_dict() for v in versions], indent=2))
        return EXIT_OK
    if not versions:
        print(f"no archived version of {month} (a closed month is archived when first reported)")
        return EXIT_OK
    for version in versions:
        report = archive.report(version)  # checks the hash
        added = [c for c in report.corrections if c.number in version.corrections_added]
        why = "; ".join(f"correction {c.number} by {c.by}: {c.reason}" for c in added)
        print(
            f"v{version.number}  {version.created_at}  by {version.created_by}  "
            f"{report.verdict}  sha256 {version.figures_sha256[:16]}  "
            f"{','.join(sorted(version.documents))}  {why or 'original'}"
        )
    return EXIT_OK


def _write(data: bytes, out: Path | None) -> None:
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, out)  # never a half-written report at the path
    print(f"sla-monitor: wrote {out} ({len(data):,} bytes)", file=sys.stderr)


def _user() -> str:
    return os.environ.get("USER") or "cli"


@contextmanager
def _progress_bar() -> Iterator[Progress | None]:
    """A progress bar on stderr when it is a terminal and the ``progress`` extra (rich) is
    installed; None otherwise."""
    if not sys.stderr.isatty() or importlib.util.find_spec("rich") is None:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress as RichProgress

    labels = {"days": "reading days", "charts": "drawing charts", "pdf": "rendering PDF"}
    with RichProgress(console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(labels.get(what, what), total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield update
