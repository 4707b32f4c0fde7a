"""``sla-monitor health`` (a real process) against a real server at the configured
address: exit 0 while /healthz is 200, 1 with the reason when it is 503 or nothing
answers (the container's HEALTHCHECK follows the config, not a fixed port)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.web.server import Health, Server
from tests.support import builders
from tests.support.brokers import free_port

ROOT = Path(__file__).resolve().parents[3]


async def _health(config: Path) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "monitor", "health", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_health_follows_the_configured_port(tmp_path: Path) -> None:
    port = free_port()
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        f"server: {{listen: '127.0.0.1:{port}'}}\n"
        "services: [{name: s, probes: [{name: p, kind: http, url: 'http://127.0.0.1:9/'}]}]\n"
    )
    healthy = True
    config = builders.config(builders.service("s"), server={"listen": f"127.0.0.1:{port}"})
    server = Server(config, CollectorRegistry(), list, lambda: Health(healthy, {}))
    await server.start()
    try:
        ok = await _health(config_file)
        healthy = False
        failing = await _health(config_file)
    finally:
        await server.stop()
    gone = await _health(config_file)
    assert (ok.returncode, ok.stdout.strip()) == (0, f"healthy: http://127.0.0.1:{port}/healthz")
    assert failing.returncode == 1
    assert "answered 503" in failing.stdout
    assert gone.returncode == 1
    assert "no answer from" in gone.stdout
