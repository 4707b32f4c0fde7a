"""The ``sla-monitor`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from monitor import __version__
from monitor.config import Config, load_config, missing_secrets
from monitor.errors import ConfigError, SlaMonitorError
from monitor.timeparse import format_local, iso_local, parse_duration_s, parse_instant

if TYPE_CHECKING:
    from monitor.store import MaintenanceRecord, SqliteStore

log = logging.getLogger("sla-monitor")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2  # a bad config or argument: the user must change something


def _demo_config() -> Path:
    """config/demo.yaml: beside the code in a checkout, under share/ once pip-installed."""
    checkout = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"
    installed = Path(sys.prefix) / "share" / "sla-monitor" / "demo.yaml"
    return checkout if checkout.exists() else installed


DEMO_CONFIG = _demo_config()


class _UsageError(SlaMonitorError):
    """A bad argument that argparse could not catch (it needs the config)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sla-monitor",
        description="Network-service SLA monitor: probes, exact SLA figures, metrics.",
    )
    parser.add_argument("--version", action="version", version=f"sla-monitor {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", required=True, type=Path, help="config file (YAML)")

    demo = commands.add_parser(
        "demo", help="embedded broker + simulator + daemon on the demo config"
    )
    demo.add_argument("--config", type=Path, default=DEMO_CONFIG, help=argparse.SUPPRESS)

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("path", type=Path)

    simulate = commands.add_parser("simulate", help="run the simulated network alone")
    simulate.add_argument("--config", required=True, type=Path)

    _add_maintenance_parser(commands)

    from monitor.cli.alerts import add_alerts_parser
    from monitor.cli.report import add_report_parser

    add_report_parser(commands)
    add_alerts_parser(commands)

    rules = commands.add_parser(
        "rules", help="write Prometheus recording and alerting rules generated from the config"
    )
    rules.add_argument("--out", required=True, type=Path, help="directory to write the rules to")
    rules.add_argument(
        "--config", type=Path, default=DEMO_CONFIG, help="config file (default: the demo config)"
    )

    boards = commands.add_parser(
        "dashboards",
        help="write Grafana dashboards generated from the config (or `preview` them as a PNG)",
    )
    boards.add_argument("action", nargs="?", choices=["write", "preview"], default="write")
    boards.add_argument(
        "--config", type=Path, default=DEMO_CONFIG, help="config file (default: the demo config)"
    )
    boards.add_argument("--out", required=True, type=Path, help="directory (write) or PNG path")
    boards.add_argument("--prometheus", metavar="URL", help="Prometheus base URL (preview)")
    return parser


def _add_maintenance_parser(commands: Any) -> None:
    """``maintenance add|list|remove``."""
    maintenance = commands.add_parser(
        "maintenance",
        help="announce planned maintenance (add, list, remove)",
        description="Planned-maintenance windows, stored beside the results; the running "
        "daemon picks changes up within seconds. Times are ISO 8601 (e.g. 2026-12-01T02:00, "
        "local to the config's time zone unless they carry an offset) or 'now'.",
    )
    actions = maintenance.add_subparsers(dest="action", required=True, metavar="ACTION")
    config_help = "config file (YAML): the store path, the time zone and the services"
    by_help = "who does this (default: $USER, else 'cli')"

    add = actions.add_parser("add", help="announce a maintenance window")
    add.add_argument("--config", required=True, type=Path, metavar="PATH", help=config_help)
    add.add_argument("--service", required=True, metavar="NAME", help="a service of the config")
    add.add_argument("--start", required=True, metavar="TIME", help="when it starts")
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument("--end", metavar="TIME", help="when it ends (exclusive)")
    until.add_argument("--duration", metavar="DURATION", help="how long, e.g. 90m or 2h")
    add.add_argument("--reason", required=True, metavar="TEXT", help="shown to users and reports")
    add.add_argument(
        "--announced-at",
        metavar="TIME",
        default="now",
        help="when users were told (default: now); minutes before it still count",
    )
    add.add_argument("--by", metavar="NAME", help=by_help)

    show = actions.add_parser("list", help="list maintenance windows")
    show.add_argument("--config", required=True, type=Path, metavar="PATH", help=config_help)
    show.add_argument("--service", metavar="NAME", help="only this service")
    show.add_argument("--all", action="store_true", help="include removed windows")
    show.add_argument("--format", choices=["table", "json"], default="table")

    remove = actions.add_parser("remove", help="remove a window (kept for the audit trail)")
    remove.add_argument("id", help="the window's id, as `list` shows it")
    remove.add_argument("--config", required=True, type=Path, metavar="PATH", help=config_help)
    remove.add_argument("--by", metavar="NAME", help=by_help)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "check-config":
            return _check_config(args.path)
        config = load_config(args.config)
        if args.command in ("run", "demo") and (missing := missing_secrets(config)):
            raise ConfigError("\n".join(f"{args.config}: {m}" for m in missing))
        if args.command == "run":
            return _run_until_signal(lambda stop: _run(config, stop))
        if args.command == "demo":
            return _run_until_signal(lambda stop: _demo(config, stop))
        if args.command == "simulate":
            return _run_until_signal(lambda stop: _simulate(config, stop))
        if args.command == "maintenance":
            return _maintenance(config, args)
        if args.command == "rules":
            return _rules(config, args.out)
        if args.command == "alerts":
            from monitor.cli.alerts import run_alerts

            return run_alerts(config, args)
        if args.command == "report":
            from monitor.cli.report import run_report

            return run_report(config, args)
        if args.command == "dashboards":
            return _dashboards(config, args)
    except ConfigError as exc:
        print(f"sla-monitor: config error:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except _UsageError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SlaMonitorError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # e.g. the listen port is taken
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    raise AssertionError(f"unhandled command {args.command}")


def _check_config(path: Path) -> int:
    config = load_config(path)
    probes = sum(len(s.probes) for s in config.services)
    objectives = sum(len(s.objectives) for s in config.services)
    print(f"{path}: OK ({len(config.services)} services, {probes} probes, {objectives} objectives)")
    return EXIT_OK


def _rules(config: Config, out: Path) -> int:
    from monitor.generate.rules import write_rules

    for path in write_rules(config, out):
        print(path)
    return EXIT_OK


def _dashboards(config: Config, args: argparse.Namespace) -> int:
    from monitor.generate import dashboards

    if args.action == "preview":
        if not args.prometheus:
            raise _UsageError("dashboards preview needs --prometheus URL")
        from monitor.generate.preview import preview

        print(preview(config, args.prometheus, args.out))
        return EXIT_OK
    for path in dashboards.write_dashboards(config, args.out):
        print(path)
    return EXIT_OK


def _run_until_signal(body: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run ``body`` until SIGTERM or SIGINT sets its stop event."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # The handler only sets the event; shutdown happens in order in `body`.
            loop.add_signal_handler(sig, stop.set)
        await body(stop)

    asyncio.run(main())
    return EXIT_OK


async def _run(config: Config, stop: asyncio.Event) -> None:
    from monitor.app import Daemon

    await Daemon(config).run(stop)


async def _simulate(config: Config, stop: asyncio.Event) -> None:
    from simulator.network import run_simulator

    if config.simulator is None:
        raise ConfigError("the config has no simulator: section")
    await run_simulator(config.simulator, config.brokers, stop)


async def _demo(config: Config, stop: asyncio.Event) -> None:
    from monitor.app import Daemon
    from monitor.embedded_broker import EmbeddedBroker
    from simulator.network import Simulator

    if config.simulator is None:
        raise ConfigError("the demo config has no simulator: section")
    brokers = [EmbeddedBroker(b.host, b.port) for b in config.brokers.values()]
    for broker in brokers:
        await broker.start()
    try:
        async with Simulator(config.simulator, config.brokers, keep_records=False):
            daemon = Daemon(config)
            task = asyncio.create_task(daemon.run(stop))
            ready = asyncio.create_task(daemon.ready.wait())
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            if daemon.ready.is_set():
                url = daemon.server.url
                print(
                    "\nsla-monitor demo is running (Ctrl-C to stop):\n"
                    f"  SLA figures (JSON)   {url}/api/sla\n"
                    f"  Prometheus metrics   {url}/metrics\n"
                    f"  health               {url}/healthz\n"
                    f"  store                {config.storage.path}\n"
                    "Figures fill in as results arrive; after a minute every objective has one.\n",
                    flush=True,
                )
            else:
                ready.cancel()
            await task
    finally:
        for broker in brokers:
            await broker.stop()


# --- maintenance ----------------------------------------------------------------------------


def _maintenance(config: Config, args: argparse.Namespace) -> int:
    """Run one ``maintenance`` action; every argument is checked before the store is opened."""
    now = time.time()
    service: str | None = getattr(args, "service", None)
    if service is not None:
        _known_service(config, service)
    if args.action == "add":
        action = _planned_add(config, args, now)
    elif args.action == "list":
        action = _listing(config, args, now)
    else:
        action = _removal(config, args)
    return asyncio.run(_with_store(config, action))


_Action = Callable[["SqliteStore"], Awaitable[int]]


async def _with_store(config: Config, action: _Action) -> int:
    from monitor.store import SqliteStore

    # Relative paths resolve against the working directory, as for `run`.
    store = SqliteStore(config.storage.path)
    try:
        await store.open()
        return await action(store)
    finally:
        await store.aclose()


def _known_service(config: Config, name: str) -> None:
    names = [s.name for s in config.services]
    if name not in names:
        raise _UsageError(f"unknown service {name!r} (the config has: {', '.join(names)})")


def _instant(option: str, text: str, zone: ZoneInfo, now: float) -> float:
    try:
        return parse_instant(text, zone, now)
    except ValueError as exc:
        raise _UsageError(f"{option}: {exc}") from None


def _who(by: str | None) -> str:
    return by or os.environ.get("USER") or "cli"


def _planned_add(config: Config, args: argparse.Namespace, now: float) -> _Action:
    zone = config.zone
    start = _instant("--start", args.start, zone, now)
    if args.end is not None:
        end = _instant("--end", args.end, zone, now)
    else:
        try:
            end = start + parse_duration_s(args.duration)
            format_local(end, zone)  # beyond year 9999 it cannot be shown, nor meant
        except (ValueError, OverflowError) as exc:
            raise _UsageError(f"--duration: {exc}") from None
    if end <= start:
        raise _UsageError(
            f"the window must end after it starts ({format_local(start, zone)} to"
            f" {format_local(end, zone)})"
        )
    announced_at = _instant("--announced-at", args.announced_at, zone, now)
    reason = " ".join(args.reason.split())
    if not reason:
        raise _UsageError("--reason must not be empty: users and reports show it")
    created_by = _who(args.by)

    async def add(store: SqliteStore) -> int:
        from monitor.clock import SystemClock
        from monitor.maintenance import MaintenanceError, MaintenanceService

        # The daemon's own service: the running daemon reloads and announces the window.
        service = MaintenanceService(config, store, SystemClock())
        try:
            window = await service.add(
                args.service,
                start,
                end,
                reason,
                created_by,
                announced_at=announced_at,
                allow_past=True,  # a window agreed late, registered for a report correction
            )
        except MaintenanceError as exc:
            raise _UsageError(str(exc)) from None
        print(
            f"added maintenance {window.id}: {window.service}"
            f" {format_local(window.start, zone)} to {format_local(window.end, zone)}"
            f" ({window.reason})"
        )
        if late := _late_note(start, end, announced_at, zone):
            print(f"sla-monitor: note: {late}", file=sys.stderr)
        return EXIT_OK

    return add


def _late_note(start: float, end: float, announced_at: float, zone: ZoneInfo) -> str | None:
    """What a late announcement means for the SLA, or None when it came in advance."""
    if announced_at <= start:
        return None
    announced = format_local(announced_at, zone)
    if announced_at >= end:
        return (
            f"announced at {announced}, after the window ended: it excludes nothing, "
            "the whole window counts towards availability"
        )
    minutes = math.ceil((announced_at - start) / 60)
    return (
        f"announced at {announced}, {minutes} min after the window started: the minutes "
        f"from {format_local(start, zone)} until the announcement still count towards "
        "availability"
    )


def _status(record: MaintenanceRecord, now: float) -> str:
    if record.removed:
        return "removed"
    if now < record.window.start:
        return "upcoming"
    return "ongoing" if now < record.window.end else "past"


def _as_json(record: MaintenanceRecord, zone: ZoneInfo, now: float) -> dict[str, object]:
    window = record.window
    return {
        "id": window.id,
        "service": window.service,
        "start": iso_local(window.start, zone),
        "end": iso_local(window.end, zone),
        "reason": window.reason,
        "announced_at": iso_local(window.announced_at, zone),
        "announced_late": window.announced_at > window.start,
        "status": _status(record, now),
        "source": window.source,
        "created_by": record.created_by,
        "created_at": iso_local(record.created_at, zone),
        "removed_at": None if record.removed_at is None else iso_local(record.removed_at, zone),
        "removed_by": record.removed_by,
    }


def _table(records: list[MaintenanceRecord], zone: ZoneInfo, now: float) -> str:
    header = ("ID", "SERVICE", "START", "END", "ANNOUNCED", "STATUS", "REASON")
    rows = [
        (
            r.window.id,
            r.window.service,
            format_local(r.window.start, zone),
            format_local(r.window.end, zone),
            format_local(r.window.announced_at, zone)
            + (" (late)" if r.window.announced_at > r.window.start else ""),
            _status(r, now),
            r.window.reason,
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in [header, *rows]
    )


def _listing(config: Config, args: argparse.Namespace, now: float) -> _Action:
    zone = config.zone

    async def show(store: SqliteStore) -> int:
        records = await store.maintenance_records(include_removed=args.all)
        if args.service is not None:
            records = [r for r in records if r.window.service == args.service]
        if args.format == "json":
            print(json.dumps([_as_json(r, zone, now) for r in records], indent=2))
        elif records:
            print(_table(records, zone, now))
        else:
            print("no maintenance windows" + ("" if args.all else " (--all shows removed ones)"))
        return EXIT_OK

    return show


def _removal(config: Config, args: argparse.Namespace) -> _Action:
    zone = config.zone
    removed_by = _who(args.by)
    if args.id.startswith("cfg-"):
        raise _UsageError(f"maintenance {args.id} comes from the config file: remove it there")

    async def remove(store: SqliteStore) -> int:
        from monitor.clock import SystemClock
        from monitor.maintenance import MaintenanceError, MaintenanceService

        service = MaintenanceService(config, store, SystemClock())
        try:
            window = await service.remove(args.id, removed_by)
            removed = True
        except MaintenanceError:
            removed = False
        known = {r.window.id: r for r in await service.records(include_removed=True)}
        record = known.get(args.id)
        if record is None or record.removed_at is None:
            raise _UsageError(f"no maintenance window with id {args.id!r}")
        if removed:
            print(
                f"removed maintenance {window.id}: {window.service}"
                f" {format_local(window.start, zone)} to {format_local(window.end, zone)}"
                f" ({window.reason})"
            )
            return EXIT_OK
        raise _UsageError(
            f"maintenance {args.id} was already removed"
            f" ({format_local(record.removed_at, zone)} by {record.removed_by})"
        )

    return remove
