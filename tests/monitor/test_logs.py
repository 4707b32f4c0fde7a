"""Logs: ``--log-format json`` gives one JSON object per line, from a real process; the
server's access log has one line per API request and none for /metrics unless asked."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from monitor.web.server import Health, Server
from tests.support import builders

ROOT = Path(__file__).resolve().parents[2]


def test_json_logs_are_one_object_per_line_from_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LOGS_SOME, "json"], cwd=ROOT, capture_output=True, text=True
    )
    lines = done.stderr.strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["level"] for r in records] == ["WARNING", "ERROR"]
    assert records[0]["logger"] == "monitor.test"
    assert records[0]["message"] == "disk at 91 %"
    assert records[0]["time"].endswith("+00:00")
    assert "ZeroDivisionError" in records[1]["exception"]


_LOGS_SOME = """
import logging, sys
from monitor.logs import setup_logging
setup_logging("INFO", sys.argv[1])
log = logging.getLogger("monitor.test")
logging.getLogger("httpx").info("HTTP Request: GET http://x 200")  # library noise: off
log.warning("disk at %d %%", 91)
try:
    1 / 0
except ZeroDivisionError:
    log.exception("failed")
"""


@pytest.mark.parametrize(("setting", "metrics_logged"), [("api", False), ("all", True)])
async def test_the_access_log_has_a_line_per_request(
    setting: str, metrics_logged: bool, caplog: pytest.LogCaptureFixture
) -> None:
    config = builders.config(
        builders.service("svc", availability=["up"]),
        server={"listen": "127.0.0.1:0", "access_log": setting},
    )
    server = Server(config, CollectorRegistry(), list, lambda: Health(True, {}))
    await server.start()
    try:
        with caplog.at_level(logging.INFO, logger="sla-monitor.access"):
            async with httpx.AsyncClient(base_url=server.url) as client:
                await client.get("/healthz")
                await client.get("/metrics")
                await client.get("/api/sla?service=nope")
    finally:
        await server.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "sla-monitor.access"]
    paths = [line.split()[1] for line in lines]
    expected = ["/healthz", "/metrics", "/api/sla"] if metrics_logged else ["/healthz", "/api/sla"]
    assert paths == expected
    assert lines[-1].startswith("GET /api/sla 404 ")
