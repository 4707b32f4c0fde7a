"""The install without extras, as the Dockerfile and the README's "install without make"
run it, in a fresh virtual environment: the daemon's commands work, the commands that need
an extra say which install adds it (exit 2), and the metadata carries the SPDX licence."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]


def test_the_base_install_runs_and_names_the_missing_extras(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir", str(REPO)],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(env_dir / "bin" / "sla-monitor"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            check=False,
        )

    for module in ("amqtt", "grafana_foundation_sdk", "rich"):
        absent = subprocess.run(
            [str(python), "-c", f"import {module}"], capture_output=True, timeout=60, check=False
        )
        assert absent.returncode != 0, f"{module} is in the base install"
    demo_config = str(REPO / "config" / "demo.yaml")
    assert cli("check-config", demo_config).returncode == 0
    for args, extra in (
        (("demo", "--config", demo_config), "demo"),
        (("dashboards", "--config", demo_config, "--out", str(tmp_path / "d")), "dashboards"),
    ):
        refused = cli(*args)
        assert refused.returncode == 2, refused.stderr
        assert f"pip install 'sla-monitor[{extra}]'" in refused.stderr
        assert "Traceback" not in refused.stderr
    rules = cli("rules", "--config", demo_config, "--out", str(tmp_path / "rules"))
    assert rules.returncode == 0, rules.stderr
    metadata = "import importlib.metadata as m; print(m.metadata('sla-monitor')"
    licence = subprocess.run(
        [str(python), "-c", metadata + "['License-Expression'])"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert licence.stdout.strip() == "Apache-2.0"
    assert sys.version_info >= (3, 11)
