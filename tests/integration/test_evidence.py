"""``sla-monitor evidence``: a month's evidence pack, made by the CLI (a real process) from
a seeded store with an archived report, is checked by the standard ``sha256sum -c``; its
rows are the store's, counted here with sqlite3; a changed byte is caught; a bad month or
a folder already used is exit 2 and writes nothing."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import yaml

from monitor.results import BatchRecord
from monitor.store import SqliteStore
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
        "publications.csv", "batch_events.csv",
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
    # Each window recorded at run time was on the status page and the feed from then.
    published = _rows(pack / "publications.csv")
    assert sorted((p["window_id"], p["channel"]) for p in published) == sorted(
        (m["id"], channel) for m in maintenance for channel in ("status page", "feed")
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


def _verify(pack: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _cli("verify", str(pack), cwd=cwd)


def test_verify_recomputes_every_figure_and_names_each_tampered_day(tmp_path: Path) -> None:
    """The scenario month (outage, maintenance announced on time and late, a monitor gap,
    a provider, service hours, a DST change) with every raw result kept, plus a
    correction, the daemon's daily digests made before the report: verify matches on every
    figure, digest and link. Then, in copies of the pack, one raw row flipped, one removed,
    a maintenance announcement moved, a batch processed later and a day's digest replaced:
    verify names each day."""
    store = sc.seed_file(tmp_path / "sla.sqlite3", all_raw=True)
    asyncio.run(_hand_in(store, BATCHES))
    config = tmp_path / "config.yaml"
    document = {
        **sc.CONFIG,
        "services": [*sc.CONFIG["services"], FILES],
        "storage": {"path": str(store)},
        "reports": {"directory": str(tmp_path / "reports"), "formats": ["json"]},
    }
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    # The daemon's daily digests, made as the daemon makes them (a child process on the
    # file), before the month's report, which freezes the chain's link of October 31.
    job = {"store": str(store), "timezone": "Europe/Brussels", "now": sc.NOW,
           "settle_s": 3600.0, "retention_days": 60}  # fmt: skip
    digested = subprocess.run(
        [sys.executable, "-m", "monitor.evidence.digest"], input=json.dumps(job),
        capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    answer = json.loads(digested.stdout.splitlines()[-1])
    assert answer["status"] == "ok", digested.stdout + digested.stderr
    assert "2026-10-01" in answer["days"]
    assert "2026-11-09" in answer["days"]  # the last day over by an hour at NOW
    first = _cli("report", "--config", str(config), "--month", "2026-10", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    # The monitor was faulty for two hours on the 8th: a correction makes them unmonitored.
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
    # The digests of the month's days, counted here from the store with sqlite3.
    with closing(sqlite3.connect(store)) as db:
        per_day = dict(db.execute("SELECT date, results FROM digests").fetchall())
    assert sum(per_day[f"2026-10-{d:02d}"] for d in range(1, 32)) == len(
        _rows(pack / "results.csv")
    )

    checked = _verify(pack, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "report version 2" in checked.stdout
    assert "MATCH: all 11 checks" in checked.stdout
    # No daemon started from a config file on this seeded store: an empty config history.
    assert "config history" in checked.stdout
    assert "report's chain link" in checked.stdout
    assert "31 days match" in checked.stdout
    # The ground truth, from the scenario's own definition (not from verify or the report):
    # core's availability over the month's monitored, eligible minutes.
    gap_core = set(sc.GAP)
    fault = range(sc.minute_of("2026-10-08T09:00"), sc.minute_of("2026-10-08T11:00"))
    states = [
        sc.core_state(m) for m in range(sc.FIRST, sc.AFTER) if m not in gap_core and m not in fault
    ]
    up, down = states.count("up"), states.count("down")
    line = next(x for x in checked.stdout.splitlines() if x.startswith("core/availability"))
    assert f"{up} up / {up + down} = {100 * up / (up + down):.4f} %" in line
    assert "unmonitored 240" in line  # the 120-minute gap and the 120 corrected minutes
    # The batches: 1,000 records a day; on the 12th 200 of them late, on the 31st all of
    # them processed in November, in time.
    line = next(x for x in checked.stdout.splitlines() if x.startswith("files/data-4d"))
    assert "30800/31000 in time" in line

    def tampered(name: str, edit: Callable[[Path], None]) -> subprocess.CompletedProcess[str]:
        copy = tmp_path / name
        shutil.copytree(pack, copy)
        edit(copy)
        return _verify(copy, tmp_path)

    def flip(copy: Path) -> None:  # an ok result on the 3rd becomes a timeout
        _edit_results(copy, lambda rows: _first_on(rows, "2026-10-03", "core"), "timeout")

    def drop(copy: Path) -> None:  # a result of the 21st disappears
        _edit_results(copy, lambda rows: _first_on(rows, "2026-10-21", "portal"), None)

    def announce_later(copy: Path) -> None:  # the on-time maintenance "announced" at its start
        path = copy / "maintenance.csv"
        rows = _rows(path)
        for row in rows:
            if float(row["start"]) == sc.MAINTENANCE[0]:
                row["announced_at"] = repr(sc.MAINTENANCE[0] + 3600)
        _write_rows(path, rows)

    def process_later(copy: Path) -> None:  # the 5th's batch processed a week later
        path = copy / "batch_events.csv"
        rows = _rows(path)
        for row in rows:
            if row["id"] == "p5":
                row["at"] = repr(float(row["at"]) + 7 * 86400)
        _write_rows(path, rows)

    def rewrite_digest(copy: Path) -> None:  # the 10th's digest replaced by another
        path = copy / "digests.csv"
        rows = _rows(path)
        for row in rows:
            if row["date"] == "2026-10-10":
                row["results_sha256"] = hashlib.sha256(b"other rows").hexdigest()
        _write_rows(path, rows)

    for name, edit, day in (
        ("flipped", flip, "2026-10-03"),
        ("dropped", drop, "2026-10-21"),
        ("announced", announce_later, "2026-10-20"),
        ("processed", process_later, "2026-10-05"),
        ("digest", rewrite_digest, "2026-10-10"),
    ):
        result = tampered(name, edit)
        assert result.returncode == 1, (name, result.stdout)
        assert "changed" in result.stdout
        verdict = result.stdout.splitlines()[-1]
        assert verdict.startswith("MISMATCH"), (name, verdict)
        assert verdict.endswith(f"on {day}"), (name, verdict)
        # A row changed or removed after its day was digested: the day's digest says so.
        digest_named = f"daily digests of results.csv: differs on {day}" in result.stdout
        assert digest_named == (name in ("flipped", "dropped", "digest")), (name, result.stdout)
    assert "digest chain: differs on 2026-10-10" in result.stdout


#: A service measured by batch events alone: 99 % of each day's records within 4 days.
FILES = {
    "name": "files",
    "objectives": [{"name": "data-4d", "kind": "batch", "deadline": "4d", "target": 99}],
}


def _batches() -> list[BatchRecord]:
    """One batch of 1,000 records handed in at 09:00 each day of October; processed a day
    later, except the 12th's (200 records five days later) and the 31st's (in November)."""
    events = []
    for day in range(1, 32):
        at = sc.local(f"2026-10-{day:02d}T09:00")
        name = f"B{day:02d}"
        events.append(BatchRecord("files", f"s{day}", name, "submitted", at, 1000))
        if day == 12:
            events.append(BatchRecord("files", f"p{day}", name, "processed", at + 86400, 800))
            events.append(BatchRecord("files", f"q{day}", name, "processed", at + 5 * 86400, 200))
        else:
            events.append(BatchRecord("files", f"p{day}", name, "processed", at + 86400, 1000))
    return events


BATCHES = _batches()


async def _hand_in(path: Path, events: list[BatchRecord]) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        await store.write_batch_events(events)
    finally:
        await store.aclose()


def _first_on(rows: list[dict[str, str]], day: str, service: str) -> int:
    return next(
        i
        for i, row in enumerate(rows)
        if row["started_at_utc"].startswith(day + "T12") and row["service"] == service
        and row["outcome"] == "ok"
    )  # fmt: skip


def _edit_results(
    copy: Path, pick: Callable[[list[dict[str, str]]], int], outcome: str | None
) -> None:
    path = copy / "results.csv"
    rows = _rows(path)
    index = pick(rows)
    if outcome is None:
        del rows[index]
    else:
        rows[index]["outcome"] = outcome
    _write_rows(path, rows)


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_verify_says_what_is_not_a_pack(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _verify(tmp_path / "empty", tmp_path)
    assert result.returncode == 2
    assert "not an evidence pack: SHA256SUMS is missing" in result.stderr
    assert result.stdout == ""
