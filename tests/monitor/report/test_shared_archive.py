"""The report archive shared through PostgreSQL: daemons on several hosts, each with its
own folder, freeze a month once between them; what one archived, the others read (copied
into their folder, checked against its hashes); a version altered in the database is an
error, not a figure."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import psycopg
import pytest

from monitor.config import Config
from monitor.report.archive import ArchiveError, ReportArchive, correct, produce
from monitor.report.model import Month
from monitor.store import SqliteStore
from monitor.store.postgres import PostgresStore
from tests.monitor.report import scenario as sc

pytestmark = pytest.mark.timeout(300)

OCTOBER = Month(2026, 10)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sc.seed_file(tmp_path_factory.mktemp("shared") / "seeded.sqlite3")


@pytest.fixture
async def archives(postgres_url: str, tmp_path: Path) -> tuple[ReportArchive, ReportArchive]:
    """Two hosts' archives, each its own folder, on one database (migrated first)."""
    store = PostgresStore(postgres_url)
    await store.open()
    await store.aclose()
    return (
        ReportArchive(tmp_path / "host-a", postgres_url),
        ReportArchive(tmp_path / "host-b", postgres_url),
    )


async def _store(seeded: Path, tmp_path: Path) -> SqliteStore:
    path = tmp_path / "store.sqlite3"
    shutil.copy(seeded, path)
    store = SqliteStore(path)
    await store.open()
    return store


def _config() -> Config:
    return Config.model_validate({**sc.CONFIG, "reports": {"formats": ["json", "md"]}})


async def test_a_month_is_frozen_once_across_hosts(
    archives: tuple[ReportArchive, ReportArchive], seeded: Path, tmp_path: Path
) -> None:
    a, b = archives
    config = _config()
    store = await _store(seeded, tmp_path)
    try:
        # Both hosts' leaders ask at once (a failover at the month's end): one freezes it.
        first, second = await asyncio.gather(
            produce(config, store, a, OCTOBER, now=sc.NOW, created_by="daemon a"),
            produce(config, store, b, OCTOBER, now=sc.NOW, created_by="daemon b"),
        )
        assert sorted([first.created, second.created]) == [False, True]
        assert first.version is not None
        assert second.version is not None
        assert first.version.figures_sha256 == second.version.figures_sha256
        assert first.version.created_by == second.version.created_by
        # Each host's folder holds the one version, hash-checked: v001 only.
        for archive in (a, b):
            assert [v.number for v in archive.versions(OCTOBER)] == [1]
            assert (archive.directory / "2026-10" / "v001" / "report.md").is_file()
        # A correction on host b is the next number for host a too.
        v2 = await correct(
            config, store, b, OCTOBER, now=sc.NOW + 60, by="bob", reason="agreed maintenance"
        )
        assert v2.number == 2
        latest = a.latest(OCTOBER)
        assert latest is not None
        assert latest.number == 2
        assert a.figures(latest) == b.figures(v2)
        again = await produce(config, store, a, OCTOBER, now=sc.NOW, created_by="daemon a")
        assert not again.created
        assert again.version == latest
    finally:
        await store.aclose()


async def test_a_version_altered_in_the_database_is_refused(
    archives: tuple[ReportArchive, ReportArchive], postgres_url: str, seeded: Path, tmp_path: Path
) -> None:
    a, b = archives
    config = _config()
    store = await _store(seeded, tmp_path)
    try:
        await produce(config, store, a, OCTOBER, now=sc.NOW, created_by="daemon a")
    finally:
        await store.aclose()
    with psycopg.connect(postgres_url) as conn:
        conn.execute(
            "UPDATE report_files SET data = data || '\\x20'::bytea"
            " WHERE month = '2026-10' AND name = 'report.json'"
        )
    with pytest.raises(ArchiveError, match="was altered"):
        b.versions(OCTOBER)
    assert not (b.directory / "2026-10" / "v001").exists()  # nothing copied from it
