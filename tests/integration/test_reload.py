"""SIGHUP, as an operator sends it to a running daemon (a real process, real signals): a
config that does not validate is refused with its file, line and key, and the daemon
goes on with the config it has; a valid one is taken in place (same process id) after a
drain and flush, so probes added start measuring and no result measured before is lost."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.network import Simulator
from tests.support.stack import daemon_config, simulator_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


def _probes(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as db:
        try:
            rows = db.execute("SELECT probe, COUNT(*) FROM results GROUP BY probe").fetchall()
        except sqlite3.OperationalError:  # no schema yet
            return {}
    return {str(probe): int(count) for probe, count in rows}


def _document(store: Path, port: int, probes: list[str]) -> dict[str, Any]:
    return daemon_config(
        store=store,
        services=[
            {
                "name": "svc",
                "probes": [
                    {
                        "name": name,
                        "kind": "http",
                        "url": f"http://127.0.0.1:{port}/x",
                        "interval": 0.05,
                        "timeout": 1,
                    }
                    for name in probes
                ],
                "objectives": [{"name": "fast", "kind": "latency", "threshold": 0.5, "target": 99}],
            }
        ],
    )


async def _until(condition: Any, process: subprocess.Popen[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)


def test_sighup_refuses_a_bad_config_and_takes_a_good_one_in_place(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    config = tmp_path / "config.yaml"

    async def scenario() -> tuple[subprocess.Popen[str], str]:
        settings = simulator_settings(routes=["/x"], profile={"latency": {"median": 0.002}})
        async with Simulator(settings, {}) as sim:
            assert sim.http_port is not None
            config.write_text(yaml.safe_dump(_document(store, sim.http_port, ["first"])))
            process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                await _until(lambda: _probes(store).get("first", 0) > 20, process, 30)
                good = config.read_text()
                config.write_text(good.replace("target: 99", "target: 101"))  # invalid
                os.kill(process.pid, signal.SIGHUP)
                await asyncio.sleep(1.5)
                before = _probes(store).get("first", 0)
                await _until(lambda: _probes(store).get("first", 0) > before + 20, process, 30)

                added = _document(store, sim.http_port, ["first", "second"])
                config.write_text(yaml.safe_dump(added))
                os.kill(process.pid, signal.SIGHUP)
                await _until(lambda: _probes(store).get("second", 0) > 20, process, 60)
                os.kill(process.pid, signal.SIGTERM)
                _, err = await asyncio.to_thread(process.communicate, timeout=60)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
            return process, err

    process, err = asyncio.run(scenario())
    assert process.returncode == 0, err[-3000:]
    # Refused, naming file, line and key; the daemon measured on.
    assert "config reload refused, the running config stays" in err
    assert f"{config}:" in err
    assert "target" in err
    # Taken: one process (same pid, executed again) stopped twice, each time with every
    # accepted result written, and the store holds them all.
    assert "restarting in place with the reloaded config" in err
    stops = re.findall(r"stopped: (\d+) results accepted, (\d+) written", err)
    assert len(stops) == 2, err[-3000:]
    assert all(accepted == written for accepted, written in stops)
    assert sum(_probes(store).values()) == sum(int(accepted) for accepted, _ in stops)
