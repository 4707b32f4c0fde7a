"""Alerting through the running daemon: a failing service pages through a real webhook,
the alert is listed and acknowledged over the API and with the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from monitor.app import Daemon
from simulator.network import Simulator
from tests.support.brokers import free_port
from tests.support.stack import daemon_config, simulator_settings, validate, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

TOKEN = "s3cret-token-for-tests"
HOOK_KEY = "hook-key"


async def test_failing_service_pages_and_is_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLA_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("SLA_TEST_HOOK", HOOK_KEY)
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(HOOK_KEY.encode(), body, hashlib.sha256).hexdigest()
        assert request.headers["X-SLA-Signature"] == expected
        received.append(json.loads(body))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()

    # Every answer fails: the 1h and 5m burn rates are 100x from the first evaluation.
    settings = simulator_settings(
        routes=["/x"], profile={"latency": {"median": 0.005}, "error_rate": 1.0}
    )
    port = free_port()
    try:
        async with Simulator(settings, {}) as sim:
            document = daemon_config(
                store=tmp_path / "a.sqlite3",
                listen=f"127.0.0.1:{port}",
                services=[
                    {
                        "name": "svc",
                        "probes": [
                            {
                                "name": "p",
                                "kind": "http",
                                "interval": 0.1,
                                "timeout": 1,
                                "url": f"http://127.0.0.1:{sim.http_port}/x",
                            }
                        ],
                        "objectives": [
                            {"name": "fast", "kind": "latency", "threshold": 1, "target": 99}
                        ],
                    }
                ],
            )
            document["server"]["api_token_env"] = "SLA_TEST_TOKEN"
            document["alerting"] = {
                "evaluation_interval": 0.5,
                "notifiers": {
                    "hook": {
                        "kind": "webhook",
                        "secret_env": "SLA_TEST_HOOK",
                        "url": f"http://127.0.0.1:{hook_port}/hook",
                    }
                },
                "escalation": {
                    "page": [{"notifiers": ["hook"]}],
                    "ticket": [{"notifiers": ["hook"]}],
                },
            }
            config_path = write_config(document, tmp_path / "config.yaml")
            daemon = Daemon(validate(document))
            stop = asyncio.Event()
            task = asyncio.create_task(daemon.run(stop))
            try:
                await asyncio.wait_for(daemon.ready.wait(), 20)
                async with asyncio.timeout(30):
                    while not any(e["rule"] == "burn-14x" for e in received):
                        await asyncio.sleep(0.1)
                firing = next(e for e in received if e["rule"] == "burn-14x")
                assert firing["kind"] == "firing"
                assert firing["service"] == "svc"
                assert firing["objective"] == "fast"
                assert firing["value"] > 14.4

                base = daemon.server.url
                async with httpx.AsyncClient(base_url=base) as client:
                    active = (await client.get("/api/alerts")).json()["alerts"]
                    assert firing["alert_id"] in {a["alert_id"] for a in active}
                    path = f"/api/alerts/{firing['alert_id']}/ack"
                    assert (await client.post(path)).status_code == 401
                    wrong = {"Authorization": "Bearer nope"}
                    assert (await client.post(path, headers=wrong)).status_code == 401
                    unchanged = (await client.get("/api/alerts")).json()["alerts"]
                    assert all(a["acknowledged_at"] is None for a in unchanged)

                # The CLI, as an operator would use it (a child process, the real API).
                env_cli = {"SLA_TEST_TOKEN": TOKEN, "USER": "alice", "PATH": "/usr/bin:/bin"}
                listed = await _cli(["alerts", "list", "--config", str(config_path)], env_cli)
                assert listed.returncode == 0, listed.stderr
                assert firing["alert_id"] in listed.stdout
                assert listed.stdout.startswith("ID ")  # the table maintenance list uses
                assert "HTTP Request" not in listed.stderr  # no library noise
                as_json = await _cli(
                    ["alerts", "list", "--format", "json", "--config", str(config_path)], env_cli
                )
                [shown] = [a for a in json.loads(as_json.stdout) if a["rule"] == "burn-14x"]
                # Local RFC 3339 times with their offset, not epoch floats.
                assert re.fullmatch(
                    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", shown["started_at"]
                )
                acked = await _cli(
                    ["alerts", "ack", firing["alert_id"], "--config", str(config_path)], env_cli
                )
                assert acked.returncode == 0, acked.stderr
                assert "alice" in acked.stdout
                missing = await _cli(
                    ["alerts", "ack", "nope", "--config", str(config_path)], env_cli
                )
                assert missing.returncode == 2
                assert "Traceback" not in missing.stderr
                async with asyncio.timeout(10):
                    while not any(e["kind"] == "acknowledged" for e in received):
                        await asyncio.sleep(0.1)
                alert = next(a for a in daemon.alerter.active() if a.rule == "burn-14x")
                assert alert.acknowledged_by == "alice"
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)
    finally:
        await runner.cleanup()
    # Exactly one firing notice for the alert, however many evaluations ran.
    firings = [e for e in received if e["rule"] == "burn-14x" and e["kind"] == "firing"]
    assert len(firings) == 1


async def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, **env}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=30,
    )
