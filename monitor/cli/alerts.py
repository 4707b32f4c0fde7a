"""``sla-monitor alerts list|ack``: talks to the running daemon's API (its state is there)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from zoneinfo import ZoneInfo

from monitor.cli.common import UsageError, add_config_option, table
from monitor.cli.daemon import DaemonApi
from monitor.config import Config
from monitor.errors import SlaMonitorError
from monitor.timeparse import iso_local


def add_alerts_parser(commands: Any) -> None:
    """``alerts list`` and ``alerts ack ID``."""
    alerts = commands.add_parser(
        "alerts",
        help="list or acknowledge the running daemon's alerts",
        description="Reads and acknowledges alerts through the daemon's API at "
        "server.listen; acknowledging needs the bearer token from server.api_token_env.",
    )
    alerts.add_argument("action", choices=["list", "ack"])
    alerts.add_argument("alert_id", nargs="?", metavar="ID", help="ack: the alert's id")
    add_config_option(alerts)
    alerts.add_argument("--all", action="store_true", help="list: the history, not only active")
    alerts.add_argument("--by", metavar="NAME", help="ack: who (default: $USER)")
    alerts.add_argument("--url", metavar="URL", help="the daemon's base URL (default: from config)")
    alerts.add_argument(
        "--format", choices=["table", "json"], default="table", help="list: json for scripts"
    )


def run_alerts(config: Config, args: argparse.Namespace) -> int:
    """Run the ``alerts`` command; returns the exit code (2: bad request, 1: failure)."""
    try:
        return _run(config, args)
    except UsageError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return 2
    except SlaMonitorError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return 1


def _run(config: Config, args: argparse.Namespace) -> int:
    api = DaemonApi(config, args.url)
    if args.action == "list":
        status = "all" if args.all else "active"
        answer = api.call("GET", "/api/alerts", params={"status": status}, token=api.token("read"))
        _print_alerts(answer["alerts"], args.format, config.zone)
        return 0
    if not args.alert_id:
        raise UsageError("alerts ack needs the alert's ID (see `alerts list`)")
    token = api.token("alerts")
    if not token:
        raise UsageError(
            "acknowledging needs an API token with the alerts scope: set server.api_token_env"
            " (or a token under server.tokens) in the config and that environment variable"
        )
    by = args.by or os.environ.get("USER") or "cli"
    answer = api.call("POST", f"/api/alerts/{args.alert_id}/ack", json={"by": by}, token=token)
    alert = answer["alert"]
    print(f"acknowledged {alert['alert_id']} ({alert['rule']} {alert['service']}) by {by}")
    return 0


def _print_alerts(alerts: list[dict[str, Any]], fmt: str, zone: ZoneInfo) -> None:
    """As ``maintenance list`` does: a table with local times, or JSON (times as RFC 3339
    in the config's zone, not epoch floats)."""
    times = ("pending_since", "started_at", "ended_at", "last_notified_at", "acknowledged_at")
    for alert in alerts:
        for key in times:
            if isinstance(alert.get(key), int | float):
                alert[key] = iso_local(alert[key], zone)
    if fmt == "json":
        print(json.dumps(alerts, indent=2))
        return
    if not alerts:
        print("no alerts")
        return
    header = ("ID", "STATUS", "SEVERITY", "RULE", "SERVICE/OBJECTIVE", "SINCE", "SUMMARY")
    rows = [
        (
            a["alert_id"],
            a["status"]
            + (f" (acked by {a['acknowledged_by']})" if a.get("acknowledged_by") else ""),
            a["severity"],
            a["rule"],
            f"{a['service']}/{a.get('objective') or '-'}",
            _local(a.get("started_at") or a.get("pending_since")),
            a.get("summary", ""),
        )
        for a in alerts
    ]
    print(table(header, rows))


def _local(value: str | None) -> str:
    """``2026-11-30 18:40`` from the RFC 3339 local time."""
    return "-" if not value else value[:16].replace("T", " ")
