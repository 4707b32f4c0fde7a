"""(d) Resident memory of the daemon process with 1,000 configured probes.

1,000 HTTP probes at a 10 s interval (100 probes/s) against the simulator (constant
50 ms), in separate processes. RSS (psutil, /proc) is sampled every 5 s; the figure is
the RSS after ``--seconds`` (default 60) and the largest sample.

    python bench/rss.py [--seconds 60] [--repeats 3] [--probes 1000] [--kind http|mqtt]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import _common as c
from throughput import document


def run_once(
    kind: str, probes: int, seconds: float, workdir: Path, broker_port: int | None
) -> tuple[float, float, float, float]:
    """(RSS when ready, RSS at the end, largest RSS, results accepted) of one run."""
    sim_port, server_port = c.free_port(), c.free_port()
    store = workdir / f"rss-{time.monotonic_ns()}.sqlite3"
    config = c.write_config(
        document(
            kind,
            probes,
            sim_port=sim_port,
            broker_port=broker_port,
            server_port=server_port,
            store=store,
            delay_s=0.05,
            interval_s=10.0,
        ),
        workdir / "rss.yaml",
    )
    sim = c.spawn("simulate", config, "asyncio", workdir / "simulator.log")
    daemon = None
    try:
        if kind == "http":
            c.wait_for_port(sim_port)
        else:
            time.sleep(1.5)
        daemon = c.spawn("run", config, "asyncio", workdir / "daemon.log")
        c.wait_healthy(server_port, daemon)
        ready = c.rss_mb(daemon.pid)
        start = time.monotonic()
        samples = [ready]
        while (left := start + seconds - time.monotonic()) > 0:
            time.sleep(min(5.0, left))
            samples.append(c.rss_mb(daemon.pid))
        accepted = c.total(c.scrape(server_port), "sla_collector_results_total")
        end = c.rss_mb(daemon.pid)
    finally:
        if daemon is not None:
            c.stop(daemon)
        c.stop(sim)
    return ready, end, max([*samples, end]), accepted


def main() -> None:
    """Run ``--repeats`` times and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--kind", choices=["http", "mqtt"], default="http")
    args = parser.parse_args()
    c.print_machine()
    ends: list[float] = []
    peaks: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sla-bench-") as tmp:
        workdir = Path(tmp)
        broker: contextlib.AbstractContextManager[tuple[int | None, int | None]] = (
            contextlib.nullcontext((None, None)) if args.kind == "http" else c.mosquitto(workdir)
        )
        with broker as (broker_port, _):
            for repeat in range(args.repeats):
                ready, end, peak, accepted = run_once(
                    args.kind, args.probes, args.seconds, workdir, broker_port
                )
                ends.append(end)
                peaks.append(peak)
                print(
                    f"  run {repeat + 1}: RSS ready {ready:.1f} MB, after {args.seconds:g} s "
                    f"{end:.1f} MB, largest {peak:.1f} MB ({accepted:.0f} results)",
                    flush=True,
                )
    print(
        f"\nmedian RSS with {args.probes} {args.kind} probes after {args.seconds:g} s: "
        f"{c.median(ends):.1f} MB (largest sample {c.median(peaks):.1f} MB)"
    )


if __name__ == "__main__":
    main()
