"""The daemon as users run it: a separate process, stopped by a signal; and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from simulator.network import Simulator
from tests.support.brokers import Mosquitto, free_port
from tests.support.stack import brokers_of, daemon_config, simulator_settings, write_config

pytestmark = [pytest.mark.slow]

TOPICS = [f"net/{i}/request" for i in range(4)]
REPO = Path(__file__).resolve().parents[2]


def _spawn(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", *args], cwd=cwd, stdout=out, stderr=out, env=env
        )


async def _poll(
    url: str, ready: Any, timeout_s: float, process: subprocess.Popen[bytes], log: Path
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                body: dict[str, Any] = (await client.get(url)).json()
            except httpx.TransportError:
                body = {}
            if body and ready(body):
                return body
            await asyncio.sleep(0.25)
    raise AssertionError(f"{url} never became ready:\n{log.read_text()[-3000:]}")


@pytest.mark.timeout(120)
async def test_sigterm_under_load_loses_no_result(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Every result the collector accepted is in SQLite after SIGTERM, and every request
    the simulator saw is one of them."""
    store = tmp_path / "sigterm.sqlite3"
    port = free_port()
    document = daemon_config(
        store=store,
        broker_port=mosquitto.port,
        listen=f"127.0.0.1:{port}",
        services=[
            {
                "name": "online",
                "probes": [
                    {
                        "name": f"p{i}",
                        "kind": "mqtt",
                        "request_topic": t,
                        "interval": 0.01,
                        "timeout": 2,
                    }
                    for i, t in enumerate(TOPICS)
                ],
                "objectives": [{"name": "fast", "kind": "latency", "threshold": 1, "target": 99}],
            }
        ],
    )
    config = write_config(document, tmp_path / "config.yaml")
    log = tmp_path / "daemon.log"
    profile = {"latency": {"median": 0.2, "sigma": 0.8, "max": 1.5}}
    settings = simulator_settings(seed=11, topics=TOPICS, profile=profile)
    async with Simulator(settings, brokers_of(document)) as sim:
        process = _spawn(["run", "--config", str(config)], tmp_path, log)
        try:
            await _poll(
                f"http://127.0.0.1:{port}/healthz",
                lambda b: b.get("results_written", 0) >= 1500,
                60,
                process,
                log,
            )
            # Mid-load: ~400 runs/s, about 80 in flight, a batch staged.
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    output = log.read_text()
    assert code == 0, output
    assert "Traceback" not in output, output
    match = re.search(r"stopped: (\d+) results accepted, (\d+) written", output)
    assert match is not None, output
    accepted, written = int(match[1]), int(match[2])
    with sqlite3.connect(store) as db:
        ids = {rid for (rid,) in db.execute("SELECT request_id FROM results")}
        (rows,) = db.execute("SELECT count(*) FROM results").fetchone()
    assert accepted == written == rows
    assert rows > 1500
    seen_by_simulator = {r.request_id for r in sim.truth.records}
    assert seen_by_simulator <= ids, len(seen_by_simulator - ids)


def _ports_free(*ports: int) -> None:
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the demo binds
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise AssertionError(
                    f"port {port} is taken; the demo needs it (is a demo already running?)"
                ) from None


@pytest.mark.timeout(150)
async def test_demo_shows_every_objective_and_one_breach(tmp_path: Path) -> None:
    """`sla-monitor demo` on a machine with nothing running: after a minute every
    objective has a figure; integrated-4s is below its target and the others above it,
    and none has a verdict yet: the monitor has seen a minute or two of the hour."""
    _ports_free(9177, 11883, 8181)
    log = tmp_path / "demo.log"
    # The demo's config, copied so that its store (../data/demo.sqlite3, relative to the
    # config's folder) lands in tmp_path/data rather than in the checkout.
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "demo.yaml"
    config.write_text((REPO / "config" / "demo.yaml").read_text())
    process = _spawn(["demo", "--config", str(config)], tmp_path / "config", log)

    def ready(body: dict[str, Any]) -> bool:
        objectives = [o for s in body["services"] for o in s["objectives"] if o["kind"] != "batch"]
        integrated = next(o for o in objectives if o["objective"] == "integrated-4s")
        return (
            all(o["windows"]["1h"]["compliance"] is not None for o in objectives)
            and integrated["windows"]["1h"]["valid"] >= 250
        )

    try:
        body = await _poll("http://127.0.0.1:9177/api/sla", ready, 120, process, log)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get("http://127.0.0.1:9177/metrics")).text
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert code == 0, output
    assert "http://127.0.0.1:9177/api/sla" in output
    hour = {
        (s["name"], o["objective"]): (o["windows"]["1h"], o["target"])
        for s in body["services"]
        for o in s["objectives"]
        if o["kind"] != "batch"
    }
    above = {key: w["compliance"] >= target for key, (w, target) in hour.items()}
    assert above == {
        ("online-messages", "online-1s"): True,
        ("online-messages", "online-1s-traffic"): True,
        ("online-messages", "online-2s"): True,
        ("online-messages", "availability"): True,
        ("integrated-services", "integrated-4s"): False,
        ("integrated-services", "availability"): True,
    }
    for key, (window, _) in hour.items():
        assert (window["verdict"], window["met"]) == ("insufficient_data", None), key
        assert window["coverage"] is None or window["coverage"] < 0.9, key
    assert 'sla_objective_compliance_ratio{objective="integrated-4s"' in metrics
    # The simulator's real traffic reached the daemon as events, all of them taken.
    traffic = next(
        o
        for s in body["services"]
        for o in s["objectives"]
        if o["objective"] == "online-1s-traffic"
    )
    assert traffic["source"] == "traffic"
    assert traffic["windows"]["1h"]["valid"] > 0
    assert 'sla_events_total{result="invalid"} 0.0' in metrics
    assert 'sla_events_total{result="late"} 0.0' in metrics
    # The batch service's 10 days of history: days older than the 4-day deadline are final,
    # the last four (and today) still pending.
    batch = next(o for s in body["services"] for o in s["objectives"] if o["kind"] == "batch")
    days = [d for w in ("previous_month", "month") for d in batch["windows"][w]["days"]]
    today = dt.datetime.now(ZoneInfo("Europe/Brussels")).date()
    ages = {(today - dt.date.fromisoformat(d["date"])).days: d["state"] for d in days}
    assert sorted(ages) == list(range(11)), days
    # Final: its deadline passed (it ended over 4 days ago), or (over) all processed.
    assert {ages[age] for age in range(5, 11)} == {"final"}, days
    assert ages[0] == "pending", days
    assert all(d["submitted"] > 0 for d in days), days
    assert (tmp_path / "data" / "demo.sqlite3").exists()


def _holding(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port``, as another program's."""
    sock = socket.socket()
    try:
        # As a server binds (aiohttp does): connections of a previous run in TIME_WAIT
        # on the port do not stop it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


DEMO_FLAGS = ("--listen", "--broker-port", "--sim-port")


@pytest.mark.parametrize("flag", ["default", *DEMO_FLAGS])
def test_a_taken_demo_port_is_one_line_naming_the_flag(flag: str, tmp_path: Path) -> None:
    """On a busy host: the port, what needs it and the flag to change it, exit 1."""
    with contextlib.ExitStack() as held:
        if flag == "default":  # `make demo` where 9177 is taken
            with contextlib.suppress(OSError):  # already taken by something else: the same
                held.enter_context(_holding(9177))
            args, port, named = ["demo"], 9177, "--listen"
        else:
            port, named = free_port(), flag
            held.enter_context(_holding(port))
            args = ["demo"]
            for option in DEMO_FLAGS:
                value = port if option == flag else free_port()
                args += [option, f"127.0.0.1:{value}" if option == "--listen" else str(value)]
        done = subprocess.run(
            [sys.executable, "-m", "monitor", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {port} " in lines[0]
    assert f"run the demo with {named} " in lines[0]
