"""The CLI goes through the running daemon: `maintenance add|list|remove` from another
directory reach the daemon of their config over its API (the daemon validates, stores and
announces once) when the environment holds a token, and fall back to the store, saying why,
when it does not, when the window is a correction, when no daemon answers, or when the
daemon answering on that address writes another store. A real daemon process, the CLI as
processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.brokers import free_port
from tests.support.stack import daemon_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cli-through-the-daemon-token-0123"


def _document(store: Path, port: int) -> dict[str, Any]:
    document = daemon_config(
        store=store,
        listen=f"127.0.0.1:{port}",
        services=[
            {
                "name": "svc",
                # Nothing listens there: the probe's failures are measured, not our concern.
                "probes": [
                    {"name": "p", "kind": "http", "url": "http://127.0.0.1:9/", "interval": 5}
                ],
                "objectives": [{"name": "up", "kind": "availability", "target": 99}],
            }
        ],
    )
    document["server"]["api_token_env"] = "SLA_TEST_TOKEN"
    return document


def _cli(
    config: Path, cwd: Path, *args: str, token: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SLA_TEST_TOKEN"}
    env["SLA_MONITOR_CONFIG"] = str(config)
    if token:
        env["SLA_TEST_TOKEN"] = TOKEN
    return subprocess.run(
        [sys.executable, "-m", "monitor", "maintenance", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _at(offset_s: float) -> str:
    """An ISO time ``offset_s`` from now, in UTC."""
    return dt.datetime.fromtimestamp(time.time() + offset_s, dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def _windows(base: str) -> dict[str, dict[str, Any]]:
    body = httpx.get(f"{base}/api/maintenance", params={"scope": "all"}, timeout=10).json()
    return {w["id"]: w for w in body["maintenance"]}


def test_maintenance_goes_through_the_running_daemon(tmp_path: Path) -> None:
    store, port = tmp_path / "store.sqlite3", free_port()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_document(store, port)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SLA_TEST_TOKEN": TOKEN}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert daemon.poll() is None, daemon.communicate()[0]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.2)

        # Through the API: the daemon records the token that passed, not the CLI's account.
        added = _cli(config, elsewhere, "add", "--service", "svc", "--start", _at(3600),
                     "--duration", "1h", "--reason", "broker upgrade")  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert f"through the daemon at {base}" in added.stdout
        [through] = [w for w in _windows(base).values() if w["reason"] == "broker upgrade"]
        assert through["origin"] == "api token default from 127.0.0.1"

        listed = _cli(config, elsewhere, "list", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        assert f"from the daemon at {base}" in listed.stderr
        assert [w["id"] for w in json.loads(listed.stdout)] == [through["id"]]

        # Without a token in the environment: the store, said so; the daemon takes it in.
        quiet = _cli(config, elsewhere, "add", "--service", "svc", "--start", _at(3 * 3600),
                     "--duration", "30m", "--reason", "no token", token=False)  # fmt: skip
        assert quiet.returncode == 0, quiet.stderr
        assert "no API token with the maintenance scope" in quiet.stderr
        deadline = time.monotonic() + 10
        while not [w for w in _windows(base).values() if w["reason"] == "no token"]:
            assert time.monotonic() < deadline, "the daemon did not reload the store"
            time.sleep(0.2)
        [stored] = [w for w in _windows(base).values() if w["reason"] == "no token"]
        assert stored["origin"].startswith("cli ")

        # A window agreed after the fact is a correction: the store, whatever runs.
        late = _cli(config, elsewhere, "add", "--service", "svc", "--start", _at(-3 * 3600),
                    "--duration", "1h", "--reason", "agreed late", "--announced-at", _at(-4 * 3600),
                    "--correction", "agreed on the phone")  # fmt: skip
        assert late.returncode == 0, late.stderr
        assert "a window registered after the fact is a correction" in late.stderr

        # A bad request is the daemon's answer, exit 2, nothing stored.
        before = _windows(base)
        refused = _cli(config, elsewhere, "remove", "999")
        assert refused.returncode == 2
        assert "the daemon refused it (HTTP 404)" in refused.stderr
        assert _windows(base) == before

        removed = _cli(config, elsewhere, "remove", through["id"])
        assert removed.returncode == 0, removed.stderr
        assert f"removed maintenance {through['id']} through the daemon" in removed.stdout

        # The same address, another store: not this config's daemon.
        other = tmp_path / "other.yaml"
        other.write_text(yaml.safe_dump(_document(tmp_path / "other.sqlite3", port)))
        beside = _cli(other, elsewhere, "list")
        assert beside.returncode == 0, beside.stderr
        assert "the daemon there writes another store" in beside.stderr
    finally:
        daemon.terminate()
        output = daemon.communicate(timeout=30)[0]
    assert daemon.returncode == 0, output

    # No daemon: the store, said so.
    alone = _cli(config, elsewhere, "list")
    assert alone.returncode == 0, alone.stderr
    assert f"no daemon answers at {base}" in alone.stderr
    assert "no token" in alone.stdout
    assert not (elsewhere / "data").exists()  # nothing written relative to the cwd
