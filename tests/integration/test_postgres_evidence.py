"""The same month on PostgreSQL as on SQLite: the daily digests made by the digest child
on each store hash each day to the same bytes, and on PostgreSQL the CLI's report, a
correction, the evidence pack and ``verify`` work as they do on the file (verify matches
on every figure)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.store import SqliteStore, Store
from monitor.store.postgres import PostgresStore
from tests.monitor.report import scenario as sc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def _digest(location: str) -> dict[str, Any]:
    """The daemon's digest child, run on the store at ``location``."""
    job = {"store": location, "timezone": "Europe/Brussels", "now": sc.NOW,
           "settle_s": 3600.0, "retention_days": 60}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "monitor.evidence.digest"], input=json.dumps(job),
        capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert answer["status"] == "ok", done.stdout + done.stderr
    return answer


async def _seed(store: Store) -> None:
    """The scenario month, every raw row kept, with its hour summaries."""
    await store.open()
    try:
        await sc.seed(store, all_raw=True)
        await sc.compact(store, sc.config())
    finally:
        await store.aclose()


async def _digests(store: Store) -> list[tuple[str, int, str, str]]:
    await store.open()
    try:
        return [(d.date, d.results, d.results_sha256, d.chain) for d in await store.digests()]
    finally:
        await store.aclose()


def test_a_month_on_postgresql_digests_reports_and_verifies_as_on_sqlite(
    postgres_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "sla.sqlite3"
    asyncio.run(_seed(SqliteStore(path)))
    asyncio.run(_seed(PostgresStore(postgres_url)))
    _digest(str(path))
    answer = _digest(postgres_url)
    assert "2026-10-31" in answer["days"]
    on_file = asyncio.run(_digests(SqliteStore(path)))
    on_server = asyncio.run(_digests(PostgresStore(postgres_url)))
    assert len(on_server) > 31
    assert on_server == on_file  # every day's rows, hashed byte for byte, and the chain

    config = tmp_path / "config.yaml"
    document = {
        **sc.CONFIG,
        "storage": {"url": postgres_url},
        "reports": {"directory": str(tmp_path / "reports"), "formats": ["json"]},
    }
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    first = _cli("report", "--config", str(config), "--month", "2026-10", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    corrected = _cli(
        "report", "correct", "--config", str(config), "--month", "2026-10",
        "--unmonitored", "2026-10-08T09:00", "2026-10-08T11:00",
        "--reason", "probe host lost its route", "--by", "auditor", cwd=tmp_path,
    )  # fmt: skip
    assert corrected.returncode == 0, corrected.stderr
    pack = tmp_path / "pack"
    made = _cli("evidence", "--config", str(config), "--month", "2026-10", "--out", str(pack),
                cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    checked = _cli("verify", str(pack), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "report version 2" in checked.stdout
    assert "31 days match" in checked.stdout
    # The report archived from the database holds the same link as its digests.
    report = json.loads((tmp_path / "reports" / "2026-10" / "v002" / "report.json").read_text())
    assert report["evidence"]["chain"] == dict((d, c) for d, _, _, c in on_server)["2026-10-31"]
