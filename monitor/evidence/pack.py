"""An evidence pack: what a month's figures were computed from, in plain files another
party can check without sla-monitor.

    DIR/
      README.txt        what each file holds, column by column, and how to check the pack
      SHA256SUMS        the SHA-256 of every other file (``sha256sum -c SHA256SUMS``)
      config.yaml       the config file in force when the pack was made
      results.csv       the raw results (probes and real-traffic events) of the month
      minutes.csv       each sealed minute's decision: exclusion, and per availability
                        objective its state
      maintenance.csv   the maintenance windows touching the month, with when they were
                        announced and recorded, by whom, and their removal
      publications.csv  where and when each of those windows was published: the status
                        page and feed, and each notice to the service's subscribers
      config_history.csv which config each daemon started with: the one in force when the
                        month began and every start during it
      configs/SHA.yaml  the text of each of those configs, named by its SHA-256
      batch_events.csv  batches handed in and processed during the month
      digests.csv       each day's digest of its raw results, chained to the day before
      reports/vNNN/     the archived versions of the month's report (report.json, its
                        documents, the archive manifest with its corrections)

Rows are read from the store a local day (results: an hour) at a time, so a month of
1,000 probes at 10 s does not have to fit in memory. Raw results older than
``storage.raw_retention_days`` are gone: the pack says how many results it holds.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import shutil
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from monitor.report.model import Month
from monitor.results import BatchRecord, Result, ServiceMinute
from monitor.store.records import ConfigUse, DayDigest, MaintenanceRecord, Notice

#: Columns of each CSV file, as README.txt documents them.
RESULT_COLUMNS = (
    "service",
    "probe",
    "kind",
    "started_at",
    "started_at_utc",
    "latency_s",
    "outcome",
    "detail",
    "request_id",
    "location",
    "late",
)
MINUTE_COLUMNS = ("service", "minute", "minute_start_utc", "exclusion", "objective", "state")
MAINTENANCE_COLUMNS = (
    "id",
    "service",
    "start",
    "end",
    "reason",
    "announced_at",
    "source",
    "created_by",
    "created_at",
    "removed_at",
    "removed_by",
    "correction",
    "origin",
)
BATCH_COLUMNS = ("service", "id", "batch", "event", "at", "records", "institution")
PUBLICATION_COLUMNS = (
    "window_id",
    "service",
    "channel",
    "published_at",
    "published_at_utc",
    "delivered_at",
    "outcome",
    "text",
)
DIGEST_COLUMNS = ("date", "results", "results_sha256", "previous", "chain", "made_at", "format")
CONFIG_HISTORY_COLUMNS = ("at", "at_utc", "instance", "path", "sha256")


class EvidenceStore(Protocol):
    """What a pack is read from (the store)."""

    async def results(
        self, start: float, end: float, service: str | None = None
    ) -> list[Result]: ...

    async def minute_states(
        self, start_minute: int, end_minute: int, service: str | None = None
    ) -> list[ServiceMinute]: ...

    async def maintenance_records(
        self, include_removed: bool = False
    ) -> list[MaintenanceRecord]: ...

    async def batch_events(self, since: float) -> list[BatchRecord]: ...

    async def digests(self) -> list[DayDigest]: ...

    async def notices(self, since: float) -> list[Notice]: ...

    async def config_uses(self, until: float) -> list[ConfigUse]: ...

    async def config_body(self, sha256: str) -> str | None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Pack:
    """What was written."""

    folder: Path
    results: int
    minutes: int
    maintenance: int
    batch_events: int
    report_versions: int
    files: dict[str, str]  # relative path -> SHA-256


class PackError(ValueError):
    """The pack cannot be written where asked (the folder is not empty)."""


async def write_pack(
    store: EvidenceStore,
    month: Month,
    zone: ZoneInfo,
    out: Path,
    config_file: Path,
    reports: Path | None,
) -> Pack:
    """Write the evidence pack of ``month`` into ``out`` (created; must be empty).

    Raises:
        PackError: ``out`` exists and is not empty.
    """
    _prepare(out)
    first, after = month.bounds(zone)
    start, end = first * 60.0, after * 60.0
    results = await _write_csv(out / "results.csv", RESULT_COLUMNS, _results(store, start, end))
    minutes = await _write_csv(out / "minutes.csv", MINUTE_COLUMNS, _minutes(store, first, after))
    records = [
        r
        for r in await store.maintenance_records(include_removed=True)
        if r.window.start < end and r.window.end > start
    ]
    maintenance = await _write_csv(
        out / "maintenance.csv", MAINTENANCE_COLUMNS, _each([_maintenance_row(r) for r in records])
    )
    await _write_csv(
        out / "publications.csv", PUBLICATION_COLUMNS, _each(await _publications(store, records))
    )
    # Every event of the batches handed in during the month, their processing after the
    # month's end included: it decides whether the month's last days were in time.
    events = await store.batch_events(start)
    handed_in = {(b.service, b.batch) for b in events if b.event == "submitted" and b.at < end}
    batches = [b for b in events if (b.service, b.batch) in handed_in]
    batch_events = await _write_csv(
        out / "batch_events.csv",
        BATCH_COLUMNS,
        _each([[getattr(b, c) for c in BATCH_COLUMNS] for b in batches]),
    )
    await _write_csv(
        out / "config_history.csv",
        CONFIG_HISTORY_COLUMNS,
        _each(await _config_history(store, start, end, out / "configs")),
    )
    digests = await _month_digests(store, month)
    await _write_csv(
        out / "digests.csv",
        DIGEST_COLUMNS,
        _each([[getattr(d, c) for c in DIGEST_COLUMNS] for d in digests]),
    )
    versions = _copy(config_file, None if reports is None else reports / str(month), out)
    (out / "README.txt").write_text(_readme(month, zone, results, minutes), encoding="utf-8")
    files = _sums(out)
    return Pack(out, results, minutes, maintenance, batch_events, versions, files)


async def _config_history(
    store: EvidenceStore, start: float, end: float, folder: Path
) -> list[list[object]]:
    """Each daemon's last start before the month (its config was in force when the month
    began) and every start during it; each config's text into ``folder``."""
    uses = await store.config_uses(end)
    before: dict[str, ConfigUse] = {}
    for use in uses:
        if use.at < start:
            before[use.instance] = use  # the latest wins
    kept = sorted([*before.values(), *(u for u in uses if u.at >= start)], key=lambda u: u.at)
    bodies = {sha: await store.config_body(sha) for sha in sorted({u.sha256 for u in kept})}
    _write_configs(folder, {sha: body for sha, body in bodies.items() if body is not None})
    return [[u.at, _utc(u.at), u.instance, u.path, u.sha256] for u in kept]


def _write_configs(folder: Path, bodies: dict[str, str]) -> None:
    """Each config's text as configs/SHA256.yaml (small files)."""
    if bodies:
        folder.mkdir(exist_ok=True)
    for sha, body in bodies.items():
        (folder / f"{sha}.yaml").write_bytes(body.encode("utf-8"))


async def _publications(
    store: EvidenceStore, records: Sequence[MaintenanceRecord]
) -> list[list[object]]:
    """Each window on the status page and the feed from when it was recorded (the page
    and the feed read the store), then each notice to its subscribers from the outbox."""
    if not records:
        return []
    by_subject = {f"maintenance-{r.window.id}": r for r in records}
    rows: list[list[object]] = []
    for record in records:
        w = record.window
        text = f"{w.reason} ({_utc(w.start)} to {_utc(w.end)})"
        for channel in ("status page", "feed"):
            at = record.created_at
            rows.append([w.id, w.service, channel, at, _utc(at), at, "shown", text])
    for notice in await store.notices(min(r.created_at for r in records)):
        body = json.loads(notice.body)
        told = by_subject.get(str(body.get("alert_id")))
        if told is None or not str(body.get("rule", "")).startswith("status-maintenance"):
            continue
        at = notice.created_at
        rows.append(
            [
                told.window.id,
                told.window.service,
                f"notifier {notice.notifier}",
                at,
                _utc(at),
                "" if notice.done_at is None else notice.done_at,
                notice.outcome or "not delivered yet",
                f"{body.get('summary', '')} {body.get('description', '')}".strip(),
            ]
        )
    return rows


async def _month_digests(store: EvidenceStore, month: Month) -> list[DayDigest]:
    """The digests of the month's days, and of the day before (the link they chain to)."""
    days = month.days()
    before = (days[0] - dt.timedelta(days=1)).isoformat()
    return [d for d in await store.digests() if before <= d.date <= days[-1].isoformat()]


# The pack is made by the CLI, not on the daemon's loop: plain blocking file work.


def _prepare(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PackError(f"{out} is not an empty folder: give a new folder for the pack")
    out.mkdir(parents=True, exist_ok=True)


def _copy(config_file: Path, month_dir: Path | None, out: Path) -> int:
    """Copy the config and the month's archived report versions; returns how many."""
    shutil.copyfile(config_file, out / "config.yaml")
    if month_dir is None or not month_dir.is_dir():
        return 0
    shutil.copytree(month_dir, out / "reports")
    return sum(1 for p in (out / "reports").iterdir() if p.is_dir())


def _sums(out: Path) -> dict[str, str]:
    """Write SHA256SUMS (``sha256sum -c`` checks it) over every other file."""
    files = {
        path.relative_to(out).as_posix(): _sha256(path)
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }
    (out / "SHA256SUMS").write_text(
        "".join(f"{digest}  {name}\n" for name, digest in files.items()), encoding="utf-8"
    )
    return files


async def _write_csv(
    path: Path, columns: Sequence[str], rows: AsyncIterator[Sequence[object]]
) -> int:
    """Write a header and the rows; returns how many rows."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(columns)
        async for row in rows:
            writer.writerow(["" if value is None else value for value in row])
            count += 1
    return count


async def _each(rows: Iterable[Sequence[object]]) -> AsyncIterator[Sequence[object]]:
    for row in rows:
        yield row


async def _results(store: EvidenceStore, start: float, end: float) -> AsyncIterator[list[str]]:
    """The month's raw results an hour at a time, in time order."""
    at = start
    while at < end:
        until = min(at + 3600.0, end)
        for r in await store.results(at, until):
            yield result_row(r)
        at = until


def result_row(r: Result) -> list[str]:
    """A raw result as a row of results.csv (RESULT_COLUMNS); the daily digest hashes the
    same rows (``csv_line``), so ``verify`` checks a day from the pack's bytes alone."""
    return [
        r.service,
        r.probe,
        r.kind,
        repr(r.started_at),
        _utc(r.started_at),
        repr(r.latency_s),
        r.outcome.value,
        r.detail or "",
        r.request_id or "",
        r.location,
        "1" if r.late else "0",
    ]


def csv_line(row: Sequence[object]) -> str:
    """One row exactly as results.csv holds it (the csv module's quoting, ``\n``)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue()


async def _minutes(store: EvidenceStore, first: int, after: int) -> AsyncIterator[list[object]]:
    """Each decided minute of the month, one row per availability objective (one row with
    no objective for a service that has none), a UTC day at a time."""
    at = first
    while at < after:
        until = min(at + 1440, after)
        decided = sorted(await store.minute_states(at, until), key=lambda m: (m.minute, m.service))
        for m in decided:
            when = _utc(m.minute * 60.0)
            if not m.states:
                yield [m.service, m.minute, when, m.exclusion or "", "", ""]
            for objective, state in sorted(m.states.items()):
                yield [m.service, m.minute, when, m.exclusion or "", objective, state]
        at = until


def _maintenance_row(record: MaintenanceRecord) -> list[object]:
    window = dataclasses.asdict(record.window)
    audit = {
        "created_by": record.created_by,
        "created_at": record.created_at,
        "removed_at": record.removed_at,
        "removed_by": record.removed_by,
        "correction": record.correction,
        "origin": record.origin,
    }
    values = {**window, **audit}
    return [values[c] for c in MAINTENANCE_COLUMNS]


def _utc(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat()


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _readme(month: Month, zone: ZoneInfo, results: int, minutes: int) -> str:
    return f"""Evidence pack of {month} ({zone.key}), made by sla-monitor.

Check that no file changed since it was made:

    sha256sum -c SHA256SUMS

Recompute every figure of the month from these files alone and compare with the archived
report (a second implementation, plain Python over the rows; exit 0 when all match):

    sla-monitor verify .

Times are UTC epoch seconds (results, maintenance, batch events) or epoch minutes
(minutes.csv: minute M is [M*60, M*60 + 60) seconds), with an ISO 8601 UTC column beside
them where a person reads them. The month runs from local midnight on the 1st to local
midnight on the 1st of the next month in {zone.key}.

results.csv ({results} rows): every raw result of the month, probes and real-traffic events
  service, probe       the service and its probe (or traffic feed)
  kind                 http, mqtt, integrated, traffic, ...
  started_at           when the exchange began (UTC epoch s); it counts in this minute
  started_at_utc       the same, ISO 8601
  latency_s            measured latency in seconds (failures: until the failure)
  outcome              ok, or the failure class (timeout, connect, status, ...)
  detail               a short reason for a failure
  request_id           the correlation id sent to the target (an event's id)
  location             where the daemon that measured it probes from (instance.location;
                       empty for an event of real traffic)
  late                 1: stored after the locations had decided its minute (several
                       locations only); kept, but counted in no figure
  Raw results older than storage.raw_retention_days are pruned: a month older than that
  has fewer rows than it had results (its minute decisions below remain).

minutes.csv ({minutes} rows): what each sealed minute counted as
  service, minute      the service and the epoch minute
  minute_start_utc     the minute's start, ISO 8601
  exclusion            why the minute does not count for the service: outside_hours,
                       maintenance, provider_unavailable, corrected; empty: it counts
  objective, state     per availability objective: up, down, unmonitored, outside_hours,
                       maintenance, provider_unavailable

maintenance.csv: the maintenance windows recorded at run time that touch the month (removed
  ones too); windows declared in the config file are in config.yaml
  id, service, start, end, reason
  announced_at         when users were told (UTC epoch s): minutes before announced_at +
                       maintenance_lead_time are not excluded (announced late)
  source               config (in the config file) or store (added at run time)
  created_by, created_at, origin   who recorded it, when, and from where
  removed_at, removed_by           when and by whom it was removed (it excludes nothing)
  correction           why it was recorded with an announcement in the past

publications.csv: where and when users were told of each of those windows
  window_id, service
  channel              status page, feed (both show a window from when it is recorded),
                       or "notifier NAME": a notice to the service's subscribers
  published_at(_utc)   when it was published (a notice: stored, then sent)
  delivered_at         when the notifier confirmed it (empty: not yet)
  outcome              shown, sent, or why the notice was given up
  text                 what was published

batch_events.csv: every event of the batches handed in during the month: hand-ins
  (submitted, with their volume in records) and processing, the processing after the
  month's end included (it decides whether the last days were in time)
  service, id, batch, event, at, records, institution

digests.csv: the daemon's daily digests of the month's days (and of the day before, the
  link the first chains to), made when each day was over; a digest is never rewritten
  date                 the local date
  results              how many raw results started that day
  results_sha256       SHA-256 of those rows' lines exactly as results.csv holds them, in
                       the file's order (start time, then the order they were stored)
  previous             the chain of the day before (64 zeros for the first day digested)
  chain                SHA-256 of the text, each line ending in a newline (\\n):
                       previous, date, results, results_sha256, and "format 2" (format
                       1: without that last line)
  made_at              when the digest was made (UTC epoch s)
  format               2: the lines hashed are results.csv's records as they are; 1 (made
                       before the location and late columns existed): the records without
                       their last two fields
  A row of results.csv changed, added or removed after its day was digested no longer
  matches its day's digest; a digest changed breaks every later chain.

reports/vNNN/: the archived versions of the month's report as sla-monitor froze them:
  report.json (the figures), its documents, and manifest.json (SHA-256 of each, and the
  corrections each version holds: who, when, why).

config.yaml: the config file in force when the pack was made.

config_history.csv: which config each daemon started with (a reload is a start): the
  last start of each before the month (in force when it began) and every start during it
  at, at_utc            when it started (UTC epoch s, and ISO 8601)
  instance, path        which daemon, and the file it read
  sha256                SHA-256 of the file's bytes; its text is configs/SHA256.yaml
"""
