"""Schema versions: a store written before this code opens, migrates and reports the same
figures, row for row; a store from a newer version is refused."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import StoreError
from monitor.report.compute import build_report
from monitor.report.model import Month
from monitor.store import SqliteStore
from monitor.store.migrations import SCHEMA_VERSION
from tests.monitor.report import scenario

STORES = Path(__file__).parents[2] / "testdata" / "stores"
V0 = STORES / "v0-1fc8925.sqlite3.gz"
V0_REPORT = STORES / "v0-1fc8925.report-2026-10.json"


def _unpack(tmp_path: Path) -> Path:
    path = tmp_path / "old.sqlite3"
    with gzip.open(V0, "rb") as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out)
    return path


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table the old code wrote, sorted (read with plain sqlite3)."""
    with sqlite3.connect(path) as db:
        tables = [
            name
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name != "schema_history"
        ]
        return {t: sorted(db.execute(f"SELECT * FROM {t}"), key=repr) for t in tables}


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


async def test_a_store_from_before_versions_migrates_without_losing_a_row(tmp_path: Path) -> None:
    path = _unpack(tmp_path)
    before = _rows(path)
    assert _user_version(path) == 0
    assert sum(len(rows) for rows in before.values()) > 30_000  # the fixture is not empty

    store = SqliteStore(path)
    await store.open()
    await store.aclose()

    assert _user_version(path) == SCHEMA_VERSION
    after = _rows(path)
    # Versions 3 and 4 added maintenance.correction and .origin: empty for every window
    # recorded before them.
    assert all(row[-2:] == (None, None) for row in after["maintenance"])
    after["maintenance"] = [row[:-2] for row in after["maintenance"]]
    # Version 6 added the batch events' table: empty.
    assert after.pop("batch_events") == []
    # Version 7 added the daily digests' table: empty (the daemon digests from its start).
    assert after.pop("digests") == []
    # Version 8 added results.location (empty: measured before locations) and the
    # instances' table (empty until a daemon runs).
    # Version 14 added results.late (0: one location never stores a result late).
    assert all(row[-2:] == ("", 0) for row in after["results"])
    after["results"] = [row[:-2] for row in after["results"]]
    assert after.pop("instances") == []
    # Version 9 added the leases' table (the leader among several daemons): empty.
    assert after.pop("leases") == []
    # Version 10 added the notifications' outbox: empty.
    assert after.pop("outbox") == []
    # Version 11 added the config history: empty until a daemon starts from a file.
    assert after.pop("config_versions") == []
    assert after.pop("config_history") == []
    # Version 12 added minute_states.faults (none: one location) and each location's
    # counts (empty: one location keeps none).
    assert all(row[-1] == "" for row in after["minute_states"])
    after["minute_states"] = [row[:-1] for row in after["minute_states"]]
    assert after.pop("location_counts") == []
    assert after == before
    with sqlite3.connect(path) as db:
        history = db.execute("SELECT version, sla_monitor FROM schema_history").fetchall()
    assert [version for version, _ in history] == list(range(2, SCHEMA_VERSION + 1))

    # Opening it again changes nothing.
    store = SqliteStore(path)
    await store.open()
    await store.aclose()
    again = _rows(path)
    again["maintenance"] = [row[:-2] for row in again["maintenance"]]
    assert again.pop("batch_events") == []
    assert again.pop("digests") == []
    again["results"] = [row[:-2] for row in again["results"]]
    assert again.pop("instances") == []
    assert again.pop("leases") == []
    assert again.pop("outbox") == []
    assert again.pop("config_versions") == []
    assert again.pop("config_history") == []
    again["minute_states"] = [row[:-1] for row in again["minute_states"]]
    assert again.pop("location_counts") == []
    assert again == before


async def test_a_migrated_store_reports_what_the_old_code_reported(tmp_path: Path) -> None:
    path = _unpack(tmp_path)
    store = SqliteStore(path)
    await store.open()
    try:
        report = await build_report(scenario.config(), store, Month(2026, 10), now=scenario.NOW)
    finally:
        await store.aclose()
    expected = json.loads(V0_REPORT.read_text())
    got = json.loads(report.model_dump_json())
    # Added since the fixture was made (schema v3, v4): empty for every window it holds,
    # but a config window's origin, which is the config file.
    entries = [m for service in got["services"] for m in service["maintenance"]]
    assert entries
    assert [m.pop("correction") for m in entries] == [None] * len(entries)
    assert [m.pop("origin") for m in entries] == [
        "config file" if m["source"] == "config" else None for m in entries
    ]
    # Budgets are now the decimals the targets imply (259.2, not 259.2000000000002): the
    # same figures within float precision.
    for mine, old in zip(_budgets(got), _budgets(expected), strict=True):
        assert mine == pytest.approx(old, rel=1e-12, abs=1e-9)
    _coverage_beside_verdicts(got, expected)
    # Added since (issue 13): where each objective's results come from (all probes then),
    # and the batch objectives (none then).
    assert [o.pop("source") for o in _objectives(got)] == ["probes"] * len(_objectives(got))
    assert [s.pop("batches") for s in got["services"]] == [[]] * len(got["services"])
    # and the digests' chain (no day of that store was digested).
    assert got.pop("evidence") is None
    # Added since (issue 14): location faults (one location then: none).
    assert [s.pop("location_faults") for s in got["services"]] == [[]] * len(got["services"])
    # and each latency objective's one location (none: every location pooled).
    assert {o.pop("location") for o in _objectives(got)} == {None}
    assert got == expected


def _coverage_beside_verdicts(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Report schema 2: the same figures, with coverage beside every verdict. The fixture's
    month was monitored for 10-13 % of its time, so where the old code said PASS or FAIL
    the verdict is now INSUFFICIENT DATA; a day monitored enough keeps its old verdict."""
    assert (got.pop("schema_version"), expected.pop("schema_version")) == (2, 1)
    assert got.pop("contract") is None
    assert got.pop("verdict") == "INSUFFICIENT DATA"
    expected.pop("verdict")
    assert got.pop("counts") == {"PASS": 0, "FAIL": 0, "INSUFFICIENT DATA": 5, "NO DATA": 0}
    expected.pop("counts")
    assert got["period"].pop("measured_from") is not None  # the fixture starts mid-month
    # The method gained a paragraph on the coverage floor; the others are unchanged.
    old_method = {m["topic"]: m["text"] for m in expected.pop("method")}
    new_method = {m["topic"]: m["text"] for m in got.pop("method")}
    assert "INSUFFICIENT DATA" in new_method.pop("Monitoring coverage")
    old_method.pop("Monitoring coverage")
    assert new_method == old_method
    for mine_service, old_service in zip(got["services"], expected["services"], strict=True):
        mine_service.pop("measured_from")
        mine_service.pop("verdict")
        old_service.pop("verdict")
        for mine, old in zip(mine_service["objectives"], old_service["objectives"], strict=True):
            floor = mine.pop("coverage_floor")
            assert mine.pop("wording") is None
            assert (mine.pop("verdict"), floor) == ("INSUFFICIENT DATA", 0.9)
            old.pop("verdict")
            if mine["kind"] == "latency":
                assert old.pop("coverage") is None  # schema 1: availability only
                assert mine.pop("coverage") < floor
            else:
                assert mine["coverage"] == old["coverage"] < floor
            for mine_day, old_day in zip(mine["days"], old["days"], strict=True):
                verdict = mine_day.pop("verdict")
                if mine["kind"] == "latency":
                    old_day.pop("coverage")
                    mine_day.pop("coverage")
                if verdict in ("met", "missed"):
                    assert mine_day["met"] == old_day["met"] == (verdict == "met")
                else:
                    assert mine_day["met"] is None
                mine_day.pop("met")
                old_day.pop("met")


def _budgets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The budget of every objective, taken out of the report."""
    return [o.pop("budget") for s in report["services"] for o in s["objectives"]]


async def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store = SqliteStore(path)
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        await store.open()
    await store.aclose()
    assert _user_version(path) == SCHEMA_VERSION + 1  # untouched


async def test_a_new_store_starts_at_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    store = SqliteStore(path)
    await store.open()
    await store.aclose()
    assert _user_version(path) == SCHEMA_VERSION


def _objectives(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for service in report["services"] for o in service["objectives"]]
