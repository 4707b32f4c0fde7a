"""What the tests of real-traffic events share: a daemon with one traffic feed, written as
a config file, and started as its own process (so it can be SIGKILLed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def traffic_daemon_config(folder: Path, port: int, token_env: str, **extra: Any) -> Path:
    """A config file in ``folder``: service ``online`` with the traffic feed ``messages``
    and ``online-1s`` on it, its store beside it, ``extra`` top-level sections added."""
    document: dict[str, Any] = {
        "timezone": "UTC",
        "server": {"listen": f"127.0.0.1:{port}", "api_token_env": token_env},
        "storage": {"path": str(folder / "sla.sqlite3")},
        "reports": {"enabled": False, "directory": str(folder / "reports")},
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
        **extra,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def start_daemon(config: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``sla-monitor run`` on ``config``, its output in ``daemon.log`` beside it."""
    with (config.parent / "daemon.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=log,
        )
