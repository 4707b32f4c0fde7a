"""A real Alertmanager (Debian's ``prometheus-alertmanager``) as a child process on a free
loopback port. A missing binary is a failure, not a skip: ``make test`` installs it."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.brokers import free_port

# One receiver that notifies nobody: the tests only read Alertmanager's API.
_CONFIG = """\
route:
  receiver: "null"
  group_wait: 0s
receivers:
  - name: "null"
"""


@dataclass
class Alertmanager:
    """An Alertmanager this test started."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """Its base URL (``/api/v2/alerts`` lies under it)."""
        return f"http://127.0.0.1:{self.port}"


def alertmanager_binary() -> str:
    """Path of the Alertmanager binary (Debian names it prometheus-alertmanager)."""
    for name in ("prometheus-alertmanager", "alertmanager"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("prometheus-alertmanager is not installed: run `make test` (it installs it)")


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """Block until ``GET /-/ready`` answers 200."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"alertmanager exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=0.5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"alertmanager at {url} not ready after {timeout_s}s")
        time.sleep(0.05)


#: With a webhook: every alert grouped by objective and sent at once, resolved ones too.
_WEBHOOK_CONFIG = """\
route:
  receiver: hook
  group_by: [alertname, service, objective]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs:
      - url: "{url}"
        send_resolved: true
"""


@contextlib.contextmanager
def running_alertmanager(workdir: Path, webhook_url: str | None = None) -> Iterator[Alertmanager]:
    """An Alertmanager on a free loopback port, clustering off, killed (by PID) at the end;
    with ``webhook_url``, its one receiver posts Alertmanager's webhook there."""
    config = workdir / "alertmanager.yml"
    config.write_text(_CONFIG if webhook_url is None else _WEBHOOK_CONFIG.format(url=webhook_url))
    storage = workdir / "alertmanager-data"
    storage.mkdir(exist_ok=True)
    port = free_port()
    args = [
        alertmanager_binary(),
        f"--config.file={config}",
        f"--storage.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # empty: no gossip port, no peers
    ]
    with (workdir / "alertmanager.log").open("ab") as log:  # the child keeps its copy
        process = subprocess.Popen(args, stdout=log, stderr=log)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", process)
        yield Alertmanager(port=port, process=process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
