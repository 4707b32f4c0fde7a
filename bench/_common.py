"""Shared helpers of the benchmarks: machine facts, ports, a private Mosquitto, the daemon
and simulator as child processes, /metrics scraping and small statistics."""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def machine() -> dict[str, str]:
    """The facts RESULTS.md quotes for every figure."""
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_avg_1m": f"{os.getloadavg()[0]:.2f}",
    }


def print_machine() -> None:
    """Print the machine facts as one line."""
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine().items()), flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 15.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.05)


@contextlib.contextmanager
def mosquitto(workdir: Path, extra: str = "") -> Iterator[tuple[int, int]]:
    """A Mosquitto of our own on a free loopback port (never the system one on 1883);
    yields (port, pid)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "set_tcp_nodelay true\n"
        "persistence false\n"
        "log_dest stderr\n"
        "log_type error\n"
        "max_queued_messages 1000000\n" + extra
    )
    with (workdir / "mosquitto.log").open("ab") as log:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
    try:
        wait_for_port(port)
        yield port, process.pid
    finally:
        stop(process)


def write_config(document: dict[str, Any], path: Path) -> Path:
    """Write a config document as YAML."""
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def spawn(
    command: str, config: Path, loop: str, log: Path, extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Start ``bench/_proc.py <command>`` (``run`` or ``simulate``) as a child process."""
    with log.open("ab") as out:
        argv = [sys.executable, str(BENCH_DIR / "_proc.py"), command]
        argv += ["--config", str(config), "--loop", loop, *extra]
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM a child we started (it drains and flushes), SIGKILL if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def scrape(port: int, timeout_s: float = 10.0) -> Samples:
    """Every sample of the daemon's /metrics, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as r:
        text = r.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    """Wait until the daemon answers /healthz (it serves once its probes are built)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("daemon did not become healthy")


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def histogram_delta(before: Samples, after: Samples, name: str) -> dict[float, float]:
    """Cumulative bucket counts (le -> count) of an unlabelled histogram between scrapes."""
    buckets: dict[float, float] = {}
    for (n, labels), value in after.items():
        if n == f"{name}_bucket":
            le = float(dict(labels)["le"])
            buckets[le] = value - before.get((n, labels), 0.0)
    return dict(sorted(buckets.items()))


def bucket_quantile(buckets: dict[float, float], q: float) -> float:
    """Upper bound of the bucket holding quantile ``q`` (cumulative counts)."""
    count = buckets.get(math.inf, 0.0)
    if count <= 0:
        return math.nan
    for le, cumulative in buckets.items():
        if cumulative >= q * count:
            return le
    return math.inf


@dataclass
class CpuMeter:
    """CPU seconds used by some processes between ``start`` and ``stop``."""

    pids: Sequence[int]
    _start: dict[int, float] = field(default_factory=dict)
    _t0: float = 0.0

    def _cpu(self) -> dict[int, float]:
        out = {}
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(pid).cpu_times()
                out[pid] = t.user + t.system
        return out

    def start(self) -> None:
        """Take the first reading."""
        self._start, self._t0 = self._cpu(), time.monotonic()

    def stop(self) -> dict[int, float]:
        """CPU use since ``start`` in percent of one core, by pid."""
        now, elapsed = self._cpu(), time.monotonic() - self._t0
        return {p: 100 * (now[p] - self._start.get(p, 0.0)) / elapsed for p in now}


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB (10^6 bytes)."""
    return psutil.Process(pid).memory_info().rss / 1e6


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def median(values: Sequence[float]) -> float:
    """Median, NaN when empty."""
    return statistics.median(values) if values else math.nan


def py_spy(pid: int, seconds: float, folder: Path, name: str) -> subprocess.Popen[bytes]:
    """Sample ``pid`` with py-spy for ``seconds``: collapsed stacks in ``folder/name.txt``
    (read them with ``bench/hotspots.py``)."""
    folder.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [binary, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    argv += ["--format", "raw", "--rate", "200", "--output", str(folder / f"{name}.txt")]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def throwaway_database(admin: str) -> Iterator[str]:
    """A new database on the PostgreSQL server at ``admin`` (a libpq URL), dropped after."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
