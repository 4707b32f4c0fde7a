"""``sla-monitor evidence``: a month's evidence pack, made by the CLI (a real process) from
a seeded store with an archived report, is checked by the standard ``sha256sum -c``; its
rows are the store's, counted here with sqlite3; a changed byte is caught; a bad month or
a folder already used is exit 2 and writes nothing."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import yaml

from tests.monitor.report import scenario as sc

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


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_an_evidence_pack_holds_the_months_rows_and_checks_with_sha256sum(
    tmp_path: Path,
) -> None:
    store = sc.seed_file(tmp_path / "sla.sqlite3")
    config = tmp_path / "config.yaml"
    document = {
        **sc.CONFIG,
        "storage": {"path": str(store)},
        "reports": {"directory": str(tmp_path / "reports"), "formats": ["json", "md"]},
    }
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    archived = _cli("report", "--config", str(config), "--month", "2026-10", cwd=tmp_path)
    assert archived.returncode == 0, archived.stderr
    pack = tmp_path / "pack"

    made = _cli("evidence", "--config", str(config), "--month", "2026-10", "--out", str(pack),
                cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "sha256sum -c SHA256SUMS" in made.stdout
    checked = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=pack, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = {line.split("  ", 1)[1] for line in (pack / "SHA256SUMS").read_text().splitlines()}
    expected = {
        "README.txt", "config.yaml", "results.csv", "minutes.csv", "maintenance.csv",
        "batch_events.csv",
    }  # fmt: skip
    assert expected <= listed
    assert {name for name in listed if name.startswith("reports/v001/")} >= {
        "reports/v001/report.json",
        "reports/v001/manifest.json",
    }

    # The rows are the store's, counted with sqlite3 over the month's bounds.
    first, after = sc.minute_of("2026-10-01T00:00"), sc.minute_of("2026-11-01T00:00")
    with closing(sqlite3.connect(store)) as db:
        raw = db.execute(
            "SELECT service, probe, started_at, latency_s, outcome FROM results"
            " WHERE started_at >= ? AND started_at < ? ORDER BY started_at, service, probe",
            (first * 60, after * 60),
        ).fetchall()
        decided = db.execute(
            "SELECT COUNT(*) FROM minute_states WHERE minute >= ? AND minute < ?",
            (first, after),
        ).fetchone()[0]
    results = _rows(pack / "results.csv")
    assert len(raw) > 1000  # one day of raw results in the scenario
    assert sorted(
        (r["service"], r["probe"], float(r["started_at"]), float(r["latency_s"]), r["outcome"])
        for r in results
    ) == sorted(raw)
    minutes = _rows(pack / "minutes.csv")
    assert len(minutes) == decided  # one availability objective per service
    assert {m["state"] for m in minutes} >= {"up", "down", "maintenance", "outside_hours"}
    maintenance = _rows(pack / "maintenance.csv")
    assert sorted((float(m["start"]), float(m["announced_at"])) for m in maintenance) == sorted(
        (start, announced) for start, _, announced in (sc.MAINTENANCE, sc.LATE)
    )
    figures = json.loads((pack / "reports" / "v001" / "report.json").read_text())
    assert figures["period"]["month"] == "2026-10"

    # One changed byte is named by sha256sum.
    text = (pack / "results.csv").read_text()
    (pack / "results.csv").write_text(text.replace(",ok,", ",timeout,", 1))
    tampered = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=pack, capture_output=True, text=True
    )
    assert tampered.returncode == 1
    assert "results.csv: FAILED" in tampered.stdout

    # A folder already used, or a bad month: exit 2, nothing written.
    before = sorted(p.name for p in pack.iterdir())
    again = _cli("evidence", "--config", str(config), "--month", "2026-10", "--out", str(pack),
                 cwd=tmp_path)  # fmt: skip
    assert again.returncode == 2
    assert "not an empty folder" in again.stderr
    assert sorted(p.name for p in pack.iterdir()) == before
    bad = _cli("evidence", "--config", str(config), "--month", "2026-13", "--out",
               str(tmp_path / "other"), cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2
    assert not (tmp_path / "other").exists()
