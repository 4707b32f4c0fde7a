"""Frozen months, numbered versions and corrections; the CLI; the API route; the daemon's
monthly writer (a real child process on a real SQLite file)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import stat
from pathlib import Path

import httpx
import pytest
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.cli.main import main
from monitor.cli.report import add_report_parser, run_report
from monitor.config import Config
from monitor.report.archive import ArchiveError, ReportArchive, correct, output, produce
from monitor.report.model import Month, Report, UnmonitoredSpan
from monitor.report.service import ReportsService
from monitor.store import SqliteStore
from monitor.web.server import Health, Server
from tests.fakes import FakeClock
from tests.monitor.report import scenario as sc

pytestmark = pytest.mark.timeout(300)

OCTOBER = Month(2026, 10)
FORMATS = ["json", "md", "csv", "html"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scenario's SQLite file (copied per test: archives and corrections change it)."""
    return sc.seed_file(tmp_path_factory.mktemp("archive") / "seeded.sqlite3")


@pytest.fixture
def setup(seeded: Path, tmp_path: Path) -> tuple[Config, Path]:
    """A config whose store is a fresh copy of the seeded file; the YAML file's path."""
    store = tmp_path / "store.sqlite3"
    shutil.copy(seeded, store)
    document = {
        **sc.CONFIG,
        "storage": {"path": str(store)},
        "reports": {"directory": str(tmp_path / "reports"), "formats": FORMATS},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return Config.model_validate(document), path


async def _open(config: Config) -> SqliteStore:
    store = SqliteStore(config.storage.path)
    await store.open()
    return store


def _states(report: Report, service: str) -> dict[str, int]:
    objective = next(
        o for o in report.objectives() if (o.service, o.kind) == (service, "availability")
    )
    assert objective.minute_states is not None
    return objective.minute_states


async def test_a_closed_month_is_frozen_and_corrections_make_new_versions(
    setup: tuple[Config, Path],
) -> None:
    config, _ = setup
    archive = ReportArchive(config.reports.directory)
    store = await _open(config)
    try:
        first = await produce(config, store, archive, OCTOBER, now=sc.NOW, created_by="test")
        assert first.created
        assert first.version is not None
        assert first.version.number == 1
        v1 = first.version
        assert sorted(v1.documents) == sorted(FORMATS)
        assert archive.document(v1, "json") == archive.figures(v1)
        # Frozen: later changes to the store do not reach version 1.
        start, end = sc.local("2026-10-14T10:00"), sc.local("2026-10-14T10:30")
        announced = sc.local("2026-10-01T09:00")  # by agreement: as if announced in advance
        await store.add_maintenance("core", start, end, "agreed network work", announced, "bob")
        again = await produce(config, store, archive, OCTOBER, now=sc.NOW, created_by="test")
        assert not again.created
        assert again.version == v1
        assert _states(again.report, "core")["down"] == 60
        # Correction 1: recompute with the late-registered maintenance.
        v2 = await correct(
            config, store, archive, OCTOBER, now=sc.NOW + 60, by="bob",
            reason="the 14 October outage was agreed maintenance",
        )  # fmt: skip
        corrected = archive.report(v2)
        assert v2.number == 2
        assert v2.corrections_added == [1]
        states = _states(corrected, "core")
        assert (states["down"], states["maintenance"]) == (30, 180)
        latency = corrected.objectives()[0]
        assert latency.valid == first.report.objectives()[0].valid - 30 * 6
        assert latency.good == first.report.objectives()[0].good  # the outage had no good
        assert [(c.number, c.version, c.by) for c in corrected.corrections] == [(1, 2, "bob")]
        assert corrected.services[0].incidents[0].start.startswith("2026-10-27")
        # Correction 2: the monitor itself was faulty during portal's "outage".
        v3 = await correct(
            config, store, archive, OCTOBER, now=sc.NOW + 120, by="carol",
            reason="probe host lost its network",
            unmonitored=[UnmonitoredSpan(
                service="portal", start=sc.local("2026-10-16T15:00"),
                end=sc.local("2026-10-16T15:10"),
            )],
        )  # fmt: skip
        third = archive.report(v3)
        portal = _states(third, "portal")
        assert (portal["down"], portal["unmonitored"]) == (0, 10)
        assert third.services[1].incidents == []
        assert [c.number for c in third.corrections] == [1, 2]
        assert v3.corrections_added == [2]
        assert _states(third, "core")["down"] == 30  # correction 1 still applies
        # Earlier versions are kept, unchanged, and still check out.
        assert [v.number for v in archive.versions(OCTOBER)] == [1, 2, 3]
        assert archive.report(v1) == first.report
        assert (
            await produce(config, store, archive, OCTOBER, now=sc.NOW, created_by="x")
        ).version == v3
    finally:
        await store.aclose()


async def test_an_altered_archive_is_refused(setup: tuple[Config, Path]) -> None:
    config, _ = setup
    archive = ReportArchive(config.reports.directory)
    store = await _open(config)
    try:
        produced = await produce(config, store, archive, OCTOBER, now=sc.NOW, created_by="t")
    finally:
        await store.aclose()
    assert produced.version is not None
    figures = produced.version.path / "report.json"
    assert not os.access(figures, os.W_OK) or os.geteuid() == 0
    assert stat.S_IMODE(figures.stat().st_mode) == 0o444
    figures.chmod(0o644)
    figures.write_text(figures.read_text().replace('"PASS"', '"FAIL"', 1))
    with pytest.raises(ArchiveError, match="was altered"):
        archive.report(produced.version)
    with pytest.raises(ArchiveError, match="already exists"):
        archive.write(OCTOBER, 1, b"{}", {}, "t", "now")


async def test_a_month_not_over_is_not_archived(setup: tuple[Config, Path]) -> None:
    config, _ = setup
    archive = ReportArchive(config.reports.directory)
    store = await _open(config)
    try:
        produced = await produce(
            config, store, archive, OCTOBER, now=sc.local("2026-10-20T12:00"), created_by="t"
        )
    finally:
        await store.aclose()
    assert produced.version is None
    assert produced.report.period.provisional
    assert archive.versions(OCTOBER) == []
    assert b"PROVISIONAL" in output(produced, archive, "md")


# --- the command line -----------------------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_report_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["report", *argv])


def test_cli_report_versions_and_corrections(
    setup: tuple[Config, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, path = setup
    out = tmp_path / "out" / "october.json"
    assert (
        run_report(
            config, _args("--config", str(path), "--month", "2026-10", "--out", str(out)), sc.NOW
        )
        == 0
    )
    document = json.loads(out.read_text())
    assert (document["version"], document["verdict"]) == (1, "PASS")
    assert "archived now as version 1" in capsys.readouterr().err
    # The same month again: the archived document itself, byte for byte.
    again = tmp_path / "again.json"
    assert (
        run_report(
            config, _args("--config", str(path), "--month", "2026-10", "--out", str(again)), sc.NOW
        )
        == 0
    )
    assert again.read_bytes() == out.read_bytes()
    md = tmp_path / "portal.md"
    argv = ("--config", str(path), "--month", "2026-10", "--service", "portal", "--out", str(md))
    assert run_report(config, _args(*argv), sc.NOW) == 0
    assert "## portal" in md.read_text()
    assert "## core" not in md.read_text()
    fix = _args(
        "correct", "--config", str(path), "--month", "2026-10", "--by", "dave",
        "--reason", "monitor host faulty", "--service", "core",
        "--unmonitored", "2026-10-14T10:00", "2026-10-14T10:30", "--format", "json",
        "--out", str(tmp_path / "v2.json"),
    )  # fmt: skip
    assert run_report(config, fix, sc.NOW + 60) == 0
    assert "version 2 archived" in capsys.readouterr().err
    v2 = json.loads((tmp_path / "v2.json").read_text())
    assert v2["version"] == 2
    assert v2["corrections"][0]["by"] == "dave"
    assert (
        run_report(config, _args("--config", str(path), "--month", "2026-10", "--versions"), sc.NOW)
        == 0
    )
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == ["v1", "v2"]
    assert "original" in listing[0]
    assert "correction 1 by dave: monitor host faulty" in listing[1]
    versions = _args("--config", str(path), "--month", "2026-10", "--versions", "--format", "json")
    assert run_report(config, versions, sc.NOW) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)] == [1, 2]


def test_cli_yearly_summary(setup: tuple[Config, Path], tmp_path: Path) -> None:
    config, path = setup
    out = tmp_path / "2026.csv"
    assert (
        run_report(
            config, _args("--config", str(path), "--year", "2026", "--out", str(out)), sc.NOW
        )
        == 0
    )
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 5 * 12
    october = [line for line in lines if ",2026-10,final,core,online-1s," in line]
    assert len(october) == 1
    assert october[0].endswith(",PASS")
    assert any(",2026-12,not started," in line for line in lines)
    assert any(",2026-09,no data," in line for line in lines)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--month", "2026-13"], 2, "bad month '2026-13': the month must be 01 to 12"),
        (["--month", "last"], 2, "bad month 'last': use YYYY-MM"),
        (["--year", "20x6"], 2, "bad year '20x6'"),
        (["--month", "2026-08"], 1, "no data for 2026-08"),
        (["--month", "2099-01"], 1, "has not started"),
        (["--month", "2026-10", "--service", "nope"], 2, "unknown service 'nope'"),
        (["--month", "2026-10", "--format", "pdf"], 2, "a PDF needs --out"),
        (["--month", "2026-10", "--out", "x.txt"], 2, "give --format"),
        (["correct", "--month", "2026-10"], 2, "needs --reason"),
        (["--month", "2026-10", "--reason", "why"], 2, "go with 'report correct'"),
    ],
)
def test_cli_errors(
    setup: tuple[Config, Path],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    message: str,
) -> None:
    _, path = setup
    assert main(["report", "--config", str(path), *argv]) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_cli_end_to_end(setup: tuple[Config, Path], tmp_path: Path) -> None:
    _, path = setup
    out = tmp_path / "october.html"
    assert main(["report", "--config", str(path), "--month", "2026-10", "--out", str(out)]) == 0
    assert "SLA report — 2026-10" in out.read_text()
    dutch = tmp_path / "oktober.html"
    argv = ["report", "--config", str(path), "--month", "2026-10", "--out", str(dutch)]
    assert main([*argv, "--lang", "nl"]) == 0
    page = dutch.read_text()
    assert '<html lang="nl">' in page
    assert "SLA-rapport — 2026-10" in page
    assert "Goedkeuring" in page


# --- the API route and the daemon's monthly writer ------------------------------------------


async def _get(app: web.Application, url: str, **headers: str) -> httpx.Response:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            return await client.get(url, headers=headers)
    finally:
        await runner.cleanup()


def _public(config: Config) -> Config:
    return config.model_copy(update={"reports": config.reports.model_copy(update={"public": True})})


async def test_reports_need_a_read_token_unless_public(
    setup: tuple[Config, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = setup
    token = "a-report-reader-token-0123456789"
    monkeypatch.setenv("TEST_REPORT_TOKEN", token)
    config = config.model_copy(
        update={"server": config.server.model_copy(update={"api_token_env": "TEST_REPORT_TOKEN"})}
    )
    service = ReportsService(config, config.storage.path, FakeClock(start=sc.NOW))
    server = Server(
        config, CollectorRegistry(), lambda: [], lambda: Health(True, {}), reports=service
    )
    anonymous = await _get(server.app, "/api/reports/2026-10")
    assert anonymous.status_code == 401  # before any child process is started
    allowed = await _get(server.app, "/api/reports/2026-10", Authorization=f"Bearer {token}")
    assert allowed.status_code == 200
    assert allowed.json()["period"]["month"] == "2026-10"


async def test_api_route(setup: tuple[Config, Path]) -> None:
    config = _public(setup[0])
    service = ReportsService(config, config.storage.path, FakeClock(start=sc.NOW))
    server = Server(
        config, CollectorRegistry(), lambda: [], lambda: Health(True, {}), reports=service
    )
    app = server.app
    bad = await _get(app, "/api/reports/2026-13")
    assert bad.status_code == 400
    assert "01 to 12" in bad.json()["error"]
    assert (await _get(app, "/api/reports/last")).status_code == 400
    assert (await _get(app, "/api/reports/2026-10?format=doc")).status_code == 400
    assert (await _get(app, "/api/reports/2026-10?lang=de")).status_code == 400
    french = await _get(app, "/api/reports/2026-10?format=html&lang=fr")
    assert french.status_code == 200
    assert "Rapport SLA — 2026-10" in french.text
    assert (await _get(app, "/api/reports/2026-10?service=nope")).status_code == 404
    missing = await _get(app, "/api/reports/2026-08")
    assert missing.status_code == 404
    assert "no data for 2026-08" in missing.json()["error"]
    document = await _get(app, "/api/reports/2026-10")
    assert document.status_code == 200
    assert document.headers["X-Report-Version"] == "1"
    assert document.json()["period"]["month"] == "2026-10"
    rows = await _get(app, "/api/reports/2026-10?format=csv&service=portal")
    assert rows.headers["Content-Type"].startswith("text/csv")
    assert len(rows.text.splitlines()) == 1 + 2 * 31


async def test_report_requests_beyond_the_queue_get_429(setup: tuple[Config, Path]) -> None:
    """One report is made at a time and ``reports.max_waiting`` more may wait: the next is
    told 429 at once instead of queueing a child process without bound."""
    config = _public(setup[0])
    config = config.model_copy(
        update={"reports": config.reports.model_copy(update={"max_waiting": 1})}
    )
    service = ReportsService(config, config.storage.path, FakeClock(start=sc.NOW))
    server = Server(
        config, CollectorRegistry(), lambda: [], lambda: Health(True, {}), reports=service
    )
    runner = web.AppRunner(server.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            await service._one_at_a_time.acquire()  # a report is being made
            held = [asyncio.create_task(client.get("/api/reports/2026-10")) for _ in range(2)]
            await asyncio.sleep(0.5)  # both are in: one "making", one waiting
            refused = await client.get("/api/reports/2026-10")
            assert refused.status_code == 429
            assert refused.headers["Retry-After"] == "10"
            assert "try again" in refused.json()["error"]
            service._one_at_a_time.release()
            assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
    finally:
        await runner.cleanup()


async def test_daemon_writes_the_previous_month_after_it_ends(
    setup: tuple[Config, Path], caplog: pytest.LogCaptureFixture
) -> None:
    config, _ = setup
    clock = FakeClock(start=sc.local("2026-11-01T00:05"))
    service = ReportsService(config, config.storage.path, clock)
    assert service.due_month(clock.now()) is None  # reports.delay (10 min) not yet over
    assert await service.check() is None
    clock.advance(6 * 60)
    assert service.due_month(clock.now()) == OCTOBER
    with caplog.at_level(logging.INFO, logger="monitor.report.service"):
        answer = await service.check()
    assert answer is not None
    assert answer["status"] == "ok"
    assert answer["created"]
    version = ReportArchive(config.reports.directory).latest(OCTOBER)
    assert version is not None
    assert version.created_by == "daemon"
    assert sorted(version.documents) == sorted(FORMATS)
    assert f"monthly report 2026-10 written: version 1 in {version.path}" in caplog.text
    assert await service.check() is None  # done once


async def test_the_daemon_wires_the_report(tmp_path: Path) -> None:
    from monitor.app import Daemon

    daemon = Daemon(sc.config(reports={"directory": "archive"}), base_dir=tmp_path)
    assert daemon.reports.store == str((tmp_path / "unused.sqlite3").resolve())
    assert daemon.reports.directory == (tmp_path / "archive").resolve()
    routes = {r.resource.canonical for r in daemon.server.app.router.routes() if r.resource}
    assert "/api/reports/{month}" in routes


async def test_a_month_before_the_first_result_is_not_frozen(tmp_path: Path) -> None:
    """A daemon installed on 15 November: its first start seals the minutes it keeps
    (unmonitored ones of October too), but October had no result, so no report of it
    is archived (no frozen "NO DATA" document), and asking for it says so."""
    from monitor.app import Daemon

    config = sc.config(
        storage={"path": str(tmp_path / "fresh.sqlite3")},
        reports={"directory": str(tmp_path / "reports")},
    )
    clock = FakeClock(start=sc.local("2026-11-15T10:00"))
    daemon = Daemon(config, clock=clock)
    await daemon.store.open()
    try:
        await daemon.load_history()
        await daemon.ledger.advance(clock.now(), daemon.store)
        await daemon.collector.write_decisions()
        answer = await daemon.reports.check()
    finally:
        await daemon.store.aclose()
    assert answer is not None
    assert answer["status"] == "no-data", answer
    assert ReportArchive(config.reports.directory).latest(OCTOBER) is None


async def test_without_chromium_months_are_archived_without_a_pdf_said_once(
    setup: tuple[Config, Path], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = setup[0].model_copy(
        update={"reports": setup[0].reports.model_copy(update={"formats": ["json", "pdf", "md"]})}
    )
    monkeypatch.setenv("SLA_MONITOR_CHROMIUM", str(setup[1].parent / "no-such-chromium"))
    clock = FakeClock(start=sc.local("2026-11-01T00:15"))
    with caplog.at_level(logging.INFO, logger="monitor.report.service"):
        service = ReportsService(config, config.storage.path, clock)
        answer = await service.check()
        assert await service.check() is None
    assert answer is not None
    assert answer["status"] == "ok", answer
    version = ReportArchive(config.reports.directory).latest(OCTOBER)
    assert version is not None
    assert sorted(version.documents) == ["json", "md"]  # all but the PDF
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "archived without a PDF" in warnings[0].getMessage()
    assert service.pdf_problem is not None
    assert "SLA_MONITOR_CHROMIUM" in service.pdf_problem
