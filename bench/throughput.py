"""(a) Sustained probes/s of one daemon process, HTTP and MQTT, against the simulator.

The simulator runs in its own process (near-zero constant delay, no truth log), Mosquitto
in a third; the daemon is ``sla-monitor run`` in a fourth. For each offered rate
(probes x 1/interval) the daemon runs ``--seconds`` after a warm-up; the figures come
from two scrapes of its /metrics:

- accepted/s: results taken by the collector (``sla_collector_results_total``);
- ok/s: successful exchanges; skipped/s: ``sla_scheduler_skipped_runs_total``;
- lag: ``sla_scheduler_lag_seconds`` (p50/p99 as bucket upper bounds, and the mean);
- CPU of the daemon and of the simulator, in % of one core.

A rate is "kept up" when accepted >= 98 % of offered, skipped < 1 % and lag p99 <= 50 ms.

    python bench/throughput.py [--kind http|mqtt|both] [--seconds 8] [--repeats 3]
        [--rates-http 2000,3000,4000] [--rates-mqtt 1000,2000,3000] [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _common as c

#: Probe interval; the offered rate is set by the number of probes.
INTERVAL_S = 0.1
#: The simulator's constant delay: near zero (the Duration type wants > 0).
DELAY_S = 0.0001
HTTP_ROUTES = 4
MQTT_TOPICS = 8


@dataclass
class Step:
    """What one run at one offered rate measured."""

    kind: str
    loop: str
    offered: float
    started: float
    accepted: float
    ok: float
    errors: float
    skipped: float
    lag_p50_ms: float
    lag_p99_ms: float
    lag_mean_ms: float
    queue_depth: float
    write_mean_ms: float
    rtt_mean_ms: float
    writes: float
    cpu_daemon: float
    cpu_simulator: float
    cpu_broker: float

    @property
    def kept_up(self) -> bool:
        """Accepted >= 98 % of offered, skipped < 1 %, lag p99 <= 50 ms."""
        return (
            self.accepted >= 0.98 * self.offered
            and self.skipped < 0.01 * self.offered
            and self.lag_p99_ms <= 50
        )


def document(
    kind: str,
    probes: int,
    *,
    sim_port: int,
    broker_port: int | None,
    server_port: int,
    store: Path,
    delay_s: float = DELAY_S,
    interval_s: float = INTERVAL_S,
    truth_log: Path | None = None,
) -> dict[str, Any]:
    """A config holding both the daemon's services and the simulator's section."""
    if kind == "http":
        routes = [f"/svc/{i}" for i in range(HTTP_ROUTES)]
        probe_list: list[dict[str, Any]] = [
            {
                "name": f"h{i}",
                "kind": "http",
                "url": f"http://127.0.0.1:{sim_port}{routes[i % len(routes)]}",
                "interval": interval_s,
                "timeout": 2.0,
            }
            for i in range(probes)
        ]
        simulator: dict[str, Any] = {
            "http": {
                "listen": f"127.0.0.1:{sim_port}",
                "routes": [{"path": r, "profile": "bench"} for r in routes],
            }
        }
    else:
        topics = [f"bench/online/t{i}/request" for i in range(MQTT_TOPICS)]
        probe_list = [
            {
                "name": f"m{i}",
                "kind": "mqtt",
                "request_topic": topics[i % len(topics)],
                "interval": interval_s,
                "timeout": 2.0,
            }
            for i in range(probes)
        ]
        simulator = {"mqtt": [{"request_topic": t, "profile": "bench"} for t in topics]}
    simulator["seed"] = 1
    simulator["profiles"] = {"bench": {"latency": {"distribution": "constant", "median": delay_s}}}
    if truth_log is not None:
        simulator["truth_log"] = str(truth_log)
    body: dict[str, Any] = {
        "server": {"listen": f"127.0.0.1:{server_port}"},
        "storage": {"path": str(store)},
        "services": [
            {
                "name": "bench",
                "probes": probe_list,
                "objectives": [
                    {"name": "fast-1s", "kind": "latency", "threshold": 1.0, "target": 99},
                    {"name": "avail", "kind": "availability", "target": 99},
                ],
            }
        ],
        "simulator": simulator,
    }
    if broker_port is not None:
        body["brokers"] = {"default": {"host": "127.0.0.1", "port": broker_port}}
    return body


def measure(
    kind: str,
    rate: float,
    seconds: float,
    workdir: Path,
    broker_port: int | None,
    broker_pid: int | None,
    loop: str,
    sim_loop: str,
    warmup_s: float = 4.0,
    profile: Path | None = None,
    daemon_args: Sequence[str] = (),
) -> Step:
    """Run the simulator and a fresh daemon at ``rate`` probes/s; return the figures."""
    probes = round(rate * INTERVAL_S)
    sim_port, server_port = c.free_port(), c.free_port()
    store = workdir / f"{kind}-{rate:g}-{time.monotonic_ns()}.sqlite3"
    config = c.write_config(
        document(
            kind,
            probes,
            sim_port=sim_port,
            broker_port=broker_port,
            server_port=server_port,
            store=store,
        ),
        workdir / "bench.yaml",
    )
    sim = c.spawn("simulate", config, sim_loop, workdir / "simulator.log")
    daemon = None
    try:
        if kind == "http":
            c.wait_for_port(sim_port)
        else:
            time.sleep(1.5)  # the responder subscribes in the background
        daemon = c.spawn("run", config, loop, workdir / "daemon.log", daemon_args)
        c.wait_healthy(server_port, daemon)
        time.sleep(warmup_s)
        pids = [daemon.pid, sim.pid] + ([broker_pid] if broker_pid else [])
        cpu = c.CpuMeter(pids)
        before, t0 = c.scrape(server_port), time.monotonic()
        cpu.start()
        spy = c.py_spy(daemon.pid, seconds, profile, f"{kind}-{rate:g}-{loop}") if profile else None
        time.sleep(seconds)
        if spy is not None:
            spy.wait(timeout=60)
        after, t1 = c.scrape(server_port), time.monotonic()
        used = cpu.stop()
    finally:
        if daemon is not None:
            c.stop(daemon)
        c.stop(sim)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
    elapsed = t1 - t0

    def rate_of(name: str, **labels: str) -> float:
        return (c.total(after, name, **labels) - c.total(before, name, **labels)) / elapsed

    lag = c.histogram_delta(before, after, "sla_scheduler_lag_seconds")
    lag_count = c.total(after, "sla_scheduler_lag_seconds_count") - c.total(
        before, "sla_scheduler_lag_seconds_count"
    )
    lag_sum = c.total(after, "sla_scheduler_lag_seconds_sum") - c.total(
        before, "sla_scheduler_lag_seconds_sum"
    )
    writes = c.total(after, "sla_store_write_seconds_count") - c.total(
        before, "sla_store_write_seconds_count"
    )
    write_sum = c.total(after, "sla_store_write_seconds_sum") - c.total(
        before, "sla_store_write_seconds_sum"
    )
    rtt_count = c.total(after, "sla_probe_duration_seconds_count") - c.total(
        before, "sla_probe_duration_seconds_count"
    )
    rtt_sum = c.total(after, "sla_probe_duration_seconds_sum") - c.total(
        before, "sla_probe_duration_seconds_sum"
    )
    attempts = rate_of("sla_probe_attempts_total")
    ok = rate_of("sla_probe_attempts_total", outcome="ok")
    return Step(
        kind=kind,
        loop=loop,
        offered=probes / INTERVAL_S,
        started=lag_count / elapsed,
        accepted=rate_of("sla_collector_results_total"),
        ok=ok,
        errors=attempts - ok,
        skipped=rate_of("sla_scheduler_skipped_runs_total"),
        lag_p50_ms=1000 * c.bucket_quantile(lag, 0.5),
        lag_p99_ms=1000 * c.bucket_quantile(lag, 0.99),
        lag_mean_ms=1000 * lag_sum / lag_count if lag_count else float("nan"),
        queue_depth=c.total(after, "sla_collector_queue_depth"),
        rtt_mean_ms=1000 * rtt_sum / rtt_count if rtt_count else float("nan"),
        write_mean_ms=1000 * write_sum / writes if writes else float("nan"),
        writes=writes / elapsed,
        cpu_daemon=used.get(daemon.pid, float("nan")) if daemon else float("nan"),
        cpu_simulator=used.get(sim.pid, float("nan")),
        cpu_broker=used.get(broker_pid, float("nan")) if broker_pid else float("nan"),
    )


def show(step: Step) -> None:
    """One line per step."""
    print(
        f"  {step.kind:4} {step.loop:7} offered {step.offered:6.0f}/s started "
        f"{step.started:6.0f}/s accepted "
        f"{step.accepted:7.0f}/s  ok {step.ok:7.0f}/s  err {step.errors:5.0f}/s  "
        f"skipped {step.skipped:6.0f}/s  lag p50<={step.lag_p50_ms:g} p99<={step.lag_p99_ms:g} "
        f"mean {step.lag_mean_ms:6.1f} ms  exchange mean {step.rtt_mean_ms:6.1f} ms  "
        f"queue {step.queue_depth:6.0f}  "
        f"store writes {step.writes:4.1f}/s of {step.write_mean_ms:6.1f} ms  cpu daemon "
        f"{step.cpu_daemon:3.0f}% sim {step.cpu_simulator:3.0f}% broker {step.cpu_broker:3.0f}%"
        f"  {'KEPT UP' if step.kept_up else 'behind'}",
        flush=True,
    )


def summarise(steps: list[Step]) -> None:
    """Medians over repeats, per kind, loop and offered rate."""
    groups: dict[tuple[str, str, float], list[Step]] = {}
    for step in steps:
        groups.setdefault((step.kind, step.loop, step.offered), []).append(step)
    print("\nmedians over repeats:")
    print("kind loop    offered accepted  skipped lag_p99<=ms lag_mean_ms cpu_daemon kept_up")
    best: dict[tuple[str, str], float] = {}
    for (kind, loop, offered), group in sorted(groups.items()):
        acc = c.median([s.accepted for s in group])
        kept = sum(s.kept_up for s in group)
        print(
            f"{kind:4} {loop:7} {offered:7.0f} {acc:8.0f} "
            f"{c.median([s.skipped for s in group]):8.0f} "
            f"{c.median([s.lag_p99_ms for s in group]):11g} "
            f"{c.median([s.lag_mean_ms for s in group]):11.1f} "
            f"{c.median([s.cpu_daemon for s in group]):9.0f}% {kept}/{len(group)}"
        )
        if kept * 2 > len(group):
            best[(kind, loop)] = max(best.get((kind, loop), 0.0), acc)
        best.setdefault((kind, loop), 0.0)
    for (kind, loop), value in best.items():
        peak = max(
            c.median([s.accepted for s in g])
            for (k, lp, _), g in groups.items()
            if k == kind and lp == loop
        )
        print(
            f"{kind} {loop}: sustained (kept up in most repeats) {value:.0f}/s; "
            f"peak accepted {peak:.0f}/s"
        )


def main() -> None:
    """Parse the arguments and run every step ``--repeats`` times."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=["http", "mqtt", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rates-http", default="2000,3000,4000")
    parser.add_argument("--rates-mqtt", default="1000,2000,3000")
    parser.add_argument(
        "--loop", default="asyncio", help="daemon loop(s): asyncio, uvloop or asyncio,uvloop"
    )
    parser.add_argument("--sim-loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument(
        "--broker-extra",
        default="",
        help=r"extra Mosquitto config lines, e.g. 'max_inflight_messages 0\n'",
    )
    parser.add_argument(
        "--profile", type=Path, help="record the daemon with py-spy into this folder"
    )
    parser.add_argument("--json", type=Path, help="also write every step to this file")
    parser.add_argument(
        "--mqtt-inflight",
        type=int,
        default=0,
        help="EXPERIMENT: override the MQTT probes' paho max_inflight_messages",
    )
    args = parser.parse_args()
    daemon_args = ["--mqtt-inflight", str(args.mqtt_inflight)]
    c.print_machine()
    kinds = ["http", "mqtt"] if args.kind == "both" else [args.kind]
    loops = args.loop.split(",")
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="sla-bench-") as tmp:
        workdir = Path(tmp)
        for kind in kinds:
            rates = [float(r) for r in getattr(args, f"rates_{kind}").split(",")]
            broker: contextlib.AbstractContextManager[tuple[int | None, int | None]] = (
                contextlib.nullcontext((None, None))
                if kind == "http"
                else c.mosquitto(workdir, args.broker_extra)
            )
            with broker as (broker_port, broker_pid):
                for repeat in range(args.repeats):
                    print(f"{kind} repeat {repeat + 1}/{args.repeats}", flush=True)
                    for rate in rates:
                        for loop in loops:
                            step = measure(
                                kind,
                                rate,
                                args.seconds,
                                workdir,
                                broker_port,
                                broker_pid,
                                loop,
                                args.sim_loop,
                                profile=args.profile,
                                daemon_args=daemon_args,
                            )
                            show(step)
                            steps.append(step)
    summarise(steps)
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in steps], indent=1))


if __name__ == "__main__":
    main()
