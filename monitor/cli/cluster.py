"""``sla-monitor cluster``: the daemons writing the config's store, read from the store
itself (no daemon needs to answer): where each probes from, when it was last seen, how far
behind its last stored result is, and which one leads. What ``GET /api/cluster`` shows."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from monitor.cli.common import EXIT_FAILURE, EXIT_OK, add_config_option, table
from monitor.config import Config
from monitor.errors import SlaMonitorError
from monitor.store.locate import is_database, shown


def add_cluster_parser(commands: Any) -> None:
    """``cluster``."""
    cluster = commands.add_parser(
        "cluster", help="list the daemons writing the store, their locations and the leader"
    )
    add_config_option(cluster)
    cluster.add_argument("--json", action="store_true", help="one JSON object")


def run_cluster(config: Config, args: argparse.Namespace, now: float | None = None) -> int:
    """Print the instances; exit 1 when the store cannot be read."""
    location = config.storage.location
    if not is_database(location) and not Path(location).exists():
        print(f"sla-monitor: no data: the store {location} does not exist", file=sys.stderr)
        return EXIT_FAILURE
    try:
        view = asyncio.run(_read(location, time.time() if now is None else now))
    except SlaMonitorError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(view, indent=2))
        return EXIT_OK
    rows = [
        [
            i["name"] + (" (leader)" if i["name"] == view["leader"] else ""),
            i["location"],
            i["version"],
            i["state"],
            f"{i['seen_ago_s']:.0f} s ago",
            "-" if i["result_lag_s"] is None else f"{i['result_lag_s']:.0f} s",
        ]
        for i in view["instances"]
    ]
    header = ["INSTANCE", "LOCATION", "VERSION", "STATE", "SEEN", "LAST RESULT"]
    print(f"store {shown(location)}: {len(rows)} instances, leader {view['leader'] or 'none'}")
    if rows:
        print(table(header, rows))
    return EXIT_OK


async def _read(location: str, now: float) -> dict[str, Any]:
    from monitor.cluster import HEARTBEAT_S, STALE_AFTER
    from monitor.leader import LEADER
    from monitor.store import store_at

    store = store_at(location)
    await store.open()
    try:
        rows = await store.instances()
        lease = await store.lease(LEADER) if is_database(location) else None
    finally:
        await store.aclose()
    # Alone on a file, the one daemon leads without a lease.
    leader = lease[0] if lease else (rows[0].name if rows and not is_database(location) else None)
    return {
        "leader": leader,
        "instances": [
            {
                "name": r.name,
                "location": r.location,
                "version": r.version,
                "state": "stale" if now - r.seen_at > STALE_AFTER * HEARTBEAT_S else "up",
                "seen_ago_s": round(now - r.seen_at, 3),
                "result_lag_s": None
                if r.last_result_at is None
                else round(now - r.last_result_at, 3),
            }
            for r in rows
        ],
    }
