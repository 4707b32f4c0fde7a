"""Evidence of two locations: a month decided by the quorum of locations a and b on one
PostgreSQL store (a location fault each, a minute down for both, one unmonitored, each
location's own latency objective, a late result), then ``report``, the digest child,
``evidence`` and ``verify`` through the CLI. ``verify`` recomputes the quorum, the
location faults and the per-location figures from the pack's raw rows alone and matches
the report; a pack whose late mark or location was changed names the tampered day."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitor.ledger.test_locations import M0, Daemon, document

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-01-01"  # M0 is 2026-01-01 10:00 UTC


def _run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, input=stdin, capture_output=True, text=True,
        timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


async def _measure(url: str) -> None:
    """What both locations saw, sealed by both daemons, and one late result."""
    a, b = Daemon("a", url), Daemon("b", url)
    for daemon in (a, b):
        await daemon.store.open()
    try:
        for daemon in (a, b):
            await daemon.seal(M0 * 60.0)
        await a.minute(M0, ok=0, failed=6)  # a alone sees it down: up, a at fault
        await b.minute(M0, ok=6, failed=0)
        await a.minute(M0 + 1, ok=1, failed=5)  # both: down
        await b.minute(M0 + 1, ok=0, failed=6)
        await b.minute(M0 + 2, ok=6, failed=0)  # only b measured: unmonitored
        await a.minute(M0 + 3, ok=6, failed=0, latency=0.5)  # a fast, b slow
        await b.minute(M0 + 3, ok=6, failed=0, latency=1.5)
        await a.minute(M0 + 4, ok=6, failed=0)  # b alone sees it down: up, b at fault
        await b.minute(M0 + 4, ok=2, failed=4)
        now = (M0 + 8) * 60.0
        await a.seal(now)
        await b.seal(now)
        await a.minute(M0 + 1, ok=3, failed=0)  # after the decision: stored late
    finally:
        for daemon in (a, b):
            await daemon.store.aclose()


def _tampered(pack: Path, out: Path, change: Any) -> Path:
    """A copy of ``pack`` whose results.csv rows went through ``change``."""
    shutil.copytree(pack, out)
    with (pack / "results.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    header = rows[0]
    body = [change(header, row) for row in rows[1:]]
    with (out / "results.csv").open("w", newline="", encoding="utf-8") as file:
        csv.writer(file, lineterminator="\n").writerows([header, *body])
    return out


def test_verify_recomputes_the_quorum_of_locations_from_the_pack(
    postgres_url: str, tmp_path: Path
) -> None:
    asyncio.run(_measure(postgres_url))
    config = tmp_path / "config.yaml"
    doc = document("a", postgres_url)
    doc["services"][0]["probes"][0]["url"] = "http://127.0.0.1:9/"
    doc["reports"] = {"directory": str(tmp_path / "reports"), "formats": ["json"]}
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")

    # The daily digests of January, as the daemon's child makes them.
    now = dt.datetime(2026, 2, 2, tzinfo=dt.UTC).timestamp()
    job = {"store": postgres_url, "timezone": "Europe/Brussels", "now": now,
           "settle_s": 3600.0, "retention_days": 40}  # fmt: skip
    digest = _run("-m", "monitor.evidence.digest", cwd=tmp_path, stdin=json.dumps(job))
    assert json.loads(digest.stdout.splitlines()[-1])["status"] == "ok", digest.stderr
    report = _run("-m", "monitor", "report", "--config", str(config), "--month", "2026-01",
                  cwd=tmp_path)  # fmt: skip
    assert report.returncode == 0, report.stderr
    pack = tmp_path / "pack"
    made = _run("-m", "monitor", "evidence", "--config", str(config), "--month", "2026-01",
                "--out", str(pack), cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr

    # The report, against what was fed above (worked out by hand).
    archived = json.loads((tmp_path / "reports" / "2026-01" / "v001" / "report.json").read_text())
    (service,) = archived["services"]
    objectives = {o["objective"]: o for o in service["objectives"]}
    states = objectives["avail"]["minute_states"]
    assert (states["up"], states["down"]) == (3, 1)  # M0, M0+3, M0+4 up; M0+1 down
    faults = {(f["objective"], f["location"]): f["minutes"] for f in service["location_faults"]}
    assert faults == {("avail", "a"): 1, ("avail", "b"): 1}
    # Latency: a's 4 minutes of 6 results, b's 5; the 3 late results count nowhere.
    assert (objectives["fast-a"]["valid"], objectives["fast-a"]["good"]) == (24, 0 + 1 + 6 + 6)
    assert (objectives["fast-b"]["valid"], objectives["fast-b"]["good"]) == (30, 6 + 6 + 2)
    assert objectives["fast-b"]["location"] == "b"
    assert objectives["fast"]["valid"] == 54
    with (pack / "results.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 57
    assert sum(r["late"] == "1" for r in rows) == 3
    assert {r["location"] for r in rows} == {"a", "b"}

    checked = _run("-m", "monitor", "verify", str(pack), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "svc location faults" in checked.stdout
    assert "MISMATCH" not in checked.stdout

    # A late result passed off as counted, and a result moved to the other location:
    # the figures move and the day's digest no longer holds.
    def counted(header: list[str], row: list[str]) -> list[str]:
        return [*row[:-1], "0"] if row[-1] == "1" else row

    moved = False

    def elsewhere(header: list[str], row: list[str]) -> list[str]:
        nonlocal moved
        if moved or row[header.index("location")] != "a":
            return row
        moved = True
        return [*row[:-2], "b", row[-1]]

    for name, change in (("counted", counted), ("moved", elsewhere)):
        bad = _run("-m", "monitor", "verify", str(_tampered(pack, tmp_path / name, change)),
                   cwd=tmp_path)  # fmt: skip
        assert bad.returncode != 0, bad.stdout
        assert "MISMATCH" in bad.stdout, bad.stdout
        assert f"differ on {DAY}" in bad.stdout, bad.stdout
