"""The report archive: closed months frozen as numbered versions, with SHA-256 hashes.

Layout, under the configured directory (``reports.directory``)::

    2026-10/v001/manifest.json   version, who, when, corrections added, file hashes
    2026-10/v001/report.json     the figures: the JSON document, the twin of the others
    2026-10/v001/report.html ... the documents rendered when the version was made
    2026-10/v002/...             a corrected version; v001 is never touched again

A version is written in a temporary folder and renamed into place, so a reader never
sees half of one and two writers (the daemon, an operator) never get the same number.
Files are made read-only; reading checks every hash, so an altered file is an error, not a
figure.

``produce`` is the one entry point of the CLI, the daemon and the API: a closed month is
computed once and frozen, then always served from the archive; a month not over is
computed on the fly, marked provisional, and never archived.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.config import Config
from monitor.report.compute import build_report
from monitor.report.model import (
    Correction,
    Month,
    NoDataError,
    Progress,
    Report,
    ReportError,
    UnmonitoredSpan,
)
from monitor.report.render import FORMATS, SUFFIX, render, render_many
from monitor.report.shelf import DatabaseShelf, ShelfError
from monitor.sla.objectives import grace_minutes
from monitor.store import Store
from monitor.timeparse import iso_local

MANIFEST = "manifest.json"
FIGURES = "report.json"


class ArchiveError(ReportError):
    """The archive is unreadable or was altered."""


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Version:
    """One archived version of a month's report."""

    month: str
    number: int
    path: Path
    created_at: str
    created_by: str
    figures_sha256: str
    #: format -> (file name, sha256)
    documents: dict[str, tuple[str, str]]
    corrections_added: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--versions --format json``)."""
        return {
            "month": self.month,
            "version": self.number,
            "path": str(self.path),
            "created_at": self.created_at,
            "created_by": self.created_by,
            "figures_sha256": self.figures_sha256,
            "documents": {f: {"file": n, "sha256": h} for f, (n, h) in self.documents.items()},
            "corrections_added": self.corrections_added,
        }


class ReportArchive:
    """Archived versions of monthly reports under one directory (and, with ``database``,
    a PostgreSQL URL, in the database the daemons share: ``monitor.report.shelf``)."""

    def __init__(self, directory: str | Path, database: str | None = None) -> None:
        self.directory = Path(directory)
        self._shelf = DatabaseShelf(database) if database else None

    def _month_dir(self, month: Month) -> Path:
        return self.directory / str(month)

    def versions(self, month: Month) -> list[Version]:
        """Every version of ``month``, oldest first."""
        folder = self._month_dir(month)
        if self._shelf is not None:
            try:  # what other hosts archived, copied here first
                self._shelf.pull(str(month), folder)
            except ShelfError as exc:
                raise ArchiveError(str(exc)) from exc
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            if child.name.startswith("v") and child.name[1:].isdigit():
                found.append(self._read_manifest(child))
        return sorted(found, key=lambda v: v.number)

    def latest(self, month: Month) -> Version | None:
        """The newest version of ``month``, if any."""
        versions = self.versions(month)
        return versions[-1] if versions else None

    def _read_manifest(self, folder: Path) -> Version:
        try:
            data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            return Version(
                month=str(data["month"]),
                number=int(data["version"]),
                path=folder,
                created_at=str(data["created_at"]),
                created_by=str(data["created_by"]),
                figures_sha256=str(data["figures"]["sha256"]),
                documents={
                    str(fmt): (str(d["file"]), str(d["sha256"]))
                    for fmt, d in data["documents"].items()
                },
                corrections_added=[int(n) for n in data.get("corrections_added", [])],
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(f"unreadable archive manifest in {folder}: {exc}") from exc

    def _read_checked(self, version: Version, name: str, expected: str) -> bytes:
        path = version.path / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ArchiveError(f"cannot read archived {path}: {exc}") from exc
        if sha256(data) != expected:
            raise ArchiveError(
                f"archived {path} does not match its SHA-256 in the manifest: it was altered"
            )
        return data

    def figures(self, version: Version) -> bytes:
        """The version's JSON document, checked against its hash."""
        return self._read_checked(version, FIGURES, version.figures_sha256)

    def report(self, version: Version) -> Report:
        """The version's figures as a model."""
        return Report.model_validate_json(self.figures(version))

    def document(self, version: Version, fmt: str) -> bytes | None:
        """The document rendered in ``fmt`` when the version was made (None if it was not)."""
        entry = version.documents.get(fmt)
        if entry is None:
            return None
        return self._read_checked(version, *entry)

    def write(
        self,
        month: Month,
        number: int,
        figures: bytes,
        documents: dict[str, bytes],
        created_by: str,
        created_at: str,
        corrections_added: Sequence[int] = (),
    ) -> Version:
        """Freeze a new version; raises ArchiveError if ``number`` is already taken."""
        folder = self._month_dir(month)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
        try:
            files = {FIGURES: figures}
            entries: dict[str, dict[str, str]] = {}
            for fmt, data in documents.items():
                name = FIGURES if fmt == "json" else f"report.{SUFFIX[fmt]}"
                files[name] = data
                entries[fmt] = {"file": name, "sha256": sha256(data)}
            manifest = {
                "month": str(month),
                "version": number,
                "created_at": created_at,
                "created_by": created_by,
                "figures": {"file": FIGURES, "sha256": sha256(figures)},
                "documents": entries,
                "corrections_added": list(corrections_added),
            }
            files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
            if self._shelf is not None:
                # The database gives the number out once across every host.
                try:
                    taken = not self._shelf.put(str(month), number, files)
                except ShelfError as exc:
                    raise ArchiveError(str(exc)) from exc
                if taken:
                    raise ArchiveError(f"{month} version {number} already exists")
            for name, data in files.items():
                path = staging / name
                path.write_bytes(data)
                path.chmod(0o444)
            target = folder / f"v{number:03d}"
            try:
                # rename() onto an existing, non-empty folder fails: a number is never reused.
                os.rename(staging, target)
            except OSError as exc:
                raise ArchiveError(f"{month} version {number} already exists") from exc
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return self._read_manifest(target)


def month_is_closed(config: Config, month: Month, now: float) -> bool:
    """True once every minute of the month is sealed (its figures can be frozen)."""
    _, after = month.bounds(config.zone)
    return int(now // 60) - grace_minutes(config) >= after


@dataclass(frozen=True, slots=True)
class Produced:
    """A report and where it came from."""

    report: Report
    version: Version | None  # None: provisional, not archived
    created: bool  # this call archived the version


async def produce(
    config: Config,
    store: Store,
    archive: ReportArchive,
    month: Month,
    *,
    now: float,
    created_by: str,
    archive_formats: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Produced:
    """The report of ``month``: frozen from the archive when closed (archiving it as
    version 1 the first time, with ``archive_formats`` rendered, by default the configured
    ``reports.formats``), else provisional."""
    if not month_is_closed(config, month, now):
        report = await build_report(config, store, month, now=now, progress=progress)
        return Produced(report, None, False)
    latest = archive.latest(month)
    if latest is not None:
        return Produced(archive.report(latest), latest, False)
    report = await build_report(config, store, month, now=now, version=1, progress=progress)
    try:
        version = _freeze(archive, month, report, 1, created_by, now, config, archive_formats, ())
    except ArchiveError:
        # Another process (the daemon, an operator) froze it meanwhile: theirs stands.
        latest = archive.latest(month)
        if latest is None:
            raise
        return Produced(archive.report(latest), latest, False)
    return Produced(report, version, True)


def _freeze(
    archive: ReportArchive,
    month: Month,
    report: Report,
    number: int,
    created_by: str,
    now: float,
    config: Config,
    formats: Sequence[str] | None,
    corrections_added: Sequence[int],
) -> Version:
    if formats is None:
        formats = config.reports.formats
    figures = render(report, "json")
    digest = sha256(figures)
    lang = config.contract.languages[0] if config.contract else "en"
    documents = render_many(report, [fmt for fmt in formats if fmt != "json"], digest, lang=lang)
    if "json" in formats:
        documents["json"] = figures
    return archive.write(
        month,
        number,
        figures,
        documents,
        created_by,
        iso_local(now, config.zone),
        corrections_added,
    )


async def correct(
    config: Config,
    store: Store,
    archive: ReportArchive,
    month: Month,
    *,
    now: float,
    by: str,
    reason: str,
    unmonitored: Sequence[UnmonitoredSpan] = (),
    archive_formats: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Version:
    """Record a correction of a closed month and archive the corrected next version.

    The month's figures are recomputed from the store as it is now (a maintenance window
    registered late by agreement counts), with every earlier correction and this one
    applied. Earlier versions stay as they were; version 1 is frozen first if the month
    was never archived, so the uncorrected figures are on file too.
    """
    if not month_is_closed(config, month, now):
        raise ReportError(f"{month} is not over: only a closed month can be corrected")
    if not reason.strip():
        raise ReportError("a correction needs a reason (--reason)")
    first = await produce(
        config, store, archive, month, now=now, created_by=by, archive_formats=archive_formats
    )
    latest = archive.latest(month) or first.version
    if latest is None:
        raise ArchiveError(f"{month} could not be archived")
    previous = archive.report(latest).corrections
    number = latest.number + 1
    correction = Correction(
        number=len(previous) + 1,
        version=number,
        recorded_at=iso_local(now, config.zone),
        by=by,
        reason=" ".join(reason.split()),
        unmonitored=list(unmonitored),
    )
    corrections = [*previous, correction]
    report = await build_report(
        config, store, month, now=now, corrections=corrections, version=number, progress=progress
    )
    return _freeze(
        archive,
        month,
        report,
        number,
        by,
        now,
        config,
        archive_formats,
        [correction.number],
    )


def output(
    produced: Produced,
    archive: ReportArchive,
    fmt: str,
    service: str | None = None,
    progress: Progress | None = None,
    lang: str | None = None,
) -> bytes:
    """The bytes to hand out: the archived document itself when the version has one
    (so its hash can be checked), else rendered from the (frozen) figures. ``lang``
    renders HTML or PDF in that language from the archived figures (still showing their
    SHA-256) instead of handing out the archived document."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")
    report = produced.report
    digest = None
    if produced.version is not None:
        if service is None and (lang is None or fmt not in ("html", "pdf")):
            archived = archive.document(produced.version, fmt)
            if archived is not None:
                return archived
        digest = produced.version.figures_sha256
    if service is not None:
        report = report.only(service)
        digest = None  # a one-service extract is not the archived document
    if lang is None:
        lang = report.contract.languages[0] if report.contract else "en"
    return render(report, fmt, digest, progress, lang)


__all__ = [
    "ArchiveError",
    "NoDataError",
    "Produced",
    "ReportArchive",
    "Version",
    "correct",
    "month_is_closed",
    "output",
    "produce",
    "sha256",
]
