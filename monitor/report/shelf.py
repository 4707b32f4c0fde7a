"""The report archive kept in the PostgreSQL store, for daemons on several hosts.

With one daemon the archive is a folder (``monitor.report.archive``). Daemons sharing a
database lead in turns, and each host has its own folder: a leader that took over would
find no report of a month its predecessor archived, and freeze it a second time. So with
``storage.url`` every version is also put in the database (``report_files``, one row per
file), and the database decides who got a version number: the first to commit it. Each
host's folder is then a copy, filled from the database before it is read
(``DatabaseShelf.pull``): every figure and document is still read from files whose
SHA-256 the manifest checks, and an evidence pack copies the same folder.

Synchronous on purpose: the archive is used by the report and evidence commands and the
report child process, never on the daemon's event loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from monitor.store.postgres import CONNECT_TIMEOUT_S, redacted


class ShelfError(Exception):
    """The database could not be read or written."""


class DatabaseShelf:
    """The archived versions' files in the database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = redacted(url)

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S)

    def put(self, month: str, number: int, files: dict[str, bytes]) -> bool:
        """Store a version's files in one transaction; False when the number is taken
        (another host archived it first)."""
        try:
            with self._connect() as conn:
                cur = conn.execute(
                    "INSERT INTO report_files (month, version, name, sha256, data)"
                    " SELECT %s, %s, f.name, f.sha256, f.data"
                    " FROM unnest(%s::text[], %s::text[], %s::bytea[]) AS f(name, sha256, data)"
                    " ON CONFLICT DO NOTHING",
                    (
                        month,
                        number,
                        list(files),
                        [hashlib.sha256(d).hexdigest() for d in files.values()],
                        list(files.values()),
                    ),
                )
                if cur.rowcount != len(files):
                    conn.rollback()
                    return False
        except psycopg.Error as exc:
            raise ShelfError(f"cannot archive into {self.where}: {exc}") from exc
        return True

    def pull(self, month: str, folder: Path) -> list[int]:
        """Write into ``folder`` (``vNNN/`` per version) the versions of ``month`` the
        database has and the folder has not; returns their numbers."""
        have = {
            int(child.name[1:])
            for child in folder.glob("v[0-9][0-9][0-9]")
            if child.is_dir() and child.name[1:].isdigit()
        }
        try:
            with self._connect() as conn:
                rows = conn.execute(
                    "SELECT version, name, sha256, data FROM report_files WHERE month = %s"
                    " AND NOT (version = ANY(%s::int[])) ORDER BY version, name",
                    (month, sorted(have)),
                ).fetchall()
        except psycopg.Error as exc:
            raise ShelfError(f"cannot read the archive in {self.where}: {exc}") from exc
        versions: dict[int, dict[str, bytes]] = {}
        for version, name, digest, data in rows:
            body = bytes(data)
            if hashlib.sha256(body).hexdigest() != digest:
                raise ShelfError(f"{month} v{version}/{name} in {self.where} was altered")
            versions.setdefault(int(version), {})[str(name)] = body
        for number, files in sorted(versions.items()):
            _materialize(folder, number, files)
        return sorted(versions)


def _materialize(folder: Path, number: int, files: dict[str, bytes]) -> None:
    """A version's files as ``folder/vNNN`` (read-only, renamed into place whole)."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pulling-", dir=folder))
    try:
        for name, data in files.items():
            path = staging / name
            path.write_bytes(data)
            path.chmod(0o444)
        # Fails when another reader on this host pulled it meanwhile: the same bytes.
        with contextlib.suppress(OSError):
            os.rename(staging, folder / f"v{number:03d}")
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
