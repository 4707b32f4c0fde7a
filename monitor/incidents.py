"""Incidents for the network's users: opened automatically when an availability objective's
minutes turn down and resolved when they are up again, or opened by an operator; each with a
timeline of human-written updates. Users are told as they happen (the contract: "as soon as
possible" of unplanned unavailability and of its end).

Detection reuses the ledger's minute codes, so the status page, the SLA figures and the
monthly report agree on which minutes were down. The last *complete* minute is read as it
stands (before it is sealed) so that users hear of an outage within about a minute rather than
after the sealing grace period; minutes still without any result are read again later.

User notifications reuse the alerting Dispatcher and its notifiers. An ``AlertEvent`` can carry
them (kind ``firing``/``resolved``, summary, description), but its kinds are an alert's; a
``StatusEvent`` says what happened for users and is mapped onto an ``AlertEvent`` whose
``labels["status_event"]`` keeps the precise kind for webhook receivers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from monitor.alerting.notifiers import AlertEvent, EventKind
from monitor.clock import Clock
from monitor.config import AvailabilityObjective, Config
from monitor.ledger.windows import Ledger
from monitor.sla.minutes import MinuteCode, ObjectiveKey
from monitor.store import Incident, IncidentUpdate, Store

log = logging.getLogger(__name__)

#: Statuses an update may give an open incident (``resolved`` only by resolving it).
UPDATE_STATUSES = ("investigating", "identified", "monitoring")
#: Author of what the daemon itself writes.
DETECTOR = "sla-monitor"
#: Minutes of history read back when the detector starts or falls behind.
_CATCH_UP_MINUTES = 60

StatusEventKind = Literal[
    "maintenance_announced",
    "maintenance_updated",
    "maintenance_cancelled",
    "incident_opened",
    "incident_updated",
    "incident_resolved",
]


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """Something the users of a service are told about.

    Attributes:
        kind: what happened.
        service: the service concerned.
        subject: ``incident-<id>`` or ``maintenance-<id>``.
        summary: one line.
        description: a few lines (times, reason, the latest update).
        started_at: UTC epoch seconds (incident start, or window start).
        ended_at: UTC epoch seconds (resolution, or window end), if known.
    """

    kind: StatusEventKind
    service: str
    subject: str
    summary: str
    description: str
    started_at: float
    ended_at: float | None = None

    def to_alert_event(self) -> AlertEvent:
        """The same news as an ``AlertEvent`` for the alerting notifiers."""
        ends = self.kind in ("incident_resolved", "maintenance_cancelled")
        kind: EventKind = "resolved" if ends else "firing"
        topic = self.subject.partition("-")[0]
        return AlertEvent(
            kind=kind,
            alert_id=self.subject,
            fingerprint=f"status:{self.subject}",
            rule=f"status-{topic}",
            severity="info",
            service=self.service,
            objective=None,
            summary=self.summary,
            description=self.description,
            started_at=self.started_at,
            ended_at=self.ended_at if ends else None,
            labels={"audience": "users", "status_event": self.kind, "service": self.service},
            annotations={"summary": self.summary},
        )


class UserNotices:
    """Sends status events to the subscribers of their service (``status.subscribers``).

    Args:
        config: the validated config (subscribers reference ``alerting.notifiers``).
        submit: queues an event for a named notifier (``Dispatcher.submit``); never blocks.
    """

    def __init__(self, config: Config, submit: Callable[[str, AlertEvent], None]) -> None:
        self._by_service: dict[str, list[str]] = {}
        for subscriber in config.status.subscribers:
            self._by_service.setdefault(subscriber.service, []).append(subscriber.notifier)
        self._submit = submit
        #: Every event published, oldest first (the last 100), for tests and debugging.
        self.sent: list[StatusEvent] = []

    def publish(self, event: StatusEvent) -> None:
        """Queue ``event`` for every subscriber of its service."""
        self.sent = [*self.sent[-99:], event]
        for notifier in self._by_service.get(event.service, ()):
            self._submit(notifier, event.to_alert_event())


class IncidentBook:
    """Opens, updates and resolves incidents in the store, and tells the users.

    Args:
        store: where incidents live.
        clock: the daemon's clock.
        publish: called with each event for the users (``UserNotices.publish``).
    """

    def __init__(
        self, store: Store, clock: Clock, publish: Callable[[StatusEvent], None] | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._publish = publish or (lambda event: None)
        #: Bumped by every change, so readers can tell when to refresh.
        self.version = 0

    async def open(
        self,
        service: str,
        title: str,
        message: str,
        by: str,
        *,
        started_at: float | None = None,
        source: str = "operator",
        objective: str | None = None,
    ) -> Incident:
        """Open an incident (its first update carries ``message``)."""
        start = self._clock.now() if started_at is None else started_at
        incident = await self._store.add_incident(
            service, title, start, source, objective, by, message
        )
        self.version += 1
        self._publish(_event("incident_opened", incident, message))
        return incident

    async def post_update(
        self, incident_id: str, status: str, message: str, by: str
    ) -> Incident | None:
        """Add an update to an open incident; None when it is unknown or resolved."""
        if status not in UPDATE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(UPDATE_STATUSES)}")
        update = await self._store.add_incident_update(
            incident_id, self._clock.now(), status, message, by
        )
        return await self._changed(update, "incident_updated")

    async def resolve(
        self, incident_id: str, message: str, by: str, at: float | None = None
    ) -> Incident | None:
        """Resolve an open incident; None when it is unknown or already resolved."""
        when = self._clock.now() if at is None else at
        update = await self._store.resolve_incident(incident_id, when, message, by)
        return await self._changed(update, "incident_resolved")

    async def _changed(
        self, update: IncidentUpdate | None, kind: StatusEventKind
    ) -> Incident | None:
        if update is None:
            return None
        incident = await self._store.incident(update.incident_id)
        if incident is None:  # pragma: no cover - rows are never deleted
            return None
        self.version += 1
        self._publish(_event(kind, incident, update.message))
        return incident

    async def get(self, incident_id: str) -> Incident | None:
        """One incident, or None."""
        return await self._store.incident(incident_id)

    async def find(
        self, *, open_only: bool = False, since: float | None = None, limit: int = 100
    ) -> list[Incident]:
        """Incidents, newest first (see ``Store.incidents``)."""
        return await self._store.incidents(open_only=open_only, since=since, limit=limit)


def _event(kind: StatusEventKind, incident: Incident, message: str) -> StatusEvent:
    verb = {
        "incident_opened": "Incident",
        "incident_updated": "Update",
        "incident_resolved": "Resolved",
    }[kind]
    return StatusEvent(
        kind=kind,
        service=incident.service,
        subject=f"incident-{incident.id}",
        summary=f"{verb}: {incident.title}",
        description=message,
        started_at=incident.started_at,
        ended_at=incident.resolved_at,
    )


@dataclass(slots=True)
class _Track:
    """What the detector knows of one availability objective."""

    open_id: str | None = None
    down_run: int = 0
    up_run: int = 0
    down_since: int | None = None  # first minute of the current down run
    up_since: int | None = None  # first minute of the current up run
    checked_through: int | None = None
    last_code: MinuteCode = MinuteCode.UNKNOWN


class IncidentDetector:
    """Opens an incident after ``status.open_after_minutes`` down minutes of an availability
    objective and resolves it after ``status.resolve_after_minutes`` up minutes.

    Excluded minutes (maintenance, outside hours, provider down) and unmonitored ones
    neither open nor resolve: they leave the runs as they are.
    """

    def __init__(self, config: Config, ledger: Ledger, book: IncidentBook) -> None:
        self._config = config
        self._ledger = ledger
        self._book = book
        self._tracks: dict[ObjectiveKey, _Track] = {
            ObjectiveKey(s.name, o.name): _Track()
            for s in config.services
            for o in s.objectives
            if isinstance(o, AvailabilityObjective)
        }

    async def reload(self) -> None:
        """Take the store's open incidents as they are now: another daemon led meanwhile,
        and may have resolved this process's and opened others. The minute counts stay:
        they read the ledger's minutes from where they stopped."""
        for track in self._tracks.values():
            track.open_id = None
        await self.load()

    async def load(self) -> None:
        """Pick up the detected incidents still open in the store (after a restart)."""
        for incident in await self._book.find(open_only=True, limit=10_000):
            key = ObjectiveKey(incident.service, incident.objective or "")
            track = self._tracks.get(key)
            if incident.source == "detected" and track is not None and track.open_id is None:
                track.open_id = incident.id

    def down_services(self) -> set[str]:
        """Services whose last complete minute was down for an availability objective."""
        return {k.service for k, t in self._tracks.items() if t.last_code is MinuteCode.DOWN}

    async def evaluate(self, now: float) -> None:
        """Read the minutes completed since the last call and open or resolve incidents."""
        last = int(now // 60) - 1
        for key, track in self._tracks.items():
            if track.open_id is not None:
                incident = await self._book.get(track.open_id)
                if incident is None or not incident.is_open:  # resolved by an operator
                    track.open_id, track.down_run, track.down_since = None, 0, None
            first = last if track.checked_through is None else track.checked_through + 1
            first = max(first, last - _CATCH_UP_MINUTES)
            if first > last:
                continue
            codes = self._ledger.codes_between(key, first, last, now)
            for minute, code in zip(range(first, last + 1), codes, strict=True):
                if code is MinuteCode.UNKNOWN:
                    break  # no result yet: read this minute again next time
                await self._minute(key, track, minute, code)
                track.checked_through = minute

    async def _minute(
        self, key: ObjectiveKey, track: _Track, minute: int, code: MinuteCode
    ) -> None:
        track.last_code = code
        status = self._config.status
        if code is MinuteCode.DOWN:
            track.down_run += 1
            track.up_run, track.up_since = 0, None
            if track.down_since is None:
                track.down_since = minute
            if track.open_id is None and track.down_run >= status.open_after_minutes:
                incident = await self._book.open(
                    key.service,
                    f"{key.service} unavailable",
                    f"{key.service} is not answering (objective {key.objective}); "
                    "we are investigating.",
                    DETECTOR,
                    started_at=track.down_since * 60.0,
                    source="detected",
                    objective=key.objective,
                )
                track.open_id = incident.id
                log.warning("incident %s opened: %s down", incident.id, key.service)
        elif code is MinuteCode.UP:
            track.up_run += 1
            if track.up_since is None:
                track.up_since = minute
            track.down_run = 0
            track.down_since = None
            if track.open_id is not None and track.up_run >= status.resolve_after_minutes:
                since = track.up_since * 60.0
                await self._book.resolve(
                    track.open_id,
                    f"{key.service} has been answering normally again for {track.up_run} min.",
                    DETECTOR,
                    at=since,
                )
                log.info("incident %s resolved: %s up", track.open_id, key.service)
                # None means an operator resolved it meanwhile: either way it is closed.
                track.open_id = None
