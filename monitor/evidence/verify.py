"""``sla-monitor verify PACK``: recompute a month's figures from an evidence pack alone and
compare them with the archived report.

This is a second implementation on purpose (issue 15): it imports nothing from the rest of
sla-monitor — no config models, rollups, ledger or store — and reads only the pack's plain
files with the standard library and PyYAML (and ``holidays`` when the config names a
country). It follows the rules the report's method section states, written out here as
plainly as we could, so a mistake in the daemon's optimised paths shows as a mismatch
instead of being repeated. A reader checking our arithmetic should be able to read this
file alone.

The rules, per service and per minute M (epoch minute: ``[M*60, M*60 + 60)`` seconds):

1. Excluded, in this order: outside the service's hours (weekly rules in the config's
   zone; a public holiday closes its whole local date); inside announced maintenance (a
   window excludes minutes whose start lies in ``[max(start, announced_at + lead time),
   end)``); inside a period a report correction declared unmonitored.
2. Per availability objective: unmonitored when its probes have no result in M; else
   ``provider_unavailable`` when a provider (``depends_on``) was out in M (down, or in
   maintenance); else down when more than ``down_ratio`` of the results failed (and at
   least one did); else up. Availability = up / (up + down).
3. Per latency objective: every result of its probes in a minute not excluded by (1) is
   valid; it is good when its outcome is ``ok`` and its latency is at or under the
   threshold.
4. Per batch objective: a batch belongs to the local date of its first hand-in; it counts
   its records (or 1 per batch, all of it in time or not); records are in time when
   processed at or before hand-in + deadline. A date is final when the report was made
   after its end + the deadline, or after its end with every batch of it processed;
   the month's figure is over the final dates. Events after the report was made are
   not counted (the report could not see them).

Then the daily digests (``digests.csv``): every link of the chain is recomputed, and each
digested day's rows of ``results.csv`` are hashed as the file holds them and compared with
its digest, so a row changed, added or removed after its day was digested names the day.
(A format 1 digest, made before results.csv had its location and late columns, hashed
each record without those two fields.)

With several locations (``locations.names``), rule 2 judges each location on its own
results first: a minute is unmonitored when fewer than the quorum of locations measured
it, down when at least the quorum saw it down, else up, and the locations that saw it
down are at fault (their own path failed; the report lists those minutes). A latency
objective with a ``location`` counts the results measured from there alone. A result
marked ``late`` (stored after the locations had decided its minute) counts nowhere.

Quantiles in the report are estimates from latency histograms; they are not verified.

One file of ~1,130 lines on purpose: the whole second implementation reads in one place.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import multiprocessing
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*$")
STATES = ("up", "down", "unmonitored", "outside_hours", "maintenance", "provider_unavailable")


class PackUnreadable(ValueError):
    """The folder is not an evidence pack (a file is missing or cannot be read)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """One figure or hash: what the report (or manifest) says, what the pack gives."""

    what: str  # "core/availability up minutes", "SHA256SUMS results.csv", ...
    reported: str
    recomputed: str
    status: str  # "match", "MISMATCH", "not checked"
    days: tuple[str, ...] = ()  # local dates where it differs


@dataclasses.dataclass(frozen=True, slots=True)
class Verification:
    """Everything ``verify`` checked."""

    month: str
    version: int
    checks: tuple[Check, ...]

    @property
    def mismatches(self) -> list[Check]:
        return [c for c in self.checks if c.status == "MISMATCH"]

    @property
    def unchecked(self) -> list[Check]:
        return [c for c in self.checks if c.status == "not checked"]

    @property
    def tampered_days(self) -> list[str]:
        return sorted({d for c in self.mismatches for d in c.days})


def verify_pack(pack: Path) -> Verification:
    """Check the manifest, recompute every figure of the pack's month, compare.

    Raises:
        PackUnreadable: not a pack (no SHA256SUMS, config, results or archived report).
    """
    for name in ("SHA256SUMS", "config.yaml", "results.csv", "maintenance.csv"):
        if not (pack / name).is_file():
            raise PackUnreadable(f"{pack} is not an evidence pack: {name} is missing")
    checks = list(_manifest(pack))
    version, report = _latest_report(pack)
    try:
        config = yaml.safe_load((pack / "config.yaml").read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PackUnreadable(f"config.yaml cannot be read: {exc}") from None
    month = _Month(report["period"])
    services = [_Service(s, month.zone) for s in config.get("services", [])]
    lead = _seconds(config.get("maintenance_lead_time", 0))
    calendar = _Calendar(services, _stored_maintenance(pack), _corrections(report), lead)
    places = _Locations(config)
    located = places.several or any(
        o.get("location") is not None for s in services for o in s.objectives
    )
    results = _Results.read(
        pack / "results.csv", services, month, located, _hashed_without_new_columns(pack)
    )
    recomputed = _recompute_on_every_core(services, calendar, results, month, places)
    checks += _compare(services, recomputed, report, results, month)
    if places.several:
        checks += _location_faults(services, recomputed, report)
    checks += _batches(pack, services, report, month)
    checks += _digests(pack, results, month, report.get("evidence"))
    checks += _configs(pack)
    return Verification(report["period"]["month"], version, tuple(checks))


# --- the manifest --------------------------------------------------------------------


def _manifest(pack: Path) -> Iterator[Check]:
    """Every file listed in SHA256SUMS has its hash; every file is listed."""
    listed: dict[str, str] = {}
    for line in (pack / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, sep, name = line.partition("  ")
        if sep:
            listed[name] = digest
    present = {p.relative_to(pack).as_posix() for p in pack.rglob("*") if p.is_file()} - {
        "SHA256SUMS"
    }
    bad = []
    for name, digest in sorted(listed.items()):
        path = pack / name
        if not path.is_file():
            bad.append(f"{name} missing")
        elif _sha256(path) != digest:
            bad.append(f"{name} changed")
    bad += [f"{name} not listed" for name in sorted(present - set(listed))]
    yield Check(
        "manifest SHA256SUMS",
        f"{len(listed)} files",
        "all match" if not bad else "; ".join(bad),
        "match" if not bad else "MISMATCH",
    )


def _configs(pack: Path) -> Iterator[Check]:
    """Each config a daemon started with is in configs/, its text hashing to its name."""
    path = pack / "config_history.csv"
    if not path.is_file():
        return  # a pack made before config histories
    with path.open(newline="", encoding="utf-8") as file:
        wanted = sorted({row["sha256"] for row in csv.DictReader(file)})
    bad = []
    for sha in wanted:
        text = pack / "configs" / f"{sha}.yaml"
        if not text.is_file():
            bad.append(f"configs/{sha[:12]}….yaml missing")
        elif _sha256(text) != sha:
            bad.append(f"configs/{sha[:12]}….yaml does not hash to its name")
    yield Check(
        "config history",
        f"{len(wanted)} configs",
        "all present and hashing to their names" if not bad else "; ".join(bad),
        "match" if not bad else "MISMATCH",
    )


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _latest_report(pack: Path) -> tuple[int, dict[str, Any]]:
    versions = sorted(
        (int(p.name[1:]), p)
        for p in (pack / "reports").glob("v[0-9][0-9][0-9]")
        if (p / "report.json").is_file()
    )
    if not versions:
        raise PackUnreadable(f"{pack} holds no archived report (reports/vNNN/report.json)")
    number, folder = versions[-1]
    return number, json.loads((folder / "report.json").read_text(encoding="utf-8"))


# --- time ----------------------------------------------------------------------------


class _Month:
    """The report's period: epoch minutes [first, after) and the local date of each."""

    def __init__(self, period: dict[str, Any]) -> None:
        self.zone = ZoneInfo(period["timezone"])
        self.first = int(dt.datetime.fromisoformat(period["start"]).timestamp()) // 60
        self.after = int(dt.datetime.fromisoformat(period["end"]).timestamp()) // 60
        self._dates: list[str] = []

    def minutes(self) -> range:
        return range(self.first, self.after)

    def date_of(self, minute: int) -> str:
        return dt.datetime.fromtimestamp(minute * 60, self.zone).date().isoformat()

    def date_at(self, minute: int) -> str:
        """``date_of`` for a minute of the month, from a table made once."""
        if not self._dates:
            self._dates = [self.date_of(m) for m in self.minutes()]
        return self._dates[minute - self.first]


def _seconds(value: Any) -> float:
    """A config duration: a number of seconds, or ``250ms``, ``4s``, ``5m``, ``1h``, ``4d``."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if match is None:
        raise PackUnreadable(f"config.yaml: {value!r} is not a duration")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _epoch(value: Any, zone: ZoneInfo) -> float:
    """A config time (YAML timestamp or ISO text); naive times are in the config's zone."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def _days(value: Any) -> set[int]:
    """``mon-fri`` (wrapping past Sunday), ``mon`` or a list of names -> weekday numbers."""
    if isinstance(value, list):
        return {WEEKDAYS.index(str(v).strip().lower()) for v in value}
    first, _, last = str(value).strip().lower().partition("-")
    begin = WEEKDAYS.index(first)
    end = WEEKDAYS.index(last) if last else begin
    return {(begin + k) % 7 for k in range((end - begin) % 7 + 1)}


def _clock(text: Any) -> int:
    hours, minutes = str(text).split(":")
    return int(hours) * 60 + int(minutes)


# --- the config, read plainly ---------------------------------------------------------


class _Locations:
    """``locations:`` of the config: the names, and how many must agree (default: a
    majority). With one location the quorum is 1: its own verdict is the minute's."""

    def __init__(self, config: dict[str, Any]) -> None:
        raw = config.get("locations") or {}
        self.names: list[str] = list(raw.get("names") or [])
        quorum = raw.get("quorum")
        self.quorum = int(quorum) if quorum is not None else len(self.names) // 2 + 1
        #: Whether each location is judged on its own (else the results are pooled).
        self.several = len(self.names) > 1
        if not self.several:
            self.quorum = 1


class _Service:
    def __init__(self, raw: dict[str, Any], zone: ZoneInfo) -> None:
        self.name: str = raw["name"]
        self.zone = zone
        self.kinds = {p["name"]: p.get("kind", "http") for p in raw.get("probes", [])}
        self.depends_on: list[str] = list(raw.get("depends_on", []))
        self.objectives: list[dict[str, Any]] = list(raw.get("objectives", []))
        schedule = raw.get("schedule") or {}
        # (weekdays, start minute, end minute past the start day's midnight: > 1440 when
        # the rule runs past midnight)
        self.rules: list[tuple[set[int], int, int]] | None = None
        if schedule.get("hours") is not None:
            self.rules = []
            for rule in schedule["hours"]:
                start, end = _clock(rule["start"]), _clock(rule["end"])
                self.rules.append((_days(rule["days"]), start, end if end > start else end + 1440))
        holidays = schedule.get("holidays") or {}
        self.closed_dates = {str(d) for d in holidays.get("extra_dates", [])}
        self.country = holidays.get("country")
        self.subdivision = holidays.get("subdivision")
        self._holiday_years: dict[int, set[str]] = {}
        self.windows = [
            (
                _epoch(w["start"], zone),
                _epoch(w["end"], zone),
                None if w.get("announced_at") is None else _epoch(w["announced_at"], zone),
            )
            for w in raw.get("maintenance", [])
        ]

    def probes_of(self, objective: dict[str, Any]) -> list[str]:
        if objective.get("probes"):
            return list(objective["probes"])
        source = objective.get("source", "probes")
        return [
            name
            for name, kind in self.kinds.items()
            if source == "both" or (kind == "traffic") == (source == "traffic")
        ]

    def is_holiday(self, date: dt.date) -> bool:
        if date.isoformat() in self.closed_dates:
            return True
        if self.country is None:
            return False
        if date.year not in self._holiday_years:
            import holidays

            days = holidays.country_holidays(self.country, subdiv=self.subdivision, years=date.year)
            self._holiday_years[date.year] = {d.isoformat() for d in days}
        return date.isoformat() in self._holiday_years[date.year]

    def open_at(self, minute: int) -> bool:
        if self.rules is None and self.country is None and not self.closed_dates:
            return True
        wall = dt.datetime.fromtimestamp(minute * 60, self.zone)
        if self.is_holiday(wall.date()):
            return False
        rules = self.rules if self.rules is not None else [(set(range(7)), 0, 1440)]
        now = wall.hour * 60 + wall.minute
        today, yesterday = wall.weekday(), (wall.weekday() - 1) % 7
        for days, start, end in rules:
            if today in days and start <= now < min(end, 1440):
                return True
            if yesterday in days and end > 1440 and now < end - 1440:
                return True
        return False


def _stored_maintenance(pack: Path) -> list[tuple[str, float, float, float]]:
    """(service, start, end, announced_at) of the windows recorded at run time, not removed."""
    with (pack / "maintenance.csv").open(newline="", encoding="utf-8") as file:
        return [
            (row["service"], float(row["start"]), float(row["end"]), float(row["announced_at"]))
            for row in csv.DictReader(file)
            if not row["removed_at"]
        ]


def _corrections(report: dict[str, Any]) -> list[tuple[str | None, float, float]]:
    return [
        (span.get("service"), float(span["start"]), float(span["end"]))
        for correction in report.get("corrections", [])
        for span in correction.get("unmonitored", [])
    ]


class _Calendar:
    """Rule 1: why a minute does not count for a service, or None."""

    def __init__(
        self,
        services: list[_Service],
        stored: list[tuple[str, float, float, float]],
        corrected: list[tuple[str | None, float, float]],
        lead: float,
    ) -> None:
        self.hours = {s.name: s for s in services}
        self.maintenance: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for s in services:
            for start, end, announced in s.windows:
                begin = start if announced is None else max(start, announced + lead)
                self.maintenance[s.name].append((begin, end))
        for name, start, end, announced in stored:
            self.maintenance[name].append((max(start, announced + lead), end))
        self.corrected: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for only, start, end in corrected:
            for s in services:
                if only is None or only == s.name:
                    self.corrected[s.name].append((start, end))

    def exclusion(self, service: str, minute: int) -> str | None:
        if not self.hours[service].open_at(minute):
            return "outside_hours"
        begin = minute * 60
        if any(start <= begin < end for start, end in self.maintenance[service]):
            return "maintenance"
        if any(start <= begin < end for start, end in self.corrected[service]):
            return "corrected"
        return None


# --- the raw results ----------------------------------------------------------------


class _Results:
    """Per (service, probe, minute): [results, ok, good at each of the service's
    thresholds], and which (service, local date)s have any raw result."""

    def __init__(self) -> None:
        #: Key (service, probe, minute), or with ``located`` (service, probe, minute,
        #: location): the counts of each location apart.
        self.counts: dict[tuple[Any, ...], list[int]] = {}
        self.thresholds: dict[str, list[float]] = {}
        self.dated: set[tuple[str, str]] = set()
        self.days: DayHashes = {}
        self.rows = 0
        self.located = False
        self.locations: list[str] = []  # every location with a counted row

    @classmethod
    def read(
        cls,
        path: Path,
        services: list[_Service],
        month: _Month,
        located: bool = False,
        legacy: frozenset[str] = frozenset(),
    ) -> _Results:
        """Count ``path``; ``located``: each location apart; ``legacy``: the dates whose
        digest hashed the records without the location and late columns (format 1)."""
        self = cls()
        self.located = located
        for s in services:
            self.thresholds[s.name] = sorted(
                {_seconds(o["threshold"]) for o in s.objectives if o["kind"] == "latency"}
            )
        parts = _split(path, os.cpu_count() or 1, month)
        limits = self.thresholds
        if len(parts) == 1:
            answers = [_read_part(path, *parts[0], limits, month, located, legacy)]
        else:
            # The rows are independent: each core counts a part of the file, then the parts
            # are added up (a minute split between two parts is summed, not replaced).
            with ProcessPoolExecutor(len(parts)) as pool:
                futures = [
                    pool.submit(_read_part, path, begin, end, limits, month, located, legacy)
                    for begin, end in parts
                ]
                answers = [future.result() for future in futures]
        for counts, rows, days in answers:
            self.rows += rows
            self._merge(counts)
            for date, hashed in days.items():
                # A date in two parts: the file is not in time order (the digest of such a
                # day cannot match; the counts above are still right).
                self.days[date] = hashed if date not in self.days else [-1, "out of order"]
        for key in self.counts:
            self.dated.add((key[0], month.date_at(key[2])))
        if located:
            self.locations = sorted({key[3] for key in self.counts})
        return self

    def _merge(self, counts: dict[tuple[Any, ...], list[int]]) -> None:
        if not self.counts:
            self.counts = counts
            return
        for key, entry in counts.items():
            mine = self.counts.get(key)
            if mine is None:
                self.counts[key] = entry
            else:
                self.counts[key] = [a + b for a, b in zip(mine, entry, strict=True)]

    def _entries(
        self, service: str, probes: Iterable[str], minute: int, location: str | None
    ) -> Iterator[list[int]]:
        """The counts of some probes in a minute: of one location, or of all of them."""
        if not self.located:
            keys: Iterable[tuple[Any, ...]] = ((service, p, minute) for p in probes)
        elif location is not None:
            keys = ((service, p, minute, location) for p in probes)
        else:
            keys = ((service, p, minute, at) for p in probes for at in self.locations)
        for key in keys:
            entry = self.counts.get(key)
            if entry is not None:
                yield entry

    def of(
        self, service: str, probes: Iterable[str], minute: int, location: str | None = None
    ) -> tuple[int, int]:
        """(results, ok) of some probes in a minute (measured from ``location`` only)."""
        results = ok = 0
        for entry in self._entries(service, probes, minute, location):
            results += entry[0]
            ok += entry[1]
        return results, ok

    def good(
        self,
        service: str,
        probes: Iterable[str],
        minute: int,
        threshold: float,
        location: str | None = None,
    ) -> int:
        index = 2 + self.thresholds[service].index(threshold)
        return sum(entry[index] for entry in self._entries(service, probes, minute, location))


def _split(path: Path, parts: int, month: _Month) -> list[tuple[int, int]]:
    """Byte ranges [begin, end) of about equal size, each ending where a local date ends
    (so each day is hashed whole by one process); a line belongs to the range its first
    byte is in (the header is skipped by the first)."""
    size = path.stat().st_size
    if parts <= 1 or size < 64 << 20:  # small packs: one process is faster than several
        return [(0, size)]
    cuts = [0]
    with path.open("rb") as file:
        started_at = next(csv.reader([file.readline().decode("utf-8")])).index("started_at")
        for k in range(1, parts):
            file.seek(k * size // parts)
            file.readline()  # the rest of a line begun before
            date = None
            while True:
                at = file.tell()
                line = file.readline()
                if not line:
                    break
                started = next(csv.reader([line.decode("utf-8")]))[started_at]
                day = month.date_of(int(float(started) // 60))
                if date is not None and day != date:
                    break
                date = day
            if at > cuts[-1]:
                cuts.append(at)
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if a < b]


#: Per local date: [raw results, SHA-256 of their lines as the file holds them].
DayHashes = dict[str, list[Any]]


def _without_last_two(record: bytes) -> bytes:
    """A results.csv record as format 1 hashed it: without its location and late fields
    (the last two; neither ever holds a comma or a quote)."""
    body = record[:-1]  # the record's "\n"
    cut = body.rfind(b",", 0, body.rfind(b","))
    return body[:cut] + b"\n"


def _hashed_without_new_columns(pack: Path) -> frozenset[str]:
    """The dates digests.csv says were hashed as format 1 (no format column: all)."""
    path = pack / "digests.csv"
    if not path.is_file():
        return frozenset()
    with path.open(newline="", encoding="utf-8") as file:
        return frozenset(
            row["date"] for row in csv.DictReader(file) if row.get("format", "1") in ("", "1")
        )


def _read_part(
    path: Path,
    begin: int,
    end: int,
    thresholds: dict[str, list[float]],
    month: _Month,
    located: bool = False,
    legacy: frozenset[str] = frozenset(),
) -> tuple[dict[tuple[Any, ...], list[int]], int, DayHashes]:
    """Count the results.csv records starting in bytes [begin, end): per (service, probe,
    minute), and location when ``located``, [results, ok, good at each of the service's
    thresholds], leaving out the late ones (counted in no figure); and hash each local
    date's records, byte for byte, in the file's order (the dates in ``legacy`` without
    their location and late fields, as a format 1 digest hashed them)."""
    counts: dict[tuple[Any, ...], list[int]] = {}
    days: DayHashes = {}
    rows = 0
    first, after = month.first, month.after
    with path.open("rb") as file:
        header = next(csv.reader([file.readline().decode("utf-8")]))
        at = file.tell()
        if begin > at:
            file.seek(begin - 1)
            at = begin - 1 + len(file.readline())  # to the first line starting at >= begin

        def records() -> Iterator[tuple[bytes, list[str]]]:
            """(its bytes, its fields) of each record: a line, or lines while a quoted
            field runs on (an odd count of quotes so far)."""
            nonlocal at
            pending = b""
            for line in file:
                if at >= end:
                    return
                at += len(line)
                raw = pending + line if pending else line
                if raw.count(b'"') % 2:
                    pending = raw
                    continue
                pending = b""
                text = raw.decode("utf-8")
                # Most rows hold no quote: a plain split is the CSV reading of them.
                row = next(csv.reader([text])) if '"' in text else text.rstrip("\n").split(",")
                yield raw, row

        column = {name: i for i, name in enumerate(header)}
        c_service, c_probe, c_started = column["service"], column["probe"], column["started_at"]
        c_latency, c_outcome = column["latency_s"], column["outcome"]
        # Packs made before these columns existed have neither: one location, none late.
        c_location, c_late = column.get("location"), column.get("late")
        strip = c_late is not None and legacy
        key: tuple[Any, ...]
        for raw, row in records():
            minute = int(float(row[c_started]) // 60)
            date = month.date_at(minute) if first <= minute < after else month.date_of(minute)
            day = days.get(date)
            if day is None:
                day = days[date] = [0, hashlib.sha256()]
            day[0] += 1
            day[1].update(_without_last_two(raw) if strip and date in legacy else raw)
            service = row[c_service]
            limits = thresholds.get(service)
            if limits is None or not first <= minute < after:
                continue
            if c_late is not None and row[c_late] == "1":
                continue  # stored after the locations decided its minute: counted nowhere
            rows += 1
            if located:
                where = row[c_location] if c_location is not None else ""
                key = (service, row[c_probe], minute, where)
            else:
                key = (service, row[c_probe], minute)
            entry = counts.get(key)
            if entry is None:
                entry = counts[key] = [0] * (2 + len(limits))
            entry[0] += 1
            if row[c_outcome] == "ok":
                entry[1] += 1
                latency = float(row[c_latency])
                for k, threshold in enumerate(limits):
                    if latency <= threshold:
                        entry[2 + k] += 1
    return counts, rows, {d: [n, h.hexdigest()] for d, (n, h) in days.items()}


# --- rules 2 and 3 ------------------------------------------------------------------


@dataclasses.dataclass
class _Figure:
    """One objective's recomputed counts, for the month and per local date."""

    month: dict[str, int] = dataclasses.field(default_factory=lambda: defaultdict(int))
    days: dict[str, dict[str, int]] = dataclasses.field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )

    def add(self, date: str, key: str, count: int = 1) -> None:
        self.month[key] += count
        self.days[date][key] += count


def _order(services: list[_Service]) -> list[_Service]:
    """Providers before the services that depend on them."""
    by_name = {s.name: s for s in services}
    order: list[_Service] = []

    def visit(service: _Service) -> None:
        if service in order:
            return
        for provider in service.depends_on:
            visit(by_name[provider])
        order.append(service)

    for service in services:
        visit(service)
    return order


#: From this many (service, probe, minute) counts on, the decisions run on every core.
PARALLEL_FROM = 1_000_000
#: What the forked workers of ``_recompute_on_every_core`` read (inherited, not pickled).
_SHARED: tuple[list[_Service], _Calendar, _Results, _Month, _Locations | None] | None = None


def _recompute_on_every_core(
    services: list[_Service],
    calendar: _Calendar,
    results: _Results,
    month: _Month,
    places: _Locations | None = None,
) -> dict[tuple[str, str], _Figure]:
    """``_recompute``, with the services split across the cores: services linked by
    ``depends_on`` stay together (a provider is decided before its dependants)."""
    groups = _linked(services)
    workers = min(os.cpu_count() or 1, len(groups))
    if workers <= 1 or len(results.counts) < PARALLEL_FROM:  # small packs: one process
        return _recompute(services, calendar, results, month, places)
    shares: list[list[str]] = [[] for _ in range(workers)]
    for group in sorted(groups, key=len, reverse=True):  # the largest to the least loaded
        min(shares, key=len).extend(group)
    global _SHARED
    _SHARED = (services, calendar, results, month, places)
    try:
        context = multiprocessing.get_context("fork")  # the counts are shared, not copied
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            parts = list(pool.map(_recompute_share, shares))
    finally:
        _SHARED = None
    figures: dict[tuple[str, str], _Figure] = {}
    for part in parts:
        for key, (month_counts, days) in part.items():
            figure = figures[key] = _Figure()
            figure.month.update(month_counts)
            for date, counts in days.items():
                figure.days[date].update(counts)
    return figures


def _recompute_share(
    names: list[str],
) -> dict[tuple[str, str], tuple[dict[str, int], dict[str, dict[str, int]]]]:
    assert _SHARED is not None
    services, calendar, results, month, places = _SHARED
    chosen = [s for s in services if s.name in set(names)]
    return {
        key: (dict(f.month), {d: dict(c) for d, c in f.days.items()})
        for key, f in _recompute(chosen, calendar, results, month, places).items()
    }


def _linked(services: list[_Service]) -> list[list[str]]:
    """The groups of services linked by ``depends_on`` (either way)."""
    group = {s.name: {s.name} for s in services}
    for s in services:
        for provider in s.depends_on:
            joined = group[s.name] | group[provider]
            for name in joined:
                group[name] = joined
    unique = {id(g): g for g in group.values()}
    return [sorted(g) for g in unique.values()]


def _recompute(
    services: list[_Service],
    calendar: _Calendar,
    results: _Results,
    month: _Month,
    places: _Locations | None = None,
) -> dict[tuple[str, str], _Figure]:
    places = places if places is not None else _Locations({})
    figures: dict[tuple[str, str], _Figure] = {}
    #: Per service, the minutes it was out (down, or in maintenance) for its dependants.
    out: dict[str, set[int]] = {}
    for service in _order(services):
        out[service.name] = set()
        # (kind, figure, probes, latency threshold, down ratio, location) of each objective
        specs = [
            (
                o["kind"],
                figures.setdefault((service.name, o["name"]), _Figure()),
                service.probes_of(o),
                _seconds(o["threshold"]) if o["kind"] == "latency" else 0.0,
                float(o.get("down_ratio", 0.5)),
                o.get("location"),
            )
            for o in service.objectives
            if o["kind"] in ("latency", "availability")
        ]
        for minute in month.minutes():
            date = month.date_at(minute)
            exclusion = calendar.exclusion(service.name, minute)
            provider_out = any(minute in out[p] for p in service.depends_on)
            whole, _ = _judge(results, places, service.name, service.kinds, minute, 0.5)
            if exclusion == "maintenance" or whole == "down":
                out[service.name].add(minute)
            for kind, figure, probes, threshold, ratio, location in specs:
                if kind == "latency":
                    if exclusion is None:
                        n, _ = results.of(service.name, probes, minute, location)
                        good = results.good(service.name, probes, minute, threshold, location)
                        figure.add(date, "valid", n)
                        figure.add(date, "good", good)
                    continue
                seen, at_fault = _judge(results, places, service.name, probes, minute, ratio)
                if exclusion is not None:
                    state = "unmonitored" if exclusion == "corrected" else exclusion
                elif seen == "unmonitored":
                    state = "unmonitored"
                elif provider_out:
                    state = "provider_unavailable"
                else:
                    state = seen
                figure.add(date, state)
                if state == "down":
                    out[service.name].add(minute)
                elif state == "up":
                    for location in at_fault:  # its own path failed, not the service
                        figure.add(date, f"fault {location}")
    return figures


def _judge(
    results: _Results,
    places: _Locations,
    service: str,
    probes: Iterable[str],
    minute: int,
    ratio: float,
) -> tuple[str, list[str]]:
    """ "up", "down" or "unmonitored" for these probes in a minute, and the locations at
    fault. One location: down when more than ``ratio`` of the results failed. Several:
    each location judged so on its own results; unmonitored when fewer than the quorum
    measured it, down when at least the quorum saw it down, else up, and the locations
    that saw it down are at fault."""
    if not places.several:
        n, ok = results.of(service, probes, minute)
        return ("unmonitored" if n == 0 else "down" if _down(n, ok, ratio) else "up"), []
    measured = down = 0
    downs = []
    for location in results.locations:
        n, ok = results.of(service, probes, minute, location)
        if n:
            measured += 1
            if _down(n, ok, ratio):
                down += 1
                downs.append(location)
    if measured < places.quorum:
        return "unmonitored", []
    if down >= places.quorum:
        return "down", []
    return "up", downs


def _down(results: int, ok: int, ratio: float) -> bool:
    failed = results - ok
    return failed >= 1 and failed > ratio * results


# --- comparing ----------------------------------------------------------------------


def _compare(
    services: list[_Service],
    figures: dict[tuple[str, str], _Figure],
    report: dict[str, Any],
    results: _Results,
    month: _Month,
) -> Iterator[Check]:
    reported = {
        (o["service"], o["objective"]): o for s in report["services"] for o in s["objectives"]
    }
    for service in services:
        for objective in service.objectives:
            if objective["kind"] not in ("latency", "availability"):
                continue
            key = (service.name, objective["name"])
            name = f"{service.name}/{objective['name']}"
            if key not in reported:
                yield Check(name, "absent", "in the config", "MISMATCH")
                continue
            figure, entry = figures.get(key, _Figure()), reported[key]
            keys = ("valid", "good") if objective["kind"] == "latency" else STATES
            report_days = {d["date"]: _counts(d, keys) for d in entry["days"]}
            ours_days = {d: {k: v.get(k, 0) for k in keys} for d, v in figure.days.items()}
            # A day whose results were all pruned (raw retention) cannot be recomputed.
            pruned = sorted(
                d
                for d, counts in report_days.items()
                if (service.name, d) not in results.dated and _measured(counts, objective)
            )
            differing = tuple(
                d
                for d in sorted(set(report_days) | set(ours_days))
                if d not in pruned
                and report_days.get(d, dict.fromkeys(keys, 0))
                != ours_days.get(d, dict.fromkeys(keys, 0))
            )
            month_reported = _counts(entry, keys)
            month_ours = {k: figure.month.get(k, 0) for k in keys}
            if pruned:
                yield Check(
                    name,
                    _show(month_reported, objective),
                    f"no raw results on {len(pruned)} day(s) ({pruned[0]} ...): pruned",
                    "not checked" if not differing else "MISMATCH",
                    differing,
                )
                continue
            same = month_reported == month_ours and not differing
            yield Check(
                name,
                _show(month_reported, objective),
                _show(month_ours, objective),
                "match" if same else "MISMATCH",
                differing,
            )


def _location_faults(
    services: list[_Service],
    figures: dict[tuple[str, str], _Figure],
    report: dict[str, Any],
) -> Iterator[Check]:
    """Per service, the minutes each location alone saw an objective down (counted up)."""
    reported_by = {s["name"]: s.get("location_faults") or [] for s in report["services"]}
    for service in services:
        reported = {
            (f["objective"], f["location"]): int(f["minutes"])
            for f in reported_by.get(service.name, [])
        }
        ours = {
            (objective, key.removeprefix("fault ")): count
            for (name, objective), figure in figures.items()
            if name == service.name
            for key, count in figure.month.items()
            if key.startswith("fault ") and count
        }

        def show(faults: dict[tuple[str, str], int]) -> str:
            return ", ".join(f"{o}@{loc} {n}" for (o, loc), n in sorted(faults.items())) or "none"

        yield Check(
            f"{service.name} location faults (minutes)",
            show(reported),
            show(ours),
            "match" if reported == ours else "MISMATCH",
        )


def _counts(entry: dict[str, Any], keys: Iterable[str]) -> dict[str, int]:
    if "valid" in keys:
        return {"valid": int(entry["valid"]), "good": int(entry["good"])}
    states = entry.get("minute_states") or {}
    return {k: int(states.get(k, 0)) for k in keys}


def _measured(counts: dict[str, int], objective: dict[str, Any]) -> bool:
    if objective["kind"] == "latency":
        return counts["valid"] > 0
    return counts["up"] + counts["down"] + counts["provider_unavailable"] > 0


def _show(counts: dict[str, int], objective: dict[str, Any]) -> str:
    if objective["kind"] == "latency":
        valid, good = counts["valid"], counts["good"]
        share = f" = {100 * good / valid:.4f} %" if valid else ""
        return f"{good}/{valid} good{share}"
    up, down = counts["up"], counts["down"]
    share = f" = {100 * up / (up + down):.4f} %" if up + down else ""
    others = ", ".join(f"{k} {counts[k]}" for k in STATES[2:] if counts[k])
    return f"{up} up / {up + down}{share}" + (f" ({others})" if others else "")


# --- the daily digests ---------------------------------------------------------------


def _digests(
    pack: Path, results: _Results, month: _Month, head: dict[str, Any] | None
) -> Iterator[Check]:
    """Each link of digests.csv holds, the report's link is one of them, and each digested
    day of the month has exactly the rows, byte for byte, that results.csv holds for it."""
    path = pack / "digests.csv"
    rows = []
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
    if not rows:
        yield Check("daily digests", "none in the pack", "no day was digested", "not checked")
        return
    broken = []
    previous = None
    for row in rows:
        text = f"{row['previous']}\n{row['date']}\n{row['results']}\n{row['results_sha256']}\n"
        if row.get("format") not in (None, "", "1"):  # format 2 on: the format is linked too
            text += f"format {row['format']}\n"
        link = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if link != row["chain"] or previous not in (None, row["previous"]):
            broken.append(row["date"])
        previous = row["chain"]
    if head is not None:
        # The report froze the chain's link of its month: the pack's must be the same.
        chains = {r["date"]: r["chain"] for r in rows}
        same = chains.get(head["date"]) == head["chain"]
        yield Check(
            "report's chain link",
            f"{head['date']} {head['chain'][:16]}",
            "in digests.csv" if same else f"digests.csv has {chains.get(head['date'], 'none')}",
            "match" if same else "MISMATCH",
            () if same else (head["date"],),
        )
    yield Check(
        "digest chain",
        f"{len(rows)} links, newest {rows[-1]['date']} {rows[-1]['chain'][:16]}",
        "every link holds" if not broken else f"broken at {', '.join(broken)}",
        "MISMATCH" if broken else "match",
        tuple(broken),
    )
    dates = sorted({month.date_at(m) for m in month.minutes()})
    digested = {r["date"]: r for r in rows if r["date"] in dates}
    empty = [0, hashlib.sha256(b"").hexdigest()]
    differing = tuple(
        d
        for d in sorted(digested)
        if results.days.get(d, empty)
        != [int(digested[d]["results"]), digested[d]["results_sha256"]]
    )
    missing = [d for d in dates if d not in digested]
    pack_rows = sum(int(digested[d]["results"]) for d in digested)
    yield Check(
        "daily digests of results.csv",
        f"{len(digested)} of {len(dates)} days digested, {pack_rows} rows",
        f"{len(digested) - len(differing)} days match"
        + (f"; {len(missing)} days not digested ({missing[0]} ...)" if missing else ""),
        "MISMATCH" if differing else "not checked" if missing else "match",
        differing,
    )


# --- rule 4: batch objectives ----------------------------------------------------------


def _batches(
    pack: Path, services: list[_Service], report: dict[str, Any], month: _Month
) -> Iterator[Check]:
    objectives = [(s.name, o) for s in services for o in s.objectives if o["kind"] == "batch"]
    if not objectives:
        return
    now = dt.datetime.fromisoformat(report["generated_at"]).timestamp()
    # Per (service, batch): first hand-in, volume, and (at, records) of each processing.
    submitted: dict[tuple[str, str], list[float]] = {}
    processed: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    with (pack / "batch_events.csv").open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            key, at, records = (row["service"], row["batch"]), float(row["at"]), int(row["records"])
            if at > now:  # after the report was made: it could not count it
                continue
            if row["event"] == "submitted":
                first, volume = submitted.get(key, [at, 0.0])
                submitted[key] = [min(first, at), volume + records]
            else:
                processed[key].append((at, records))
    reported = {
        (s["name"], b["objective"]): b for s in report["services"] for b in s.get("batches", [])
    }
    for service, objective in objectives:
        name = f"{service}/{objective['name']}"
        entry = reported.get((service, objective["name"]))
        if entry is None:
            yield Check(name, "absent", "in the config", "MISMATCH")
            continue
        days = _batch_days(service, objective, submitted, processed, month, now)
        ours = {d: days[d] for d in sorted(days)}
        theirs = {
            d["date"]: (d["state"], d["submitted"], d["in_time"], d["unprocessed"])
            for d in entry["days"]
        }
        differing = tuple(
            d for d in sorted(set(ours) | set(theirs)) if ours.get(d) != theirs.get(d)
        )
        final = [v for v in ours.values() if v[0] == "final"]
        valid, good = sum(v[1] for v in final), sum(v[2] for v in final)
        yield Check(
            name,
            _show_batch(int(entry["good"]), int(entry["valid"]), int(entry["pending_days"])),
            _show_batch(good, valid, len(ours) - len(final)),
            "match"
            if not differing and (valid, good) == (entry["valid"], entry["good"])
            else "MISMATCH",
            differing,
        )


def _batch_days(
    service: str,
    objective: dict[str, Any],
    submitted: dict[tuple[str, str], list[float]],
    processed: dict[tuple[str, str], list[tuple[float, int]]],
    month: _Month,
    now: float,
) -> dict[str, tuple[str, int, int, int]]:
    """Per local hand-in date of the month: (state, submitted, in time, unprocessed)."""
    deadline = _seconds(objective["deadline"])
    by_records = objective.get("measure", "records") == "records"
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    complete: dict[str, bool] = defaultdict(lambda: True)
    for (name, batch), (first, volume_f) in submitted.items():
        minute = int(first // 60)
        if name != service or not month.first <= minute < month.after:
            continue
        volume = int(volume_f)
        steps = processed.get((name, batch), [])
        in_time = min(volume, sum(r for at, r in steps if at <= min(first + deadline, now)))
        done = min(volume, sum(r for at, r in steps if at <= now))
        date = month.date_of(minute)
        counts = days[date]
        if by_records:
            counts[0] += volume
            counts[1] += in_time
            counts[2] += volume - done
        else:
            counts[0] += 1
            counts[1] += in_time >= volume
            counts[2] += done < volume
        complete[date] = complete[date] and volume > 0 and done >= volume
    out = {}
    for date, (handed, good, left) in days.items():
        end = dt.datetime.combine(
            dt.date.fromisoformat(date) + dt.timedelta(days=1), dt.time(), month.zone
        ).timestamp()
        final = now >= end + deadline or (now >= end and complete[date])
        out[date] = ("final" if final else "pending", handed, good, left)
    return out


def _show_batch(good: int, valid: int, pending: int) -> str:
    share = f" = {100 * good / valid:.4f} %" if valid else ""
    return f"{good}/{valid} in time{share}" + (f", {pending} days pending" if pending else "")
