"""sla-monitor beside its peers, in one run, against the same target (issue 16).

HTTP: the real daemon (``bench/_proc.py run``, a process) probing the simulator at rising
offered rates; Prometheus blackbox_exporter (Debian's ``prometheus-blackbox-exporter``)
driven with 32 ``/probe`` requests in flight, as Prometheus would scrape it; and a bare
aiohttp loop with 32 requests in flight. MQTT: the daemon beside a bare aiomqtt loop
with 32 request/reply round trips in flight, through a Mosquitto of our own. The systems
alternate within each of ``--repeats`` rounds; figures are medians over the rounds.

- sla-monitor's rate is the highest offered rate it **kept up** (``throughput.Step``:
  accepted >= 98 % of offered, skipped < 1 %, scheduler lag p99 <= 50 ms);
- a peer's rate is what it completed per second with 32 in flight (a closed loop: its
  ceiling on this machine);
- CPU per probe: the process's CPU time over the probes it completed (blackbox_exporter:
  the exporter alone, not the driver sending it requests).

The last line is ``ratio http sla-monitor/blackbox_exporter: X.XX (sla N/s, blackbox
M/s, aiohttp K/s)``; the line before it ``ratio mqtt sla-monitor/aiomqtt: ...``.

    python bench/compare.py [--quick] [--kind http|mqtt|both] [--repeats 3] [--seconds 8]

``--quick`` (4 s runs after a 2 s warm-up) finishes within 5 minutes on this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as c
import throughput

INFLIGHT = 32
BLACKBOX_CONFIG = """modules:
  http_2xx:
    prober: http
    timeout: 2s
    http:
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
"""


@dataclass
class Figure:
    """One system's run: probes per second, and CPU microseconds per probe."""

    system: str
    rate: float
    cpu_us: float


# --- the peers, each run as a child process: ``compare.py --peer NAME ...`` --------------


async def _closed_loop(exchange: Any, seconds: float, warmup: float) -> dict[str, float]:
    """Run ``exchange()`` from INFLIGHT tasks; count successes after the warm-up."""
    counted = False
    done = failed = 0
    stop = time.monotonic() + warmup + seconds

    async def worker() -> None:
        nonlocal done, failed
        while time.monotonic() < stop:
            ok = await exchange()
            if counted:
                done += ok
                failed += not ok

    tasks = [asyncio.create_task(worker()) for _ in range(INFLIGHT)]
    await asyncio.sleep(warmup)
    counted, cpu0, t0 = True, time.process_time(), time.monotonic()
    await asyncio.gather(*tasks)
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    return {"rate": done / elapsed, "failed": failed / elapsed, "cpu_s": cpu, "done": done}


async def _http_peer(url: str, seconds: float, warmup: float, expect: bytes) -> dict[str, float]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=INFLIGHT)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def exchange() -> bool:
            async with session.get(url) as response:
                body = await response.read()
                return response.status == 200 and expect in body

        return await _closed_loop(exchange, seconds, warmup)


async def _mqtt_peer(port: int, topic: str, seconds: float, warmup: float) -> dict[str, float]:
    import aiomqtt

    from probes.wire import Request

    reply_to = "bench/compare/reply"
    pending: dict[str, asyncio.Future[None]] = {}
    ids = itertools.count()
    async with aiomqtt.Client("127.0.0.1", port, max_queued_outgoing_messages=0) as client:
        await client.subscribe(reply_to, qos=1)

        async def replies() -> None:
            async for message in client.messages:
                answer = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                future = pending.pop(str(answer["id"]), None)
                if future is not None and not future.done():
                    future.set_result(None)

        reader = asyncio.create_task(replies())

        async def exchange() -> bool:
            request_id = str(next(ids))
            future = pending[request_id] = asyncio.get_running_loop().create_future()
            payload = Request(request_id, time.time(), reply_to).encode()
            await client.publish(topic, payload, qos=1)
            try:
                async with asyncio.timeout(2.0):
                    await future
            except TimeoutError:
                pending.pop(request_id, None)
                return False
            return True

        try:
            return await _closed_loop(exchange, seconds, warmup)
        finally:
            reader.cancel()


def peer_main(args: argparse.Namespace) -> None:
    """The child's side: run one peer, print its figures as JSON."""
    if args.peer == "mqtt":
        figures = asyncio.run(_mqtt_peer(args.port, args.topic, args.seconds, args.warmup))
    else:
        expect = b"probe_success 1" if args.peer == "blackbox" else b""
        figures = asyncio.run(_http_peer(args.url, args.seconds, args.warmup, expect))
    print(json.dumps(figures), flush=True)


def _peer(workdir: Path, extra: list[str], seconds: float, warmup: float) -> Any:
    """Start this script as a peer's closed loop (a process of its own)."""
    argv = [sys.executable, __file__, "--seconds", str(seconds), "--warmup", str(warmup), *extra]
    with (workdir / "peer.log").open("ab") as log:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, cwd=c.ROOT)


# --- one round ------------------------------------------------------------------------


@contextlib.contextmanager
def simulator(kind: str, workdir: Path, broker_port: int | None) -> Iterator[int]:
    """The simulator on uvloop (as ``throughput.py`` runs it), alone; yields its HTTP port."""
    port = c.free_port()
    document = throughput.document(kind, 4, sim_port=port, broker_port=broker_port,
                                   server_port=c.free_port(), store=workdir / "unused.sqlite3",
                                   delay_s=throughput.DELAY_S)  # fmt: skip
    config = c.write_config(document, workdir / f"sim-{kind}.yaml")
    sim = c.spawn("simulate", config, "uvloop", workdir / "simulator.log")
    try:
        if kind == "http":
            c.wait_for_port(port)
        else:
            time.sleep(1.5)  # the responder subscribes in the background
        yield port
    finally:
        c.stop(sim)


def run_peer(name: str, extra: list[str], cpu_of: int | None, args: argparse.Namespace,
             workdir: Path) -> Figure:  # fmt: skip
    """A peer's closed loop; CPU of ``cpu_of`` (the exporter) or of the loop itself."""
    process = _peer(workdir, extra, args.seconds, args.warmup)
    meter = c.CpuMeter([cpu_of]) if cpu_of is not None else None
    time.sleep(args.warmup)
    if meter is not None:
        meter.start()
    out, _ = process.communicate(timeout=args.seconds + args.warmup + 60)
    figures = json.loads(out.decode().strip().splitlines()[-1])
    rate = figures["rate"]
    if meter is not None:
        assert cpu_of is not None
        cpu_s = meter.stop()[cpu_of] / 100 * args.seconds
    else:
        cpu_s = figures["cpu_s"]
    cpu_us = 1e6 * cpu_s / figures["done"] if figures["done"] else float("nan")
    print(f"  {name:16} {rate:8.0f}/s  cpu {cpu_us:6.0f} us/probe  failed "
          f"{figures['failed']:.0f}/s", flush=True)  # fmt: skip
    return Figure(name, rate, cpu_us)


def run_sla(kind: str, rates: list[float], args: argparse.Namespace, workdir: Path,
            broker: tuple[int | None, int | None]) -> Figure:  # fmt: skip
    """The daemon at rising offered rates until one it does not keep up; its figure is the
    highest it kept up."""
    best = Figure("sla-monitor", 0.0, float("nan"))
    for rate in rates:
        step = throughput.measure(kind, rate, args.seconds, workdir, broker[0], broker[1],
                                  args.sla_loop, "uvloop", warmup_s=args.warmup)  # fmt: skip
        throughput.show(step)
        if not step.kept_up:
            break
        if step.accepted > best.rate:
            cpu_us = 1e6 * step.cpu_daemon / 100 / step.accepted
            best = Figure("sla-monitor", step.accepted, cpu_us)
    print(f"  {'sla-monitor':16} kept up {best.rate:8.0f}/s  cpu {best.cpu_us:6.0f} us/probe",
          flush=True)  # fmt: skip
    return best


def http_round(args: argparse.Namespace, workdir: Path, rates: list[float]) -> list[Figure]:
    figures = [run_sla("http", rates, args, workdir, (None, None))]
    binary = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if binary is None:
        raise SystemExit("blackbox_exporter missing: apt-get install prometheus-blackbox-exporter")
    with simulator("http", workdir, None) as port:
        target = f"http://127.0.0.1:{port}/svc/0"
        (workdir / "blackbox.yml").write_text(BLACKBOX_CONFIG)
        listen = c.free_port()
        with (workdir / "blackbox.log").open("ab") as log:
            exporter = subprocess.Popen(
                [binary, f"--config.file={workdir / 'blackbox.yml'}",
                 f"--web.listen-address=127.0.0.1:{listen}"],
                stdout=log, stderr=log,
            )  # fmt: skip
        try:
            c.wait_for_port(listen)
            probe = f"http://127.0.0.1:{listen}/probe?module=http_2xx&target={target}"
            figures.append(run_peer("blackbox_exporter", ["--peer", "blackbox", "--url", probe],
                                    exporter.pid, args, workdir))  # fmt: skip
        finally:
            c.stop(exporter)
        figures.append(
            run_peer("aiohttp", ["--peer", "aiohttp", "--url", target], None, args, workdir)
        )
    return figures


def mqtt_round(args: argparse.Namespace, workdir: Path, rates: list[float]) -> list[Figure]:
    with c.mosquitto(workdir) as (broker_port, broker_pid):
        figures = [run_sla("mqtt", rates, args, workdir, (broker_port, broker_pid))]
        with simulator("mqtt", workdir, broker_port):
            topic = "bench/online/t0/request"
            extra = ["--peer", "mqtt", "--port", str(broker_port), "--topic", topic]
            figures.append(run_peer("aiomqtt", extra, None, args, workdir))
    return figures


def medians(rounds: list[list[Figure]]) -> dict[str, Figure]:
    by: dict[str, list[Figure]] = {}
    for figure in itertools.chain.from_iterable(rounds):
        by.setdefault(figure.system, []).append(figure)
    return {
        name: Figure(name, c.median([f.rate for f in group]), c.median([f.cpu_us for f in group]))
        for name, group in by.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="finish within 5 minutes")
    parser.add_argument("--kind", choices=["http", "mqtt", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    # Rising; the first rate not kept up ends the ladder.
    parser.add_argument("--rates-http", default="500,1000,1500,2000,2500,3000,4000,5000,6000")
    parser.add_argument("--rates-mqtt", default="250,500,750,1000,1500,2000,3000,4000")
    parser.add_argument("--sla-loop", choices=["asyncio", "uvloop"], default="asyncio",
                        help="the daemon's event loop (the peers run on asyncio)")  # fmt: skip
    # The child's side (a peer's closed loop).
    parser.add_argument("--peer", choices=["aiohttp", "blackbox", "mqtt"])
    parser.add_argument("--url")
    parser.add_argument("--port", type=int)
    parser.add_argument("--topic")
    args = parser.parse_args()
    if args.peer:
        peer_main(args)
        return
    if args.quick:
        args.seconds, args.warmup = 4.0, 2.0
    c.print_machine()
    kinds = ["http", "mqtt"] if args.kind == "both" else [args.kind]
    results: dict[str, list[list[Figure]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="sla-compare-") as tmp:
        workdir = Path(tmp)
        for round_ in range(args.repeats):
            for kind in kinds:
                print(f"round {round_ + 1}/{args.repeats}: {kind}", flush=True)
                rates = [float(r) for r in getattr(args, f"rates_{kind}").split(",")]
                play = http_round if kind == "http" else mqtt_round
                results[kind].append(play(args, workdir, rates))
    print(f"\nmedians of {args.repeats} rounds:")
    for kind in kinds:
        for figure in medians(results[kind]).values():
            print(f"  {kind} {figure.system:18} {figure.rate:8.0f}/s  {figure.cpu_us:6.0f} us CPU"
                  " per probe")  # fmt: skip
    if "mqtt" in kinds:
        m = medians(results["mqtt"])
        sla, bare = m["sla-monitor"].rate, m["aiomqtt"].rate
        print(f"ratio mqtt sla-monitor/aiomqtt: {sla / bare:.2f} (sla {sla:.0f}/s, "
              f"aiomqtt {bare:.0f}/s)")  # fmt: skip
    if "http" in kinds:
        h = medians(results["http"])
        sla, box, bare = (h[n].rate for n in ("sla-monitor", "blackbox_exporter", "aiohttp"))
        print(f"ratio http sla-monitor/blackbox_exporter: {sla / box:.2f} (sla {sla:.0f}/s, "
              f"blackbox {box:.0f}/s, aiohttp {bare:.0f}/s)")  # fmt: skip


if __name__ == "__main__":
    main()
