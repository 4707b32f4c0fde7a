"""``sla-monitor demo``: its config with the ports the user chose, and a clear word when
one of them is taken (the demo runs on machines where other things run)."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
from pathlib import Path
from typing import Any

import yaml

from monitor.config import Config, parse_config
from monitor.errors import SlaMonitorError

#: The demo config's own ports, and the flag that changes each.
_STATUS, _BROKER, _SIMULATOR = "--listen", "--broker-port", "--sim-port"


def add_demo_options(demo: argparse.ArgumentParser) -> None:
    """The ports of the demo's three listeners."""
    demo.add_argument(
        _STATUS, metavar="HOST:PORT", help="status page, API and /metrics (default 127.0.0.1:9177)"
    )
    demo.add_argument(_BROKER, type=int, metavar="PORT", help="embedded MQTT broker (11883)")
    demo.add_argument(_SIMULATOR, type=int, metavar="PORT", help="simulated HTTP services (8181)")


def demo_config(path: Path, args: argparse.Namespace) -> Config:
    """The demo config at ``path`` with the chosen ports; raises SlaMonitorError (one line,
    exit 1), naming the flag, when a port it needs is taken."""
    text = path.read_text(encoding="utf-8")
    parse_config(text, str(path), path.parent)  # a mistake: named by file, line and key
    document: dict[str, Any] = yaml.safe_load(text)
    server = document.setdefault("server", {})
    # The simulator's traffic and batch events reach the daemon's ingest API, with a
    # token made for this run.
    simulator = document.get("simulator", {})
    streams = [*simulator.get("traffic", []), *simulator.get("batches", [])]
    if args.listen:
        old_listen = server.get("listen", "127.0.0.1:9177")
        server["listen"] = args.listen
        for stream in streams:
            stream["ingest_url"] = stream["ingest_url"].replace(old_listen, args.listen)
    for stream in streams:
        variable = stream["token_env"]
        os.environ.setdefault(variable, secrets.token_urlsafe(24))
        tokens = server.setdefault("tokens", {})
        tokens[f"demo-{variable.lower()}"] = {"env": variable, "scopes": ["ingest"]}
    broker = document["brokers"]["default"]
    if args.broker_port:
        broker["port"] = args.broker_port
    http = document["simulator"]["http"]
    old_sim = http["listen"]
    if args.sim_port:
        http["listen"] = f"{old_sim.rpartition(':')[0]}:{args.sim_port}"
        document = _replace(document, old_sim, http["listen"])  # the probes' target URLs
    config = parse_config(yaml.safe_dump(document, sort_keys=False), str(path), path.parent)
    for host, port, flag, what in (
        (config.server.host, config.server.port, _STATUS, "the status page and API"),
        (broker.get("host", "127.0.0.1"), int(broker["port"]), _BROKER, "the MQTT broker"),
        (*_host_port(document["simulator"]["http"]["listen"]), _SIMULATOR, "the simulator"),
    ):
        if port and _taken(host, port):
            example = "127.0.0.1:9178" if flag == _STATUS else str(port + 1)
            raise SlaMonitorError(
                f"port {port} ({what}) is taken on {host}: run the demo with {flag} {example}"
            )
    return config


def _replace(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    return value


def _host_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def _taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As the servers will bind: a previous run's connections in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


__all__ = ["add_demo_options", "demo_config"]
