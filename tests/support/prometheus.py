"""A real Prometheus (Debian's ``prometheus``) as a child process on a free loopback port,
scraping the given targets every second and evaluating the given rule files. A missing
binary is a failure, not a skip: ``make test`` installs it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from monitor.generate.dashboards import SCRAPE_JOB
from tests.support.brokers import free_port, wait_for_port

#: Scrape and evaluation interval of every Prometheus these tests start.
SCRAPE_S = 1.0


@dataclass
class Prometheus:
    """A Prometheus process a test started."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        """Base URL of its HTTP API."""
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def running_prometheus(
    workdir: Path,
    target_ports: list[int],
    rule_files: list[Path],
    alertmanager_url: str | None = None,
) -> Iterator[Prometheus]:
    """Prometheus on a free loopback port scraping ``target_ports`` every second (and
    sending alerts to ``alertmanager_url``); killed by its PID at the end."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        raise RuntimeError("prometheus is not installed: run `make test` (it installs it)")
    workdir.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": f"{SCRAPE_S:g}s",
            "scrape_timeout": f"{SCRAPE_S:g}s",
            "evaluation_interval": f"{SCRAPE_S:g}s",
        },
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": SCRAPE_JOB,
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in target_ports]}],
            }
        ],
    }
    if alertmanager_url is not None:
        host = alertmanager_url.removeprefix("http://")
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
    conf = workdir / "prometheus.yml"
    conf.write_text(yaml.safe_dump(config))
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={conf}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=out,
        )
    try:
        wait_for_port(port, timeout_s=30)
        yield Prometheus(port, process, log)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


async def query(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector (AssertionError naming the error if it fails)."""
    response = await client.get("/api/v1/query", params={"query": expr})
    body: dict[str, Any] = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"{expr}: {body.get('errorType')}: {body.get('error')}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result
