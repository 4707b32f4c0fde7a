"""Every query of every dashboard panel against a real Prometheus scraping a real daemon.

The daemon and the simulator run in the test's event loop (real Mosquitto between them);
Debian's ``prometheus`` runs as a child process on a free loopback port, scrapes the daemon
every second and evaluates the rules ``sla-monitor rules`` generates. Once enough has been
scraped (the first availability minute sealed, a burn-rate alert firing), every query of
every panel and annotation runs through Prometheus's HTTP API with the template variables
substituted as Grafana does with *All* selected, and must parse and return data. Then the
Prometheus-side compliance is compared with the daemon's ``/api/sla`` figure, within the
error one scrape interval can cause, and the overview preview is rendered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.app import Daemon
from monitor.cli.main import main
from monitor.generate.dashboards import build_dashboards
from monitor.generate.preview import panel_queries, substitute, template_values
from monitor.generate.rules import sli_record, write_rules
from simulator.network import Simulator
from tests.support.brokers import Mosquitto, free_port
from tests.support.prometheus import SCRAPE_S, running_prometheus
from tests.support.stack import (
    brokers_of,
    daemon_config,
    simulator_settings,
    validate,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

MIN_RUN_S = 75.0
INTERVAL_S = 0.05
TOPICS = ["net/a/request", "net/b/request"]
PROFILE = {
    "latency": {
        "median": 0.02,
        "sigma": 0.8,
        "tail_probability": 0.05,
        "tail_min": 0.25,
        "tail_max": 0.6,
    },
    "error_rate": 0.02,
}
#: ``fast`` is breached hard (about 40 % of exchanges miss 25 ms against a 1 % budget), so
#: the generated 14.4x burn-rate alert fires and the alert panels and annotations have data.
OBJECTIVES = [
    {"name": "fast", "kind": "latency", "threshold": "25ms", "target": 99},
    {"name": "slow", "kind": "latency", "threshold": "500ms", "target": 95},
    {"name": "availability", "kind": "availability", "target": 99},
]


def _document(store: Path, broker_port: int, daemon_port: int) -> dict[str, Any]:
    """Two services: ``online`` (measured), ``maint`` (in announced maintenance now)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    online = {
        "name": "online",
        "probes": [
            {"name": f"p{i}", "kind": "mqtt", "request_topic": t, "interval": INTERVAL_S}
            | {"timeout": 1.0}
            for i, t in enumerate(TOPICS)
        ],
        "objectives": OBJECTIVES,
    }
    maint = {
        "name": "maint",
        "probes": [
            {"name": "m0", "kind": "mqtt", "request_topic": TOPICS[0], "interval": 0.2}
            | {"timeout": 1.0}
        ],
        "objectives": [
            {"name": "m-1s", "kind": "latency", "threshold": "1s", "target": 99},
            {"name": "availability", "kind": "availability", "target": 99},
        ],
        "maintenance": [
            {
                "start": (now - dt.timedelta(hours=1)).isoformat(),
                "end": (now + dt.timedelta(hours=2)).isoformat(),
                "announced_at": (now - dt.timedelta(days=2)).isoformat(),
                "reason": "dashboard test",
            }
        ],
    }
    return daemon_config(
        store=store,
        broker_port=broker_port,
        services=[online, maint],
        listen=f"127.0.0.1:{daemon_port}",
    )


async def _api(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params)
    body: dict[str, Any] = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"{body.get('errorType')}: {body.get('error')}")
    return body


async def _instant(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = (await _api(client, "/api/v1/query", query=expr))["data"][
        "result"
    ]
    return result


async def _value(client: httpx.AsyncClient, expr: str) -> float:
    result = await _instant(client, expr)
    assert len(result) == 1, f"{expr}: {result}"
    return float(result[0]["value"][1])


# --- the test --------------------------------------------------------------------------------


async def test_every_panel_query_returns_data_from_a_real_prometheus(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Every panel's query parses and returns data; Prometheus's compliance is the daemon's."""
    daemon_port = free_port()
    document = _document(tmp_path / "store.sqlite3", mosquitto.port, daemon_port)
    config = validate(document)
    config_path = write_config(document, tmp_path / "config.yaml")
    rule_files = write_rules(config, tmp_path / "rules")
    boards = build_dashboards(config)
    settings = simulator_settings(seed=11, topics=TOPICS, profile=PROFILE)

    # Prometheus first, so its first successful scrape comes within one interval of the
    # daemon's server starting (the rate() windows then miss at most one interval).
    with running_prometheus(tmp_path, [daemon_port], rule_files) as prometheus:
        async with (
            Simulator(settings, brokers_of(document)),
            httpx.AsyncClient(base_url=prometheus.url, timeout=10) as client,
        ):
            daemon = Daemon(config)
            stop = asyncio.Event()
            task = asyncio.create_task(daemon.run(stop))
            try:
                await asyncio.wait_for(daemon.ready.wait(), 30)
                ready_at = time.time()
                await _wait_for_data(client, task)
                # A longer run tightens the compliance bound (it shrinks with 1 / run time).
                await asyncio.sleep(max(0.0, ready_at + MIN_RUN_S - time.time()))
                await _check_every_query(client, boards, template_values(config))
                await _check_compliance(client, daemon, ready_at)
                png = tmp_path / "overview.png"
                preview = ["dashboards", "preview", "--config", str(config_path)]
                code = main([*preview, "--prometheus", prometheus.url, "--out", str(png)])
                assert code == 0
                assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
                assert png.stat().st_size > 10_000
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)


async def _wait_for_data(client: httpx.AsyncClient, task: asyncio.Task[None]) -> None:
    """Until Prometheus has 30+ scrapes, a sealed availability minute and a firing alert."""
    checks = {
        "30 scrapes": 'count_over_time(sla_probe_attempts_total{service="online",'
        'probe="p0",outcome="ok"}[10m]) >= 30',
        "an availability minute": 'sla_objective_compliance_ratio{service="online",'
        'objective="availability",window="1h"}',
        "a firing alert": 'ALERTS{alertstate="firing",service="online",objective="fast"}',
        "recorded SLIs": f'{sli_record("1h")}{{service="online",objective="fast"}}',
    }
    missing = list(checks)
    async with asyncio.timeout(240):
        while missing:
            assert not task.done(), "the daemon stopped"
            missing = [name for name, expr in checks.items() if not await _instant(client, expr)]
            if missing:
                await asyncio.sleep(2)


async def _check_every_query(
    client: httpx.AsyncClient, boards: dict[str, dict[str, Any]], values: dict[str, str]
) -> None:
    """Each query (range queries as range queries) must parse and return at least one
    series; failures are collected so one run names every bad panel."""
    failures = []
    checked = 0
    end = time.time()
    for board in boards.values():
        for query in panel_queries(board, annotations=True):
            expr = substitute(query.expr, values)
            where = f"{query.dashboard} / {query.panel!r} [{query.ref_id}]"
            try:
                if query.instant:
                    result = await _instant(client, expr)
                else:
                    body = await _api(
                        client,
                        "/api/v1/query_range",
                        query=expr,
                        start=end - 120,
                        end=end,
                        step=5,
                    )
                    result = body["data"]["result"]
            except AssertionError as exc:
                failures.append(f"{where}: does not parse: {exc}\n    {expr}")
                continue
            checked += 1
            if not result:
                failures.append(f"{where}: no data\n    {expr}")
    assert not failures, "\n".join(failures)
    assert checked >= 30


async def _check_compliance(client: httpx.AsyncClient, daemon: Daemon, ready_at: float) -> None:
    """The raw probe counters' compliance over 1 h (the run is shorter, so both sides hold
    every result; this config excludes no minute, so every attempt counts) equals the
    daemon's /api/sla 1 h figure within what one scrape interval can cause, for each
    latency objective. (The recorded rules read the post-exclusion counters, complete only
    up to the last sealed minute: ``tests/integration/test_prometheus_equality.py``
    compares those.)

    - end: results finished after the last sample Prometheus used and before /api/sla was
      read are in the daemon only; at most rate x elapsed + one in flight per probe;
    - start (rate() only): the first sample's counts are not in rate(), at most one
      scrape interval of results;
    - extrapolation (rate() only): each series is stretched by up to half an interval
      over the sampled span T; the ratio moves at most interval / T.

    Adding or removing k results moves a ratio over n results by at most k / n.
    """
    service = daemon.config.service("online")
    results_per_s = sum(1 / p.interval for p in service.probes)
    in_flight = len(service.probes)
    per_interval = math.ceil(results_per_s * SCRAPE_S) + in_flight
    for name, le in (("fast", "0.025"), ("slow", "0.5")):
        started = time.time()
        readme_expr = (
            f'sum(rate(sla_probe_duration_seconds_bucket{{service="online",le="{le}"}}[1h]))'
            ' / sum(rate(sla_probe_attempts_total{service="online"}[1h]))'
        )
        raw_good = f'sum(sla_probe_duration_seconds_bucket{{service="online",le="{le}"}})'
        raw_valid = 'sum(sla_probe_attempts_total{service="online"})'
        via_readme = await _value(client, readme_expr)
        good, valid = await _value(client, raw_good), await _value(client, raw_valid)
        # The rule was evaluated from a scrape up to one interval older than its sample.
        oldest_sample = min(
            await _value(client, f"timestamp({readme_expr})") - SCRAPE_S,
            await _value(client, 'min(timestamp(sla_probe_attempts_total{service="online"}))'),
        )
        async with httpx.AsyncClient(base_url=daemon.server.url, timeout=10) as api:
            sla = (await api.get("/api/sla", params={"service": "online"})).json()
        finished = time.time()
        objective = next(o for o in sla["services"][0]["objectives"] if o["objective"] == name)
        window = objective["windows"]["1h"]
        n = window["valid"]
        end_lag = math.ceil(results_per_s * (finished - oldest_sample)) + in_flight
        sampled_s = started - ready_at - SCRAPE_S
        raw_bound = end_lag / n
        rate_bound = (per_interval + end_lag) / n + SCRAPE_S / sampled_s
        assert 0 <= n - valid <= end_lag, (n, valid, end_lag)
        assert abs(window["compliance"] - good / valid) <= raw_bound, (name, raw_bound)
        assert abs(window["compliance"] - via_readme) <= rate_bound, (
            f"{name}: README expression {via_readme:.5f} vs /api/sla "
            f"{window['compliance']:.5f}, bound {rate_bound:.5f} (n={n})"
        )
