"""Two daemons writing one PostgreSQL database (issue 14), beside one daemon alone.

Each daemon is its own process (``bench/_proc.py run``) probing the same simulator (its
own process) at ``--rate`` HTTP probes/s, with its own instance name and
location, into one fresh database on the server at ``--postgres``; the single daemon runs
the same config alone. After ``--warmup`` seconds, ``--seconds`` are measured from each
daemon's /metrics: results accepted and committed per second, the store's write time,
scheduler lag p99, skipped runs, and CPU (daemons, simulator, the PostgreSQL server's
processes). The layouts alternate, ``--repeats`` times; medians are printed.

    .venv/bin/python bench/pg_two_daemons.py [--rate 2000] [--seconds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import _common as c
import psutil
from throughput import INTERVAL_S, document


def _postgres_pids() -> list[int]:
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]


def run(
    daemons: int, rate: float, seconds: float, warmup: float, admin: str, tmp: Path
) -> dict[str, float]:
    """One layout: ``daemons`` daemons at ``rate`` each; totals over the daemons."""
    probes = round(rate * INTERVAL_S)
    sim_port = c.free_port()
    ports = [c.free_port() for _ in range(daemons)]
    with c.throwaway_database(admin) as url:
        configs = []
        for i, port in enumerate(ports):
            body: dict[str, Any] = document(
                "http",
                probes,
                sim_port=sim_port,
                broker_port=None,
                server_port=port,
                store=tmp / f"unused-{i}.sqlite3",
            )
            body["storage"] = {"url": url}
            body["instance"] = {"name": f"bench-{i}", "location": f"loc-{i}"}
            configs.append(c.write_config(body, tmp / f"daemon-{i}.yaml"))
        sim = c.spawn("simulate", configs[0], "asyncio", tmp / "simulator.log")
        running = []
        try:
            c.wait_for_port(sim_port)
            for i, config in enumerate(configs):
                running.append(c.spawn("run", config, "asyncio", tmp / f"daemon-{i}.log"))
            for port, process in zip(ports, running, strict=True):
                c.wait_healthy(port, process)
            time.sleep(warmup)
            cpu = c.CpuMeter([*(p.pid for p in running), sim.pid, *_postgres_pids()])
            before = [c.scrape(port) for port in ports]
            t0 = time.monotonic()
            cpu.start()
            time.sleep(seconds)
            after = [c.scrape(port) for port in ports]
            elapsed = time.monotonic() - t0
            used = cpu.stop()
        finally:
            for process in running:
                c.stop(process)
            c.stop(sim)
    daemon_pids = {p.pid for p in running}

    def per_s(name: str) -> float:
        return (
            sum(c.total(a, name) - c.total(b, name) for a, b in zip(after, before, strict=True))
            / elapsed
        )

    writes = per_s("sla_store_write_seconds_count")
    lag_p99 = max(
        c.bucket_quantile(c.histogram_delta(b, a, "sla_scheduler_lag_seconds"), 0.99)
        for a, b in zip(after, before, strict=True)
    )
    return {
        "offered": daemons * probes / INTERVAL_S,
        "accepted": per_s("sla_collector_results_total"),
        "written": per_s("sla_store_written_results_total"),
        "skipped": per_s("sla_scheduler_skipped_runs_total"),
        "write_ms": 1000 * per_s("sla_store_write_seconds_sum") / writes if writes else 0.0,
        "lag_p99_ms": 1000 * lag_p99,
        "cpu_daemons": sum(v for p, v in used.items() if p in daemon_pids),
        "cpu_simulator": used.get(sim.pid, 0.0),
        "cpu_postgres": sum(v for p, v in used.items() if p not in daemon_pids and p != sim.pid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="probes/s per daemon")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    c.print_machine()
    layouts = {"one daemon": 1, "two daemons": 2}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in layouts}
    with TemporaryDirectory(prefix="sla-bench-pg-") as tmp:
        for repeat in range(args.repeats):
            for name, daemons in layouts.items():
                got = run(daemons, args.rate, args.seconds, args.warmup, args.postgres, Path(tmp))
                runs[name].append(got)
                print(
                    f"  {name} run {repeat + 1}: "
                    + ", ".join(f"{k} {v:.0f}" for k, v in got.items()),
                    flush=True,
                )
    print(f"\nmedians ({args.rate:g} probes/s per daemon, {args.seconds:g} s measured):")
    for name, results in runs.items():
        keys = results[0].keys()
        medians = {k: statistics.median(r[k] for r in results) for k in keys}
        print(f"{name:12}: " + ", ".join(f"{k} {v:,.0f}" for k, v in medians.items()))


if __name__ == "__main__":
    main()
