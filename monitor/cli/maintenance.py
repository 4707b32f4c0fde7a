"""``sla-monitor maintenance add|list|remove``: announce planned maintenance.

When the daemon runs (it answers at ``server.listen``) and the environment holds an API
token for the maintenance scope, the command goes through its API: the daemon validates,
stores and announces once. Otherwise it writes the store with the daemon's own maintenance
service (``monitor.maintenance``), says so, and a running daemon reloads the store within
seconds. A window registered after the fact (back-dated, or already over) is a correction
for the report: it always goes to the store, where the CLI may record it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import math
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from monitor.cli.common import EXIT_OK, UsageError, table
from monitor.cli.daemon import DaemonApi
from monitor.config import Config, Scope
from monitor.store.locate import shown
from monitor.timeparse import (
    RANGE_TEXT,
    format_local,
    in_range,
    iso_local,
    parse_duration_s,
    parse_instant,
)

if TYPE_CHECKING:
    from monitor.store import MaintenanceRecord, Store


def add_maintenance_parser(commands: Any) -> None:
    """``maintenance add|list|remove``."""
    maintenance = commands.add_parser(
        "maintenance",
        help="announce planned maintenance (add, list, remove)",
        description="Planned-maintenance windows, stored beside the results; the running "
        "daemon picks changes up within seconds. Times are ISO 8601 (e.g. 2026-12-01T02:00, "
        "local to the config's time zone unless they carry an offset) or 'now'.",
    )
    actions = maintenance.add_subparsers(dest="action", required=True, metavar="ACTION")
    config_help = (
        "config file: the store path, the time zone and the services (default:"
        " $SLA_MONITOR_CONFIG, then ./sla-monitor.yaml, then /etc/sla-monitor/config.yaml)"
    )
    by_help = "who does this (default: $USER, else 'cli')"

    add = actions.add_parser("add", help="announce a maintenance window")
    add.add_argument("--config", type=Path, metavar="PATH", help=config_help)
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
    add.add_argument(
        "--correction",
        metavar="WHY",
        help="needed when --announced-at is in the past: why (the report shows it)",
    )
    add.add_argument("--by", metavar="NAME", help=by_help)

    show = actions.add_parser("list", help="list maintenance windows")
    show.add_argument("--config", type=Path, metavar="PATH", help=config_help)
    show.add_argument("--service", metavar="NAME", help="only this service")
    show.add_argument("--all", action="store_true", help="include removed windows")
    show.add_argument("--format", choices=["table", "json"], default="table")

    remove = actions.add_parser("remove", help="remove a window (kept for the audit trail)")
    remove.add_argument("id", help="the window's id, as `list` shows it")
    remove.add_argument("--config", type=Path, metavar="PATH", help=config_help)
    remove.add_argument("--by", metavar="NAME", help=by_help)


# --- maintenance ----------------------------------------------------------------------------


def run_maintenance(config: Config, args: argparse.Namespace) -> int:
    """Run one ``maintenance`` action, through the running daemon's API when it can, else
    on the store; every argument is checked first."""
    now = time.time()
    service: str | None = getattr(args, "service", None)
    if service is not None:
        _known_service(config, service)
    api = DaemonApi(config)
    action: _Action
    if args.action == "add":
        planned = action = _planned_add(config, args, now)
        after_the_fact = args.announced_at != "now" or args.correction or planned.end <= now
        why_not = "a window registered after the fact is a correction" if after_the_fact else None
        via = _via(api, "maintenance", why_not)
        if via is not None:
            return _add_through(api, via, config, args, planned)
    elif args.action == "list":
        action = _listing(config, args, now)
        via = _via(api, "read", "removed windows are kept in the store only" if args.all else None)
        if via is not None:
            return _list_through(api, via, config, args)
    else:
        action = _removal(config, args)
        via = _via(api, "maintenance", None)
        if via is not None:
            return _remove_through(api, via, config, args)
    return asyncio.run(_with_store(config, action))


def _via(api: DaemonApi, scope: Scope, why_not: str | None) -> str | None:
    """The token to go through the daemon's API with ("" for a read without one), or None
    to use the store, saying why on stderr."""
    answering = api.answering()
    if answering != api.store_id:
        what = "no daemon answers" if answering is None else "the daemon there writes another store"
        _note(f"{what} at {api.base}: using the store {shown(api.config.storage.location)}")
        return None
    if why_not is not None:
        _note(f"{why_not}: using the store; the daemon reloads it within seconds")
        return None
    token = api.token(scope)
    if token is None and (scope != "read" or not api.config.server.public_reads):
        _note(
            f"the daemon at {api.base} runs, but no API token with the {scope} scope is in the"
            " environment: using the store; the daemon reloads it within seconds"
        )
        return None
    return token or ""


def _note(text: str) -> None:
    print(f"sla-monitor: {text}", file=sys.stderr)


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _add_through(
    api: DaemonApi, token: str, config: Config, args: argparse.Namespace, add: _Add
) -> int:
    zone = config.zone
    answer = api.call(
        "POST",
        "/api/maintenance",
        token=token,
        json={
            "service": args.service,
            "start": _utc(add.start),
            "end": _utc(add.end),
            "reason": add.reason,
            "by": add.created_by,
        },
    )
    window = answer["maintenance"]
    print(
        f"added maintenance {window['id']} through the daemon at {api.base}: {window['service']}"
        f" {format_local(_epoch(window['start']), zone)} to"
        f" {format_local(_epoch(window['end']), zone)} ({window['reason']})"
    )
    return EXIT_OK


def _list_through(api: DaemonApi, token: str, config: Config, args: argparse.Namespace) -> int:
    params = {"scope": "all"}
    if args.service is not None:
        params["service"] = args.service
    windows = api.call("GET", "/api/maintenance", token=token or None, params=params)
    found = windows["maintenance"]
    _note(f"from the daemon at {api.base} (windows of the config file included)")
    zone = config.zone
    if args.format == "json":
        for window in found:
            for key in ("start", "end", "announced_at"):
                window[key] = iso_local(_epoch(window[key]), zone)
        print(json.dumps(found, indent=2))
    elif found:
        rows = [
            (
                w["id"],
                w["service"],
                format_local(_epoch(w["start"]), zone),
                format_local(_epoch(w["end"]), zone),
                format_local(_epoch(w["announced_at"]), zone)
                + (" (late)" if _epoch(w["announced_at"]) > _epoch(w["start"]) else ""),
                w["status"],
                w["reason"],
            )
            for w in found
        ]
        print(table(_HEADER, rows))
    else:
        print("no maintenance windows (--all shows removed ones)")
    return EXIT_OK


def _remove_through(api: DaemonApi, token: str, config: Config, args: argparse.Namespace) -> int:
    answer = api.call(
        "DELETE",
        f"/api/maintenance/{args.id}",
        token=token,
        params={"by": _who(args.by)},
    )
    window = answer["removed"]
    zone = config.zone
    print(
        f"removed maintenance {window['id']} through the daemon at {api.base}:"
        f" {window['service']} {format_local(_epoch(window['start']), zone)} to"
        f" {format_local(_epoch(window['end']), zone)} ({window['reason']})"
    )
    return EXIT_OK


_Action = Callable[["Store"], Awaitable[int]]


async def _with_store(config: Config, action: _Action) -> int:
    from monitor.store import store_at

    # Relative paths resolve against the working directory, as for `run`.
    store = store_at(config.storage.location)
    try:
        await store.open()
        return await action(store)
    finally:
        await store.aclose()


def _known_service(config: Config, name: str) -> None:
    names = [s.name for s in config.services]
    if name not in names:
        raise UsageError(f"unknown service {name!r} (the config has: {', '.join(names)})")


def _instant(option: str, text: str, zone: ZoneInfo, now: float) -> float:
    try:
        return parse_instant(text, zone, now)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _who(by: str | None) -> str:
    return by or os.environ.get("USER") or "cli"


def _origin() -> str:
    """Where a CLI announcement comes from: the local account, not the ``--by`` claim."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a bare container)
        user = f"uid {os.getuid()}"
    return f"cli {user}@{socket.gethostname()}"


@dataclass(frozen=True)
class _Add:
    """A checked ``maintenance add``: its times and words, and how to write it to the store."""

    start: float
    end: float
    reason: str
    created_by: str
    store: _Action

    async def __call__(self, store: Store) -> int:
        return await self.store(store)


def _planned_add(config: Config, args: argparse.Namespace, now: float) -> _Add:
    zone = config.zone
    start = _instant("--start", args.start, zone, now)
    if args.end is not None:
        end = _instant("--end", args.end, zone, now)
    else:
        try:
            end = start + parse_duration_s(args.duration)
        except ValueError as exc:
            raise UsageError(f"--duration: {exc}") from None
        if not in_range(end):
            raise UsageError(
                f"--duration: {args.duration!r} ends the window out of range: times must lie"
                f" between {RANGE_TEXT}"
            )
    if end <= start:
        raise UsageError(
            f"the window must end after it starts ({format_local(start, zone)} to"
            f" {format_local(end, zone)})"
        )
    announced_at = _instant("--announced-at", args.announced_at, zone, now)
    reason = " ".join(args.reason.split())
    if not reason:
        raise UsageError("--reason must not be empty: users and reports show it")
    created_by = _who(args.by)

    async def add(store: Store) -> int:
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
                correction=args.correction,
                origin=_origin(),
            )
        except MaintenanceError as exc:
            raise UsageError(str(exc)) from None
        print(
            f"added maintenance {window.id}: {window.service}"
            f" {format_local(window.start, zone)} to {format_local(window.end, zone)}"
            f" ({window.reason})"
        )
        if late := _late_note(start, end, announced_at, zone):
            print(f"sla-monitor: note: {late}", file=sys.stderr)
        return EXIT_OK

    return _Add(start, end, reason, created_by, add)


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
        "origin": record.origin,
        "created_at": iso_local(record.created_at, zone),
        "removed_at": None if record.removed_at is None else iso_local(record.removed_at, zone),
        "removed_by": record.removed_by,
    }


#: The columns of ``maintenance list``, read from the store or from the daemon.
_HEADER = ("ID", "SERVICE", "START", "END", "ANNOUNCED", "STATUS", "REASON")


def _table(records: list[MaintenanceRecord], zone: ZoneInfo, now: float) -> str:
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
    return table(_HEADER, rows)


def _listing(config: Config, args: argparse.Namespace, now: float) -> _Action:
    zone = config.zone

    async def show(store: Store) -> int:
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
        raise UsageError(f"maintenance {args.id} comes from the config file: remove it there")

    async def remove(store: Store) -> int:
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
            raise UsageError(f"no maintenance window with id {args.id!r}")
        if removed:
            print(
                f"removed maintenance {window.id}: {window.service}"
                f" {format_local(window.start, zone)} to {format_local(window.end, zone)}"
                f" ({window.reason})"
            )
            return EXIT_OK
        raise UsageError(
            f"maintenance {args.id} was already removed"
            f" ({format_local(record.removed_at, zone)} by {record.removed_by})"
        )

    return remove
