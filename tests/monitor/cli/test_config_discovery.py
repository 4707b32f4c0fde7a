"""How a command finds its config, as users run it: a separate process, started from a
directory other than the config's. ``--config``, then ``$SLA_MONITOR_CONFIG``, then
``./sla-monitor.yaml``; none: exit 2 naming where it looked, never the demo's config;
relative paths inside the config start at its folder, so a window added from anywhere
lands in the daemon's store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.stack import write_config

REPO = Path(__file__).resolve().parents[3]


def sla_monitor(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    environment.pop("SLA_MONITOR_CONFIG", None)  # only what the test sets
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config in its own folder with a relative store path, and an unrelated working
    directory beside it."""
    folder = tmp_path / "etc"
    folder.mkdir()
    probe = {"name": "p", "kind": "http", "url": "http://127.0.0.1:9/", "interval": "5s"}
    document = {
        "storage": {"path": "state/sla.sqlite3"},  # relative: under etc/, wherever run
        "services": [{"name": "online", "probes": [probe]}],
    }
    write_config(document, folder / "monitor.yaml")
    (tmp_path / "elsewhere").mkdir()
    return folder / "monitor.yaml"


def _windows(store: Path) -> list[str]:
    with closing(sqlite3.connect(store)) as db:
        return [str(reason) for (reason,) in db.execute("SELECT reason FROM maintenance")]


def test_the_environment_names_the_config_and_its_paths_start_at_its_folder(
    site: Path,
) -> None:
    elsewhere = site.parent.parent / "elsewhere"
    env = {"SLA_MONITOR_CONFIG": str(site)}
    args = ["--service", "online", "--start", "2030-01-01T02:00", "--duration", "1h"]
    added = sla_monitor(elsewhere, "maintenance", "add", *args, "--reason", "upgrade", env=env)
    assert added.returncode == 0, added.stderr
    assert f"config {site} (from $SLA_MONITOR_CONFIG)" in added.stderr
    assert _windows(site.parent / "state" / "sla.sqlite3") == ["upgrade"]
    assert not (elsewhere / "state").exists()  # nothing written where it was run

    listed = sla_monitor(elsewhere, "maintenance", "list", "--config", str(site))
    assert "upgrade" in listed.stdout  # --config: the same store


def test_no_config_anywhere_is_exit_2_naming_where_it_looked(site: Path) -> None:
    elsewhere = site.parent.parent / "elsewhere"
    for command in (["rules", "--out", "rules"], ["maintenance", "list"], ["check-config"]):
        done = sla_monitor(elsewhere, *command)
        assert done.returncode == 2, (command, done.stderr)
        assert "no config file: give --config PATH, or export SLA_MONITOR_CONFIG" in done.stderr
    assert not (elsewhere / "rules").exists()  # never the demo's config instead


def test_a_config_in_the_working_directory_is_found_and_said(site: Path) -> None:
    (site.parent / "sla-monitor.yaml").write_text(site.read_text())
    done = sla_monitor(site.parent, "check-config", "--no-env")
    assert done.returncode == 0, done.stderr
    assert "config sla-monitor.yaml (found in the default places)" in done.stderr


def test_check_config_takes_the_path_either_way_but_once(site: Path) -> None:
    elsewhere = site.parent.parent / "elsewhere"
    positional = sla_monitor(elsewhere, "check-config", str(site), "--no-env")
    option = sla_monitor(elsewhere, "check-config", "--config", str(site), "--no-env")
    assert positional.returncode == option.returncode == 0
    assert positional.stdout == option.stdout
    both = sla_monitor(elsewhere, "check-config", str(site), "--config", str(site))
    assert both.returncode == 2
    assert "give the config once" in both.stderr
