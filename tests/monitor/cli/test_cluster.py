"""``sla-monitor cluster`` on a daemon's own SQLite file: the one instance, leading."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from monitor.cli.cluster import run_cluster
from monitor.config import Config
from monitor.store import SqliteStore
from monitor.store.records import InstanceRecord
from tests.support.stack import daemon_config, validate

T0 = 1_795_000_000.0


def _config(tmp_path: Path) -> Config:
    return validate(
        daemon_config(
            store=tmp_path / "sla.sqlite3",
            services=[{"name": "s", "probes": [{"name": "p", "kind": "http", "url": "http://x/"}]}],
        )
    )


async def _beat(path: Path, row: InstanceRecord) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        await store.write_instance(row)
    finally:
        await store.aclose()


def test_the_one_daemon_of_a_file_is_listed_as_leader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    row = InstanceRecord("bru-1", "brussels", "0.1.0", T0 - 60, T0 - 2, T0 - 3)
    asyncio.run(_beat(tmp_path / "sla.sqlite3", row))
    assert run_cluster(config, argparse.Namespace(json=False), now=T0) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(": 1 instances, leader bru-1")
    assert out[1].split() == ["INSTANCE", "LOCATION", "VERSION", "STATE", "SEEN", "LAST", "RESULT"]
    assert out[2].split() == [
        "bru-1",
        "(leader)",
        "brussels",
        "0.1.0",
        "up",
        "2",
        "s",
        "ago",
        "3",
        "s",
    ]
    # Seen 20 s ago: more than three heartbeats, stale.
    assert run_cluster(config, argparse.Namespace(json=False), now=T0 + 18) == 0
    assert " stale " in capsys.readouterr().out


def test_no_store_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cluster(_config(tmp_path), argparse.Namespace(json=True), now=T0) == 1
    assert "does not exist" in capsys.readouterr().err
