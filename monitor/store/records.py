"""Typed records the store returns, shared by every store implementation."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from monitor.results import Result, ServiceMinute
from monitor.sla.counts import Counted, Rollup
from monitor.sla.eligibility import MaintenanceWindow

#: (service, probe, epoch minute)
RollupKey = tuple[str, str, int]
#: Where an alert is in its lifecycle.
AlertStatus = Literal["pending", "firing", "resolved"]


#: The marks a daemon leaves of its run: started, alive (every second), stopped (cleanly).
RunMark = Literal["started", "alive", "stopped"]
#: Every mark, in RunMarks' order.
RUN_MARKS: tuple[RunMark, ...] = ("started", "alive", "stopped")


def mark_name(mark: RunMark, instance: str) -> str:
    """The counter a mark is kept in: ``run started`` for a store's only daemon (as
    before instances), ``run started NAME`` for each of several."""
    return f"run {mark} {instance}" if instance else f"run {mark}"


@dataclass(frozen=True, slots=True)
class RunMarks:
    """When the daemon last started, was last seen alive and last stopped cleanly."""

    started: float | None = None
    alive: float | None = None
    stopped: float | None = None

    @property
    def killed(self) -> bool:
        """The last run ended without a clean stop (SIGKILL, a crash, a power cut)."""
        return self.started is not None and (self.stopped is None or self.stopped < self.started)


@dataclass(frozen=True, slots=True)
class ConfigUse:
    """A daemon started with a config file (its text is kept once, by SHA-256)."""

    at: float  # UTC epoch seconds
    instance: str  # instance.name
    path: str  # the file, as the daemon read it
    sha256: str  # of the file's bytes


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification waiting in the outbox: what to send (``body``, the notifier's
    event as JSON) to which notifier."""

    id: int
    notifier: str
    body: str
    created_at: float  # UTC epoch seconds: stored, before it was sent
    done_at: float | None = None  # when it was delivered or given up (None: not yet)
    outcome: str | None = None  # "sent", or why it was given up


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """A daemon writing to the store, as it last said (``monitor.cluster``)."""

    name: str  # instance.name, unique among the daemons of one store
    location: str  # instance.location
    version: str  # its sla-monitor version
    started_at: float  # UTC epoch seconds of its start
    seen_at: float  # its last heartbeat
    last_result_at: float | None  # start time of the last result it wrote, if any


@dataclass(frozen=True, slots=True)
class DayDigest:
    """One local day's raw results digested and chained to the day before: a later change
    of the day's rows, or of an earlier day's digest, no longer matches (evidence)."""

    date: str  # the local date, YYYY-MM-DD
    results: int  # raw results that started that day
    results_sha256: str  # SHA-256 of their lines in the evidence pack's results.csv form
    previous: str  # the chain of the day before (64 zeros for the first day digested)
    chain: str  # SHA-256 of previous, date, results, results_sha256 (and format from 2)
    made_at: float  # UTC epoch seconds
    #: How the day's rows were hashed: 1 without results.csv's location and late columns
    #: (digests made before they existed), 2 with them.
    format: int = 1


@dataclass(frozen=True, slots=True)
class MaintenanceRecord:
    """A stored maintenance window with its audit trail."""

    window: MaintenanceWindow
    created_by: str
    created_at: float
    removed_at: float | None = None
    removed_by: str | None = None
    #: Why the announcement is dated before the window was recorded (None: it was not).
    correction: str | None = None
    #: Where it was announced from, as authenticated (None: stored before schema v4).
    origin: str | None = None

    @property
    def removed(self) -> bool:
        """True once the window was removed (it no longer excludes anything)."""
        return self.removed_at is not None


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    """One entry of an incident's timeline: a status and a message for users."""

    id: str
    incident_id: str
    at: float
    status: str
    message: str
    author: str


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident as users see it: opened automatically or by an operator, with updates.

    Attributes:
        id: a number as text.
        service: the service concerned.
        title: one line for users.
        source: ``detected`` (opened from the availability minutes) or ``operator``.
        objective: the availability objective whose down minutes opened it, if any.
        started_at: UTC epoch seconds.
        resolved_at: UTC epoch seconds, or None while open.
        created_by: who opened it (``sla-monitor`` for detected ones).
        updates: the timeline, oldest first.
    """

    id: str
    service: str
    title: str
    source: str
    objective: str | None
    started_at: float
    resolved_at: float | None
    created_by: str
    updates: tuple[IncidentUpdate, ...] = ()

    @property
    def is_open(self) -> bool:
        """True until resolved."""
        return self.resolved_at is None

    @property
    def status(self) -> str:
        """The status of the latest update (``resolved`` once resolved)."""
        if self.resolved_at is not None:
            return "resolved"
        return self.updates[-1].status if self.updates else "investigating"


def check_window(service: str, start: float, end: float, announced_at: float) -> None:
    """Reject a window no implementation should store."""
    if not service:
        raise ValueError("a maintenance window needs a service")
    if not all(math.isfinite(t) for t in (start, end, announced_at)):
        raise ValueError("maintenance times must be finite epoch seconds")
    if end <= start:
        raise ValueError(f"a maintenance window must end after it starts ({start} >= {end})")


def row_id(text: str) -> int | None:
    """The integer id of a stored window, or None when ``text`` cannot be one."""
    if re.fullmatch(r"[0-9]{1,18}", text) is None:  # 18 digits always fit SQLite's int64
        return None
    return int(text)


@dataclass(slots=True)
class Alert:
    """One alert instance, from pending to resolved."""

    alert_id: str
    fingerprint: str
    rule: str
    severity: str
    service: str
    objective: str | None
    status: AlertStatus
    pending_since: float
    summary: str
    description: str
    value: float | None = None
    started_at: float | None = None  # when it started firing
    ended_at: float | None = None
    last_notified_at: float | None = None
    #: Highest escalation step notified so far (-1: none yet).
    escalation_step: int = -1
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    #: Notifiers told about this alert, so the resolve reaches each of them.
    notified: list[str] = field(default_factory=list)
    #: Since when a firing alert's condition has been clear (it resolves after
    #: ``resolve_after``; holding again before that continues the same alert).
    clear_since: float | None = None
    #: The monitor's location at fault (a location-fault alert), else None.
    location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (also what the store keeps)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """The inverse of ``to_dict``."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def fresh_events(
    events: Sequence[Result], counted: Sequence[Counted], stored: set[tuple[str, str]]
) -> tuple[list[Result], list[bool]]:
    """The events to insert (not stored before, first of a repeated id in the batch) and,
    per event, whether it is new: every store deduplicates alike."""
    seen = set(stored)
    fresh: list[Result] = []
    new: list[bool] = []
    for event in events:
        key = (event.service, event.request_id)
        is_new = key not in seen
        if is_new:
            seen.add(key)
            fresh.append(event)
        new.append(is_new)
    return fresh, new


def event_deltas(
    events: Sequence[Result], counted: Sequence[Counted], new: Sequence[bool]
) -> dict[RollupKey, Rollup]:
    """The rollup deltas of the new events."""
    deltas: dict[RollupKey, Rollup] = {}
    for event, counts, is_new in zip(events, counted, new, strict=True):
        if is_new:
            key = (event.service, event.probe, event.minute)
            delta = deltas.get(key)
            if delta is None:
                delta = deltas[key] = Rollup()
            delta.add_counted(counts)
    return deltas


def maintenance_record(row: Sequence[Any]) -> MaintenanceRecord:
    """A maintenance row as both SQL stores select it (``id, service, start, end, reason,
    announced_at, created_by, created_at, removed_at, removed_by, correction, origin``)."""
    i, service, start, end, reason, announced, by, at, removed_at, removed_by, why, origin = row
    return MaintenanceRecord(
        MaintenanceWindow(str(i), service, start, end, reason, announced, "store"),
        by,
        at,
        removed_at,
        removed_by,
        why,
        origin,
    )


def incidents_of(
    rows: Iterable[Sequence[Any]], update_rows: Iterable[Sequence[Any]]
) -> list[Incident]:
    """Incidents (``id, service, title, source, objective, started_at, resolved_at,
    created_by``) with their updates (``id, incident_id, at, status, message, author``, in
    time order), as both SQL stores select them."""
    updates: dict[Any, list[IncidentUpdate]] = {}
    for uid, iid, at, status, message, author in update_rows:
        updates.setdefault(iid, []).append(
            IncidentUpdate(str(uid), str(iid), at, status, message, author)
        )
    return [
        Incident(str(i), s, t, src, obj, start, end, by, tuple(updates.get(i, ())))
        for i, s, t, src, obj, start, end, by in rows
    ]


def state_columns(minute: ServiceMinute) -> tuple[str, str]:
    """A decided minute's ``states`` and ``faults`` columns (JSON; faults '' when none)."""
    faults = json.dumps(minute.faults, sort_keys=True) if minute.faults else ""
    return json.dumps(minute.states, sort_keys=True), faults


def service_minute(
    service: str, minute: int, exclusion: str | None, states: str, faults: str
) -> ServiceMinute:
    """A decided minute from its stored columns."""
    return ServiceMinute(
        service, int(minute), exclusion, json.loads(states), json.loads(faults) if faults else {}
    )


def count_faults(rows: Iterable[tuple[str, str]]) -> list[tuple[str, str, str, int]]:
    """``(service, faults column)`` rows of faulty minutes counted per service, objective
    and location, sorted."""
    counts: dict[tuple[str, str, str], int] = {}
    for service, faults in rows:
        for objective, locations in json.loads(faults).items():
            for location in locations:
                key = (service, objective, location)
                counts[key] = counts.get(key, 0) + 1
    return [(*key, n) for key, n in sorted(counts.items())]
