"""``sla-monitor health``: asks the running daemon's ``/healthz`` at the configured
address (HTTP or HTTPS), for a container's HEALTHCHECK or a monitoring agent: exit 0
when healthy, 1 otherwise, with one line saying why."""

from __future__ import annotations

import argparse
from typing import Any

import httpx

from monitor.cli.common import EXIT_FAILURE, EXIT_OK, add_config_option
from monitor.cli.daemon import base_url
from monitor.config import Config


def add_health_parser(commands: Any) -> None:
    """``health``."""
    health = commands.add_parser("health", help="ask the running daemon's /healthz (exit 0/1)")
    add_config_option(health)


def run_health(config: Config, args: argparse.Namespace) -> int:
    """GET /healthz on the configured listen address; the exit code says healthy or not."""
    server = config.server
    url = f"{base_url(config)}/healthz"
    # Its own loopback listener: the certificate is the daemon's, checked by its clients;
    # a liveness check verifies that it answers, not who it is.
    try:
        answer = httpx.get(url, timeout=5, verify=server.tls is None)
    except httpx.HTTPError as exc:
        print(f"unhealthy: no answer from {url}: {exc}")
        return EXIT_FAILURE
    if answer.status_code == 200:
        print(f"healthy: {url}")
        return EXIT_OK
    print(f"unhealthy: {url} answered {answer.status_code}: {answer.text[:200]}")
    return EXIT_FAILURE
