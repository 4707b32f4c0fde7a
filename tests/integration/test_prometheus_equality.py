"""Prometheus computes the daemon's own figures: a real Prometheus scrapes real daemons
probing the simulator through an outage, a maintenance window and an outside-hours period,
evaluates the rules ``sla-monitor rules`` generates, and its recorded SLIs equal
``/api/sla`` for every objective and window; summed over two daemons, they equal the
figure of both daemons' results together. Both alerting paths deliver the same breach to
a real Alertmanager, which holds it as one alert.

Time: the daemons and the simulator share a clock that runs 10x while the scenario is
lived (virtual minutes, UTC), then at real speed while Prometheus's windows settle.
Prometheus's windows are real time; every window compared holds the whole run on both
sides, so both count exactly the same results once the last counted minute is sealed:

minute 0-1 normal; 2-3 outage (down, bad latency); 4-5 normal; 6-7 maintenance (announced
a day before) with an outage; 8-9 normal; 10-11 outage outside service hours (which end
at 10:10); then outside hours to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from monitor.app import Daemon
from monitor.config import Config
from monitor.generate.rules import LONG_WINDOWS, render_rules, sli_record, write_rules
from simulator.network import Simulator
from tests.fakes import FakeClock
from tests.support.alertmanager import Alertmanager, running_alertmanager
from tests.support.brokers import free_port
from tests.support.prometheus import SCRAPE_S, Prometheus, query, running_prometheus
from tests.support.stack import daemon_config, simulator_settings, validate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

#: Monday 2026-11-30 10:00 UTC: minute 0 of the scenario (virtual time).
T0 = 1_796_032_800.0
SPEED = 10.0
#: Virtual minute by which every counted minute (the last is 9) is sealed, and the run
#: (outages, maintenance, hours) is over.
LIVED_UNTIL = T0 + 14 * 60
#: Recorded 5-minute rates behind the long windows: each must have passed every change.
BASE_WINDOW_S = 300.0
RULE_INTERVAL_S = 1.0
#: Prometheus's window and /api/sla's window of the same length.
WINDOWS = {"30m": "30m", "1h": "1h", "2h": "2h", "6h": "6h", "1d": "24h", "3d": "3d", "30d": "30d"}
OBJECTIVES = ("fast", "slow", "availability")
SECRET = "hook-secret-for-tests"
BURN_LABELS = {
    "alertname": "SlaErrorBudgetBurn",
    "severity": "page",
    "service": "online",
    "objective": "availability",
    "rule": "burn-14x",
    "long_window": "1h",
    "short_window": "5m",
}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


def _profile() -> dict[str, Any]:
    outages = [(2, 2), (6, 2), (10, 2)]  # (first minute, minutes)
    return {
        "latency": {"median": 0.02, "sigma": 0.6},
        "error_rate": 0.01,
        "outages": [
            {"every": 1e9, "duration": n * 60, "offset": T0 + first * 60, "mode": "error"}
            for first, n in outages
        ],
    }


def _document(
    tmp_path: Path, name: str, http_port: int, probes: list[str], notifiers: dict[str, Any]
) -> dict[str, Any]:
    service = {
        "name": "online",
        "probes": [
            {
                "name": probe,
                "kind": "http",
                "url": f"http://127.0.0.1:{http_port}/x",
                "interval": 3,
                "timeout": 0.5,
            }
            for probe in probes
        ],
        "objectives": [
            {"name": "fast", "kind": "latency", "threshold": "25ms", "target": 99},
            {"name": "slow", "kind": "latency", "threshold": "100ms", "target": 95},
            {"name": "availability", "kind": "availability", "target": 99},
        ],
        "schedule": {"hours": [{"days": "mon-sun", "start": "09:00", "end": "10:10"}]},
        "maintenance": [
            {
                "start": _iso(T0 + 6 * 60),
                "end": _iso(T0 + 8 * 60),
                "reason": "planned upgrade",
                "announced_at": _iso(T0 - 86_400),
            }
        ],
    }
    document = daemon_config(
        store=tmp_path / f"{name}.sqlite3",
        services=[service],
        listen=f"127.0.0.1:{free_port()}",
    )
    document["timezone"] = "UTC"
    document["alerting"] = {
        "evaluation_interval": 1,
        "notifiers": notifiers,
        "escalation": {
            "page": [{"notifiers": list(notifiers)}],
            "ticket": [{"notifiers": list(notifiers)}],
        },
    }
    return document


async def _sla(daemon: Daemon) -> dict[str, dict[str, Any]]:
    """/api/sla of the daemon: objective -> window -> figures."""
    async with httpx.AsyncClient(base_url=daemon.server.url, timeout=10) as api:
        body = (await api.get("/api/sla", params={"service": "online"})).json()
    return {o["objective"]: o["windows"] for o in body["services"][0]["objectives"]}


async def _recorded(client: httpx.AsyncClient, window: str, objective: str) -> float:
    """The recorded SLI (NaN when Prometheus has 0 / 0)."""
    expr = f'{sli_record(window)}{{service="online",objective="{objective}"}}'
    [sample] = await query(client, expr)
    return float(sample["value"][1])


def _spread(window: str, instances: int, sampled_s: float) -> float:
    """How much more one counted result may weigh than another in Prometheus's ratio.

    Short windows are read straight from counters that every window holds from their
    first sample (0), so nothing is extrapolated at the start; at the end each target's
    series are stretched alike, by (T + d) / T with d up to 1.1 scrapes (Prometheus's
    limit) over the sampled span T. One daemon: exact but for float rounding. Several:
    their stretches differ by up to d / T.

    Long windows sum the recorded 5-minute rates of every evaluation: each counted result
    weighs the number of evaluations whose 5-minute window saw its counter rise (299 or
    300 at 1 s), times that window's extrapolation (1 to 300 / 298 with 1 s scrapes).
    """
    if window in LONG_WINDOWS:
        evaluations_low = math.floor((BASE_WINDOW_S - SCRAPE_S) / RULE_INTERVAL_S)
        evaluations_high = math.ceil(BASE_WINDOW_S / RULE_INTERVAL_S)
        stretch = BASE_WINDOW_S / (BASE_WINDOW_S - 2 * SCRAPE_S)
        return evaluations_high * stretch / evaluations_low
    if instances == 1:
        return 1.0
    return 1 + 1.1 * SCRAPE_S / sampled_s


def _check(name: str, value: float, good: int, valid: int, spread: float) -> None:
    """With each result weighing between w and w * spread, good / valid lies between
    G / (G + B spread) and G spread / (G spread + B); 1e-9 for float rounding."""
    if valid == 0:
        assert math.isnan(value), f"{name}: Prometheus {value}, the daemon has no figure"
        return
    bad = valid - good
    low = good / (good + bad * spread) - 1e-9
    high = good * spread / (good * spread + bad) + 1e-9
    assert low <= value <= high, (
        f"{name}: Prometheus {value:.9f}, daemon {good}/{valid} = {good / valid:.9f}, "
        f"allowed [{low:.9f}, {high:.9f}]"
    )


@contextlib.asynccontextmanager
async def _receiver() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """An HTTP endpoint that records every POST (an Alertmanager-format webhook receiver)."""
    received: list[tuple[dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        await runner.cleanup()


async def _alertmanager_alerts(am: Alertmanager) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{am.url}/api/v2/alerts")
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts


async def _one_alert_from_both_paths(
    prometheus: httpx.AsyncClient, daemon: Daemon, am: Alertmanager
) -> list[dict[str, Any]]:
    """Once the daemon's built-in alert and Prometheus's rule both fire for the outage's
    burn, what Alertmanager holds for that objective and rule."""
    selector = ",".join(f'{k}="{v}"' for k, v in BURN_LABELS.items() if k != "alertname")
    async with asyncio.timeout(120):
        while True:
            built_in = [
                a
                for a in daemon.alerter.active()
                if a.rule == "burn-14x"
                and a.objective == "availability"
                and a.status == "firing"
                and "am" in a.notified
            ]
            ruled = await query(prometheus, f'ALERTS{{alertstate="firing",{selector}}}')
            if built_in and ruled:
                break
            await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # both have posted by now
    return [
        a
        for a in await _alertmanager_alerts(am)
        if a["labels"].get("objective") == "availability" and a["labels"].get("rule") == "burn-14x"
    ]


async def test_prometheus_equals_the_daemon_for_every_window_and_sums_over_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    clock = FakeClock(start=T0 - 30, speed=SPEED)
    settings = simulator_settings(seed=5, routes=["/x"], profile=_profile())
    async with (
        Simulator(settings, {}, wall_clock=clock.now) as sim,
        _receiver() as (hook_url, received),
    ):
        assert sim.http_port is not None
        with running_alertmanager(tmp_path) as am:
            notifiers = {
                "am": {"kind": "alertmanager", "url": am.url},
                "hook": {
                    "kind": "webhook",
                    "url": hook_url,
                    "secret_env": "HOOK_SECRET",
                    "format": "alertmanager",
                },
            }
            one = validate(_document(tmp_path, "a", sim.http_port, ["a1", "a2"], notifiers))
            two = validate(
                _document(tmp_path, "b", sim.http_port, ["b1"], {"log": {"kind": "log"}})
            )
            interval = f"{RULE_INTERVAL_S:g}s"
            # One rules file serves every daemon: the rules name no probe.
            assert render_rules(one, interval) == render_rules(two, interval)
            rules = write_rules(one, tmp_path / "rules", interval=interval)
            ports = [int(c.server.listen.rsplit(":", 1)[1]) for c in (one, two)]
            with (
                running_prometheus(tmp_path / "p1", ports[:1], rules, am.url) as p1,
                running_prometheus(tmp_path / "p2", ports, rules) as p2,
            ):
                await _live(one, two, clock, p1, p2, am, received)


async def _live(
    one: Config,
    two: Config,
    clock: FakeClock,
    p1: Prometheus,
    p2: Prometheus,
    am: Alertmanager,
    received: list[tuple[dict[str, str], bytes]],
) -> None:
    daemons = [Daemon(one, clock=clock), Daemon(two, clock=clock)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(d.run(stop)) for d in daemons]
    try:
        for daemon in daemons:
            await asyncio.wait_for(daemon.ready.wait(), 30)
        ready = time.monotonic()  # each target's first sample is at most a scrape later
        async with (
            httpx.AsyncClient(base_url=p1.url, timeout=10) as c1,
            httpx.AsyncClient(base_url=p2.url, timeout=10) as c2,
        ):
            in_am = await _one_alert_from_both_paths(c1, daemons[0], am)
            await _check_exposition(daemons[0])
            while clock.now() < LIVED_UNTIL:
                assert not any(t.done() for t in tasks), "a daemon stopped"
                await asyncio.sleep(0.2)
            clock.set_speed(1.0)
            # The last counted minute was sealed by now; the long windows' 5-minute rates
            # must all have moved past it.
            settled_at = time.monotonic() + BASE_WINDOW_S + 5 * SCRAPE_S
            while time.monotonic() < settled_at:
                assert not any(t.done() for t in tasks), "a daemon stopped"
                await asyncio.sleep(1.0)
            figures = [await _sla(d) for d in daemons]
            # From the first sample to the last: at most a scrape after `ready`, at most
            # a scrape before now.
            sampled_s = time.monotonic() - ready - 2 * SCRAPE_S
            for objective in OBJECTIVES:
                for window, daemon_window in WINDOWS.items():
                    mine = figures[0][objective][daemon_window]
                    value = await _recorded(c1, window, objective)
                    name = f"daemon a {objective} {window}"
                    spread = _spread(window, 1, sampled_s)
                    _check(name, value, mine["good"], mine["valid"], spread)
                    both = [f[objective][daemon_window] for f in figures]
                    summed = await _recorded(c2, window, objective)
                    good = sum(f["good"] for f in both)
                    valid = sum(f["valid"] for f in both)
                    spread = _spread(window, 2, sampled_s)
                    _check(f"both daemons {objective} {window}", summed, good, valid, spread)
                # Nothing counted in the last 5 minutes (outside hours): no figure anywhere.
                assert figures[0][objective]["5m"]["valid"] == 0
                assert math.isnan(await _recorded(c1, "5m", objective))
            await _check_exclusions_mattered(c1, figures[0])
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    # Alertmanager took the same breach from both paths for one alert.
    assert len(in_am) == 1, in_am
    assert in_am[0]["labels"] == BURN_LABELS
    _check_webhook(received)


async def _check_exclusions_mattered(client: httpx.AsyncClient, figures: dict[str, Any]) -> None:
    """The raw probe counters (every attempt, maintenance and outside hours included) give
    another figure: the equality above would have caught counting excluded results."""
    raw = await query(
        client,
        'sum(increase(sla_probe_duration_seconds_bucket{service="online",le="0.1"}[1h]))'
        ' / sum(increase(sla_probe_attempts_total{service="online"}[1h]))',
    )
    window = figures["slow"]["1h"]
    assert abs(float(raw[0]["value"][1]) - window["good"] / window["valid"]) > 0.02


async def _check_exposition(daemon: Daemon) -> None:
    """`promtool check metrics` has nothing to say about a live scrape (counters mid-run,
    alerts firing), and the build and process metrics are there."""
    async with httpx.AsyncClient(base_url=daemon.server.url, timeout=10) as api:
        text = (await api.get("/metrics")).text
    binary = shutil.which("promtool")
    assert binary is not None, "promtool is not installed: run `make test` (it installs it)"
    proc = subprocess.run(
        [binary, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert "sla_build_info{" in text
    assert "process_cpu_seconds_total" in text
    assert "_created" not in text
    assert 'sla_objective_events_total{objective="fast",result="good",service="online"}' in text


def _check_webhook(received: list[tuple[dict[str, str], bytes]]) -> None:
    """The daemon's Alertmanager-format webhook: the shape receivers built for Alertmanager
    read, the labels Prometheus gives the same alert, and a valid signature."""
    bodies = []
    for headers, raw in received:
        expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-SLA-Signature"], expected)
        bodies.append(json.loads(raw))
    assert bodies
    for body in bodies:
        assert body["version"] == "4"
        assert body["status"] in ("firing", "resolved")
        assert {"receiver", "groupLabels", "commonLabels", "alerts", "groupKey"} <= set(body)
    labels = [a["labels"] for body in bodies for a in body["alerts"]]
    assert BURN_LABELS in labels
