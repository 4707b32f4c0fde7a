"""A daemon on PostgreSQL whose database restarts mid-run: it keeps probing, holds what it
measured while the server is away (in memory up to ``max_staged``, then in the spool),
and once the server is back writes everything once. Checked request by request against
the simulator's record of what it served, in the database read with its own client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from monitor.app import Daemon
from simulator.network import Simulator
from tests.support.postgres import OwnPostgres, database, own_server
from tests.support.stack import daemon_config, simulator_settings, validate, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def own() -> Iterator[OwnPostgres]:
    with own_server() as server:
        yield server


async def _until(condition: Any, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)


def _services(port: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "svc",
            "probes": [
                {
                    "name": f"p{i}",
                    "kind": "http",
                    "url": f"http://127.0.0.1:{port}/x",
                    "interval": 0.02,
                    "timeout": 1,
                }
                for i in range(4)
            ],
            "objectives": [{"name": "fast", "kind": "latency", "threshold": 0.5, "target": 99}],
        }
    ]


async def test_a_database_restart_mid_run_loses_nothing_and_counts_nothing_twice(
    own: OwnPostgres, tmp_path: Any
) -> None:
    settings = simulator_settings(routes=["/x"], profile={"latency": {"median": 0.002}})
    with database(own.url) as url:
        async with Simulator(settings, {}) as sim:
            assert sim.http_port is not None
            document = daemon_config(store=tmp_path / "unused.sqlite3", services=[])
            document["services"] = _services(sim.http_port)
            document["storage"].update(url=url, batch_size=100, max_staged=300)
            daemon = Daemon(validate(document))
            stop = asyncio.Event()
            task = asyncio.create_task(daemon.run(stop))
            await asyncio.wait_for(daemon.ready.wait(), 20)
            await _until(lambda: daemon.collector.written > 300, 20)

            own.stop()
            down_at = daemon.collector.accepted
            # Probing goes on; past max_staged the results go to the spool.
            await _until(lambda: daemon.collector.accepted > down_at + 800, 30)
            assert daemon.spool is not None
            assert daemon.collector.staged <= 300 + 100
            held = daemon.collector.accepted - daemon.collector.written
            assert held > 600, held

            own.start()
            await _until(lambda: daemon.collector.written > down_at + 800, 30)
            stop.set()
            await asyncio.wait_for(task, 30)
        records = list(sim.truth.records)

        accepted = daemon.collector.accepted
        assert daemon.lost_results == 0
        in_spool = daemon.spool.pending()
        assert daemon.collector.written + in_spool == accepted
        if in_spool:  # what the stop left in the spool goes in at the next start
            again = Daemon(validate(document))
            await again.store.open()
            try:
                await again._replay_spool()
            finally:
                await again.store.aclose()

        with psycopg.connect(url) as conn:
            ids = [str(r[0]) for r in conn.execute("SELECT request_id FROM results")]
            (attempts,) = conn.execute("SELECT COALESCE(SUM(attempts), 0) FROM rollups").fetchone()
    twice = [i for i, n in Counter(ids).items() if n > 1]
    assert twice == []
    assert len(ids) == accepted == int(attempts)
    # Every request the simulator served is a stored result, and nothing else is.
    assert set(ids) == {r.request_id for r in records}


async def test_two_daemons_on_one_database_see_each_other_and_keep_their_locations(
    postgres_url: str, tmp_path: Any
) -> None:
    settings = simulator_settings(routes=["/x"], profile={"latency": {"median": 0.002}})
    async with Simulator(settings, {}) as sim:
        assert sim.http_port is not None
        daemons = []
        for name, location in (("probe-bru-1", "brussels"), ("probe-lgg-1", "liege")):
            document = daemon_config(store=tmp_path / f"{name}.sqlite3", services=[])
            document["services"] = _services(sim.http_port)
            document["storage"]["url"] = postgres_url
            document["instance"] = {"name": name, "location": location}
            daemons.append(Daemon(validate(document)))
        stop = asyncio.Event()
        tasks = [asyncio.create_task(d.run(stop)) for d in daemons]
        for daemon in daemons:
            await asyncio.wait_for(daemon.ready.wait(), 20)
        async with httpx.AsyncClient() as client:

            async def cluster(daemon: Daemon) -> dict[str, Any]:
                response = await client.get(f"{daemon.server.url}/api/cluster")
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                return body

            async with asyncio.timeout(20):
                while True:
                    views = [await cluster(d) for d in daemons]
                    rows = [i for view in views for i in view["instances"]]
                    written = all(i["last_result_at"] is not None for i in rows)
                    if len(rows) == 4 and written and views[0]["leader"] is not None:
                        break
                    await asyncio.sleep(0.2)
        # The same from the store, with the CLI (no daemon asked).
        config = write_config(document, tmp_path / "cli.yaml")
        listed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "monitor", "cluster", "--config", str(config), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        cli_view = json.loads(listed.stdout)
        stop.set()
        await asyncio.gather(*tasks)
    records = list(sim.truth.records)

    # Each keeps its own run marks: neither start took the other's for a killed run.
    assert all(d.metrics.previous_run_killed._value.get() == 0 for d in daemons)
    assert [v["self"] for v in views] == [
        {"name": "probe-bru-1", "location": "brussels"},
        {"name": "probe-lgg-1", "location": "liege"},
    ]
    # One leads, and every view (each daemon's, the CLI's) names the same one.
    assert views[0]["leader"] in {"probe-bru-1", "probe-lgg-1"}
    assert views[1]["leader"] == cli_view["leader"] == views[0]["leader"]
    assert [(i["name"], i["state"]) for i in cli_view["instances"]] == [
        ("probe-bru-1", "up"),
        ("probe-lgg-1", "up"),
    ]
    for view in views:
        assert view["locations"] == ["brussels", "liege"]
        assert [(i["name"], i["location"], i["state"]) for i in view["instances"]] == [
            ("probe-bru-1", "brussels", "up"),
            ("probe-lgg-1", "liege", "up"),
        ]
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT request_id, location FROM results").fetchall()
    by_location = Counter(location for _, location in rows)
    assert set(by_location) == {"brussels", "liege"}
    assert by_location["brussels"] == daemons[0].collector.accepted
    assert by_location["liege"] == daemons[1].collector.accepted
    # Every request either daemon sent is the simulator's, once.
    assert sorted(i for i, _ in rows) == sorted(r.request_id for r in records)
