"""``sla-monitor maintenance add|list|remove`` as users run it: a separate process."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.store import SqliteStore
from monitor.timeparse import format_local, parse_duration_s, parse_instant
from tests.support.brokers import free_port
from tests.support.stack import write_config

REPO = Path(__file__).resolve().parents[3]
BRUSSELS = ZoneInfo("Europe/Brussels")


def utc(text: str) -> float:
    """Epoch seconds of a UTC ISO time."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where the config puts the store: a folder that does not exist yet."""
    return tmp_path / "data" / "sla.sqlite3"


@pytest.fixture
def config(tmp_path: Path, store_path: Path) -> Path:
    """A config with two services, its store under tmp_path."""
    probe = {"name": "p", "kind": "http", "url": "http://127.0.0.1:9/", "interval": "5s"}
    document = {
        "timezone": "Europe/Brussels",
        # A port nobody listens on: no daemon answers, so the CLI writes the store.
        "server": {"listen": f"127.0.0.1:{free_port()}"},
        "storage": {"path": str(store_path)},
        "services": [
            {"name": "online", "probes": [probe]},
            {"name": "integrated", "probes": [probe]},
        ],
    }
    return write_config(document, tmp_path / "config.yaml")


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m monitor maintenance ...`` in ``cwd``."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "monitor", "maintenance", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(process: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that must have succeeded."""
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    return process.stdout


def run_add(
    config: Path, env: dict[str, str] | None = None, **options: str
) -> subprocess.CompletedProcess[str]:
    """``maintenance add --config C --service online --key=value...`` (``announced_at``
    is ``--announced-at``)."""
    if "announced_at" in options and options["announced_at"] != "now":
        # A past announcement is a correction: say why (tests of the refusal pass "").
        options.setdefault("correction", "agreed late, in a test")
    options = {k: v for k, v in options.items() if v != "" or k != "correction"}
    args = [f"--{k.replace('_', '-')}={v}" for k, v in {"service": "online", **options}.items()]
    return run(config.parent, "add", "--config", str(config), *args, env=env)


def add(config: Path, env: dict[str, str] | None = None, **options: str) -> str:
    """``maintenance add`` that must succeed; returns the new id."""
    out = ok(run_add(config, env, **options))
    assert out.startswith("added maintenance ")
    return out.split()[2].rstrip(":")


def listed(config: Path, *args: str) -> list[dict[str, Any]]:
    """``maintenance list --format json``, parsed."""
    out = ok(run(config.parent, "list", "--config", str(config), "--format", "json", *args))
    windows: list[dict[str, Any]] = json.loads(out)
    return windows


def stored(store_path: Path) -> list[tuple[Any, ...]]:
    """Rows of the maintenance table, read directly."""
    with contextlib.closing(sqlite3.connect(store_path)) as db:
        return db.execute(
            'SELECT id, service, "start", "end", reason, announced_at, created_by, removed_by'
            " FROM maintenance ORDER BY id"
        ).fetchall()


# --- add, list, remove ----------------------------------------------------------------------


def test_add_list_remove_and_list_all(config: Path, store_path: Path) -> None:
    assert not store_path.exists()
    first = add(
        config,
        start="2030-12-01T02:00",
        end="2030-12-01T04:00",
        reason="kernel upgrade",
        by="alice",
    )
    assert store_path.exists()  # created, folder included
    second = add(config, start="2030-11-30T22:00", duration="90m", reason="db")
    assert first != second

    table = ok(run(config.parent, "list", "--config", str(config))).splitlines()
    assert table[0].split() == ["ID", "SERVICE", "START", "END", "ANNOUNCED", "STATUS", "REASON"]
    assert [line.split()[0] for line in table[1:]] == [second, first]  # by start
    row = table[2]
    assert "2030-12-01 02:00 CET" in row
    assert "2030-12-01 04:00 CET" in row
    assert row.split()[-3:] == ["upcoming", "kernel", "upgrade"]

    windows = listed(config)
    assert [w["id"] for w in windows] == [second, first]
    assert windows[1] == windows[1] | {
        "id": first,
        "service": "online",
        "start": "2030-12-01T02:00:00+01:00",
        "end": "2030-12-01T04:00:00+01:00",
        "reason": "kernel upgrade",
        "announced_late": False,
        "status": "upcoming",
        "source": "store",
        "created_by": "alice",
        # Where it came from as the system knows it, whatever --by claims.
        "origin": f"cli {getpass.getuser()}@{socket.gethostname()}",
        "removed_at": None,
        "removed_by": None,
    }
    assert set(windows[1]) == {
        "id",
        "service",
        "start",
        "end",
        "reason",
        "announced_at",
        "announced_late",
        "status",
        "source",
        "created_by",
        "origin",
        "created_at",
        "removed_at",
        "removed_by",
    }
    assert windows[0]["end"] == "2030-11-30T23:30:00+01:00"

    removed = run(config.parent, "remove", first, "--config", str(config), "--by", "bob")
    assert f"removed maintenance {first}" in ok(removed)
    assert [w["id"] for w in listed(config)] == [second]
    everything = listed(config, "--all")
    assert [(w["id"], w["status"], w["removed_by"]) for w in everything] == [
        (second, "upcoming", None),
        (first, "removed", "bob"),
    ]
    table = ok(run(config.parent, "list", "--config", str(config), "--all"))
    assert "removed" in table.splitlines()[2]
    # The row is still on file for the audit trail.
    assert [(r[0], r[6], r[7]) for r in stored(store_path)] == [
        (int(first), "alice", "bob"),
        (int(second), os.environ.get("USER") or "cli", None),
    ]


def test_a_past_announcement_needs_a_correction_and_keeps_it(
    config: Path, store_path: Path
) -> None:
    """An announcement dated in the past is a correction: refused without a reason, stored
    with it (and when it was really recorded) otherwise."""
    refused = run_add(
        config,
        start="2030-01-01T02:00",
        duration="1h",
        reason="r",
        announced_at="2026-01-01T00:00",
        correction="",
    )
    assert refused.returncode == 2
    assert "dated in the past is a correction" in refused.stderr
    assert stored(store_path) == []
    add(
        config,
        start="2030-01-01T02:00",
        duration="1h",
        reason="r",
        announced_at="2026-01-01T00:00",
        correction="agreed on the phone",
    )
    with contextlib.closing(sqlite3.connect(store_path)) as db:
        rows = db.execute(
            "SELECT correction, created_at > announced_at FROM maintenance"
        ).fetchall()
    assert rows == [("agreed on the phone", 1)]


def test_list_shows_past_ongoing_and_filters_by_service(config: Path) -> None:
    add(
        config,
        start="2020-01-01T00:00",
        end="2020-01-01T01:00",
        reason="old",
        announced_at="2019-12-01T00:00",
    )
    add(
        config,
        start="2020-01-01T00:00",
        end="2099-01-01T00:00",
        reason="long",
        announced_at="2019-12-01T00:00",
    )
    add(config, service="integrated", start="2030-01-01T00:00", duration="1h", reason="other")
    assert [(w["reason"], w["status"]) for w in listed(config)] == [
        ("old", "past"),
        ("long", "ongoing"),
        ("other", "upcoming"),
    ]
    assert [w["reason"] for w in listed(config, "--service", "integrated")] == ["other"]


def test_list_of_a_missing_store_creates_it_and_says_it_is_empty(
    config: Path, store_path: Path
) -> None:
    out = ok(run(config.parent, "list", "--config", str(config)))
    assert "no maintenance windows" in out
    assert store_path.exists()
    assert listed(config) == []


def test_by_defaults_to_user_then_cli(config: Path, store_path: Path) -> None:
    add(config, start="2030-01-01T00:00", duration="1h", reason="a", env={"USER": "carol"})
    add(config, start="2030-01-02T00:00", duration="1h", reason="b", env={"USER": ""})
    assert [w["created_by"] for w in listed(config)] == ["carol", "cli"]


async def test_a_running_store_sees_what_the_cli_writes(config: Path, store_path: Path) -> None:
    """The daemon keeps the file open while the CLI, another process, writes to it."""
    daemon = SqliteStore(store_path)
    await daemon.open()
    try:
        before = await daemon.maintenance_version()
        added = add(config, start="2030-01-01T00:00", duration="2h", reason="x")
        after_add = await daemon.maintenance_version()
        assert after_add != before
        [window] = await daemon.list_maintenance()
        assert (window.id, window.service, window.end - window.start) == (added, "online", 7200)
        ok(run(config.parent, "remove", added, "--config", str(config)))
        assert await daemon.maintenance_version() not in (before, after_add)
        assert await daemon.list_maintenance() == []
    finally:
        await daemon.aclose()


# --- time zones and late announcements ------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "utc_start", "shown"),
    [
        # The night DST starts: 01:30 is still CET (UTC+1).
        ("2026-03-29T01:30", "2026-03-29T00:30", "2026-03-29T01:30:00+01:00"),
        ("2026-07-01T02:00", "2026-07-01T00:00", "2026-07-01T02:00:00+02:00"),  # summer
        ("2026-12-01T02:00", "2026-12-01T01:00", "2026-12-01T02:00:00+01:00"),  # winter
        ("2026-07-01T02:00Z", "2026-07-01T02:00", "2026-07-01T04:00:00+02:00"),
        ("2026-07-01T02:00+05:30", "2026-06-30T20:30", "2026-06-30T22:30:00+02:00"),
        # The night DST ends, made unambiguous by an offset.
        ("2026-10-25T02:30+01:00", "2026-10-25T01:30", "2026-10-25T02:30:00+01:00"),
    ],
)
def test_times_are_local_to_the_config_zone_unless_they_carry_an_offset(
    config: Path, store_path: Path, given: str, utc_start: str, shown: str
) -> None:
    add(config, start=given, duration="30m", reason="tz", announced_at="2026-01-01T00:00")
    [row] = stored(store_path)
    assert (row[2], row[3]) == (utc(utc_start), utc(utc_start) + 1800)
    [window] = listed(config)
    assert window["start"] == shown


def test_a_late_announcement_is_noted_and_marked(config: Path) -> None:
    process = run_add(
        config,
        start="2026-06-01T10:00",
        end="2026-06-01T12:00",
        announced_at="2026-06-01T10:30",
        reason="fire",
    )
    ok(process)
    assert "note" in process.stderr
    assert "30 min after the window started" in process.stderr
    assert "still count" in process.stderr
    assert "2026-06-01 10:00 CEST" in process.stderr
    [window] = listed(config)
    assert window["announced_late"] is True
    assert window["announced_at"] == "2026-06-01T10:30:00+02:00"
    assert "(late)" in ok(run(config.parent, "list", "--config", str(config)))


def test_an_announcement_after_the_end_excludes_nothing(config: Path) -> None:
    process = run_add(config, start="2020-06-01T10:00", duration="1h", reason="forgot")
    ok(process)
    assert "after the window ended" in process.stderr
    assert "excludes nothing" in process.stderr


def _only_the_store_note(stderr: str) -> None:
    """No lateness note: the one line says that no daemon answered (so the store)."""
    [line] = stderr.splitlines()
    assert line.startswith("sla-monitor: no daemon answers at http://127.0.0.1:")
    assert "using the store" in line


def test_an_announcement_in_advance_says_nothing_on_stderr(config: Path) -> None:
    process = run_add(config, start="2030-06-01T10:00", duration="1h", reason="planned")
    ok(process)
    _only_the_store_note(process.stderr)


def test_start_now_is_not_late(config: Path) -> None:
    process = run_add(config, start="now", duration="10m", reason="urgent")
    ok(process)
    _only_the_store_note(process.stderr)
    [window] = listed(config)
    assert window["status"] == "ongoing"
    assert window["announced_at"] == window["start"]


# --- every bad argument: one clear message, exit 2, no traceback ----------------------------

ADD = ("add", "--service", "online", "--reason", "r")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            (*ADD, "--start", "tomorrowish", "--duration", "1h"),
            "--start: 'tomorrowish' is not a time",
            id="bad-start",
        ),
        pytest.param(
            (*ADD, "--start", "2030-01-01T02:00", "--end", "2030-01-01T01:00"),
            "must end after it starts",
            id="end-before-start",
        ),
        pytest.param(
            (*ADD, "--start", "2030-01-01T02:00", "--end", "2030-01-01T02:00"),
            "must end after it starts",
            id="end-equals-start",
        ),
        pytest.param(
            (*ADD, "--start", "2030-01-01T02:00", "--end", "soon"),
            "--end: 'soon' is not a time",
            id="bad-end",
        ),
        pytest.param(
            (*ADD, "--start", "2030-01-01T02:00", "--duration", "2 days"),
            "--duration: '2 days' is not a duration",
            id="bad-duration",
        ),
        pytest.param(
            (*ADD, "--start", "0001-01-01T00:00", "--duration", "1h"),
            "--start: '0001-01-01T00:00' is out of range",
            id="start-out-of-range",
        ),
        pytest.param(
            (*ADD, "--start", "2030-01-01T02:00", "--duration", "99999999999h"),
            "--duration: '99999999999h' ends the window out of range",
            id="end-out-of-range",
        ),
        pytest.param(
            (*ADD, "--start", "2030-01-01T02:00", "--duration", "0s"),
            "not a positive duration",
            id="zero-duration",
        ),
        pytest.param(
            (*ADD, "--start", "2030-01-01T02:00", "--duration", "1h", "--announced-at", "x"),
            "--announced-at: 'x' is not a time",
            id="bad-announced-at",
        ),
        pytest.param(
            (*ADD, "--start", "2026-03-29T02:30", "--duration", "1h"),
            "does not exist in Europe/Brussels",
            id="time-skipped-by-dst",
        ),
        pytest.param(
            (*ADD, "--start", "2026-10-25T02:30", "--duration", "1h"),
            "happens twice in Europe/Brussels (daylight saving ends); add the offset you mean:"
            " +02:00 or +01:00",
            id="time-repeated-by-dst",
        ),
        pytest.param(
            ("add", "--service", "nope", "--reason", "r", "--start", "now", "--duration", "1h"),
            "unknown service 'nope' (the config has: online, integrated)",
            id="unknown-service",
        ),
        pytest.param(
            ("add", "--service", "online", "--reason", "  ", "--start", "now", "--duration", "1h"),
            "--reason must not be empty",
            id="empty-reason",
        ),
        pytest.param(
            (*ADD, "--start", "now"),
            "one of the arguments --end --duration is required",
            id="no-end",
        ),
        pytest.param(
            (*ADD, "--start", "now", "--end", "now", "--duration", "1h"),
            "not allowed with argument",
            id="end-and-duration",
        ),
        pytest.param(
            ("list", "--service", "nope"), "unknown service 'nope'", id="list-unknown-service"
        ),
        pytest.param(("list", "--format", "xml"), "invalid choice: 'xml'", id="list-bad-format"),
        pytest.param(("remove", "42"), "no maintenance window with id '42'", id="remove-unknown"),
        pytest.param(("remove", "abc"), "no maintenance window with id 'abc'", id="remove-text"),
        pytest.param(("remove", "cfg-1"), "comes from the config file", id="remove-config"),
        pytest.param(("frobnicate",), "invalid choice: 'frobnicate'", id="unknown-action"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    config: Path, store_path: Path, args: tuple[str, ...], message: str
) -> None:
    process = run(config.parent, *args, "--config", str(config))
    assert process.returncode == 2, process.stderr
    assert message in process.stderr
    assert "Traceback" not in process.stderr
    assert process.stdout == ""
    if args[0] == "add":
        assert not store_path.exists()  # nothing was written


def test_a_missing_config_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    process = run(tmp_path, "list", "--config", str(missing))
    assert process.returncode == 2
    assert f"{missing}: config file not found" in process.stderr
    assert "Traceback" not in process.stderr


def test_removing_twice_exits_2_and_says_who_removed_it(config: Path) -> None:
    added = add(config, start="2030-01-01T00:00", duration="1h", reason="x")
    ok(run(config.parent, "remove", added, "--config", str(config), "--by", "bob"))
    again = run(config.parent, "remove", added, "--config", str(config))
    assert again.returncode == 2
    assert f"maintenance {added} was already removed" in again.stderr
    assert "by bob" in again.stderr
    assert "Traceback" not in again.stderr


# --- the parsing underneath, directly -------------------------------------------------------


def test_parse_instant_now_and_offsets() -> None:
    assert parse_instant("now", BRUSSELS, 123.0) == 123.0
    assert parse_instant(" NOW ", BRUSSELS, 123.0) == 123.0
    assert parse_instant("2026-03-29T03:30", BRUSSELS, 0) == utc("2026-03-29T01:30")  # CEST
    assert parse_instant("2026-10-25T03:30", BRUSSELS, 0) == utc("2026-10-25T02:30")  # CET
    assert parse_instant("2026-12-01 02:00", BRUSSELS, 0) == utc("2026-12-01T01:00")
    utc_zone = ZoneInfo("UTC")
    assert parse_instant("2026-10-25T02:30", utc_zone, 0) == utc("2026-10-25T02:30")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400.0), ("2h", 7200.0), ("30s", 30.0), ("45", 45.0)]
)
def test_parse_duration_s(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


def test_format_local_shows_the_zone_and_seconds_only_when_present() -> None:
    assert format_local(utc("2026-07-01T00:00"), BRUSSELS) == "2026-07-01 02:00 CEST"
    assert format_local(utc("2026-12-01T01:00") + 5, BRUSSELS) == "2026-12-01 02:00:05 CET"
