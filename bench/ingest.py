"""Events a second through ``POST /api/ingest`` with durable commit, and over MQTT
(issue 13).

A real daemon (``sla-monitor run``, its own process, a SQLite file) with one traffic feed.
``--via http``: this process posts NDJSON batches of ``--batch`` events from ``--senders``
concurrent connections for ``--seconds``, each request answered only after its events are
committed; reported: events stored a second (from the answers, checked against the
store's row count after), requests a second, the answer time p50 / p99. ``--via mqtt``: a
gateway publishes messages of ``--batch`` events with QoS 1 to a Mosquitto of our own for
``--seconds``; reported: events stored a second from the first publish until the store
holds them all.

    python bench/ingest.py [--via http|mqtt] [--batch 1000] [--senders 2] [--seconds 20]
                           [--repeat 3] [--workers 1] [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    CpuMeter,
    free_port,
    mosquitto,
    print_machine,
    py_spy,
    quantile,
    spawn,
    stop,
    wait_healthy,
    write_config,
)

TOKEN = "bench-ingest-token-0123456789"
#: The daemon's event loop (``--loop``) and its ``ingest.workers`` (``--workers``).
LOOP = ["asyncio"]
WORKERS = [1]
#: Most events the MQTT gateway publishes in one run (``--mqtt-events``).
MQTT_EVENTS = [1_000_000]


def _config(folder: Path, port: int) -> dict[str, object]:
    return {
        "timezone": "UTC",
        "server": {"listen": f"127.0.0.1:{port}", "api_token_env": "BENCH_INGEST_TOKEN"},
        "storage": {"path": str(folder / "sla.sqlite3")},
        "reports": {"enabled": False, "directory": str(folder / "reports")},
        "alerting": {"enabled": False},
        "ingest": {"max_events": 10_000, "workers": WORKERS[0]},
        "services": [
            {
                "name": "online",
                "probes": [{"name": "messages", "kind": "traffic", "interval": "1s"}],
                "objectives": [
                    {
                        "name": "online-1s",
                        "kind": "latency",
                        "source": "traffic",
                        "threshold": "1s",
                        "target": 99,
                    }
                ],
            }
        ],
    }


def _body(sender: int, request: int, batch: int, now: float) -> bytes:
    """``batch`` NDJSON events with ids unique to (sender, request), started in the last
    30 s. Only the ids change between requests: the lines' other parts are made once per
    second, so the sender (on the same 2 cores) costs the daemon as little as it can."""
    prefix = f"s{sender}-r{request}-"
    return "".join(
        f'{{"id":"{prefix}{n}",{tail}' for n, tail in enumerate(_tails(batch, int(now)))
    ).encode()


_TAILS: dict[tuple[int, int], list[str]] = {}


def _tails(batch: int, second: int) -> list[str]:
    """Each line of a body after its id, for bodies sent in ``second``."""
    tails = _TAILS.get((batch, second))
    if tails is None:
        _TAILS.clear()
        tails = _TAILS[(batch, second)] = [
            json.dumps(
                {
                    "type": "exchange",
                    "service": "online",
                    "start": dt.datetime.fromtimestamp(second - 30 + n % 30, dt.UTC).isoformat(),
                    "duration_s": 0.05 + (n % 97) / 100,
                    "outcome": "ok" if n % 50 else "timeout",
                }
            )[1:]
            + "\n"
            for n in range(batch)
        ]
    return tails


async def _sender(
    url: str, sender: int, batch: int, until: float, answers: list[float], stored: list[int]
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        request = 0
        while time.monotonic() < until:
            body = _body(sender, request, batch, time.time())
            started = time.perf_counter()
            answer = await client.post("/api/ingest", content=body, headers=headers)
            answers.append(time.perf_counter() - started)
            answer.raise_for_status()
            stored.append(answer.json()["stored"])
            request += 1


async def _publish(port: int, batch: int, until: float) -> int:
    """Publish for ``seconds`` or ``MQTT_EVENTS`` events, whichever comes first (the
    gateway publishes far faster than any daemon stores: the broker queues the rest)."""
    import aiomqtt

    published = 0
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-gateway") as gateway:
        while time.monotonic() < until and published * batch < MQTT_EVENTS[0]:
            await gateway.publish("bench/events/g1", _body(0, published, batch, time.time()), qos=1)
            published += 1
    return published * batch


def run_mqtt(batch: int, seconds: float, folder: Path) -> dict[str, float]:
    """Publish for ``seconds``; the rate is what the daemon stored until it had it all."""
    with mosquitto(folder) as (broker, _):
        port = free_port()
        document = _config(folder, port)
        document["brokers"] = {"default": {"host": "127.0.0.1", "port": broker}}
        document["ingest"] = {
            "max_events": 10_000,
            "workers": WORKERS[0],
            "mqtt": {"topic": "bench/events/#"},
        }
        config = write_config(document, folder / "config.yaml")
        os.environ["BENCH_INGEST_TOKEN"] = TOKEN
        daemon = spawn("run", config, LOOP[0], folder / "daemon.log")
        try:
            wait_healthy(port, daemon)
            _wait_subscribed(port)
            meter = CpuMeter([daemon.pid, *_children(daemon.pid)])
            meter.start()
            started = time.monotonic()
            sent = asyncio.run(_publish(broker, batch, started + seconds))
            published_in = time.monotonic() - started
            while _rows(folder) < sent and time.monotonic() - started < seconds * 20:
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            used = meter.stop()
            cpu = used.pop(daemon.pid)
        finally:
            stop(daemon)
    rows = _rows(folder)
    if rows != sent:
        raise AssertionError(f"the store holds {rows} events, {sent} were published")
    return {
        "events_per_s": rows / elapsed,
        "published_per_s": sent / published_in,
        "daemon_cpu_pct": cpu,
        "workers_cpu_pct": sum(used.values()),
    }


def _wait_subscribed(port: int) -> None:
    import urllib.request

    for _ in range(100):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            if json.load(answer).get("events_mqtt") == "subscribed":
                return
        time.sleep(0.1)
    raise TimeoutError("the daemon did not subscribe")


def _children(pid: int) -> list[int]:
    """The daemon's child processes: its ingest workers (and multiprocessing's tracker)."""
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


def _rows(folder: Path) -> int:
    with closing(sqlite3.connect(folder / "sla.sqlite3")) as db:
        return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])


def run_once(
    batch: int, senders: int, seconds: float, folder: Path, profile: Path | None = None
) -> dict[str, float]:
    port = free_port()
    config = write_config(_config(folder, port), folder / "config.yaml")
    os.environ["BENCH_INGEST_TOKEN"] = TOKEN
    daemon = spawn("run", config, LOOP[0], folder / "daemon.log")
    try:
        wait_healthy(port, daemon)
        meter = CpuMeter([daemon.pid, *_children(daemon.pid)])
        answers: list[float] = []
        stored: list[int] = []
        meter.start()
        started = time.monotonic()
        if profile is not None:
            py_spy(daemon.pid, seconds - 1, profile, "ingest")

        async def all_senders() -> None:
            until = time.monotonic() + seconds
            await asyncio.gather(
                *(
                    _sender(f"http://127.0.0.1:{port}", s, batch, until, answers, stored)
                    for s in range(senders)
                )
            )

        asyncio.run(all_senders())
        elapsed = time.monotonic() - started
        used = meter.stop()  # percent of one core
        cpu = used.pop(daemon.pid)
    finally:
        stop(daemon)
    rows = _rows(folder)
    if rows != sum(stored):
        raise AssertionError(f"the store holds {rows} events, the answers said {sum(stored)}")
    return {
        "events_per_s": sum(stored) / elapsed,
        "requests_per_s": len(answers) / elapsed,
        "p50_ms": quantile(answers, 0.5) * 1000,
        "p99_ms": quantile(answers, 0.99) * 1000,
        "daemon_cpu_pct": cpu,
        "workers_cpu_pct": sum(used.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--via", choices=["http", "mqtt"], default="http")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="py-spy the daemon into this folder")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--workers", type=int, default=1, help="the daemon's ingest.workers")
    parser.add_argument("--mqtt-events", type=int, default=1_000_000)
    args = parser.parse_args()
    MQTT_EVENTS[0] = args.mqtt_events
    LOOP[0] = args.loop
    WORKERS[0] = args.workers
    print_machine()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
            if args.via == "mqtt":
                runs.append(run_mqtt(args.batch, args.seconds, Path(folder)))
            else:
                runs.append(
                    run_once(args.batch, args.senders, args.seconds, Path(folder), args.profile)
                )
        print(json.dumps({k: round(v, 1) for k, v in runs[-1].items()}))
    print(
        "median:",
        json.dumps({k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}),
    )


if __name__ == "__main__":
    main()
