"""Planned maintenance: one service for the CLI and the API — validate, store, reload,
announce.

The contract excludes planned unavailability only when users were told in advance, so
every window that reaches the store must also reach the users. Announcing happens where
the windows are reloaded, not where they are written: a window the CLI writes from
another process is announced by the running daemon exactly like one the API writes.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from monitor.clock import Clock
from monitor.config import Config
from monitor.errors import SlaMonitorError
from monitor.incidents import StatusEvent, StatusEventKind
from monitor.sla.eligibility import Eligibility, MaintenanceWindow
from monitor.store import MaintenanceRecord, MaintenanceStore
from monitor.timeparse import iso_utc

#: Longest reason kept (users and reports show it on one line).
MAX_REASON = 500


#: An announcement dated this much before it is recorded is a correction (clock skew and
#: a typed "now" stay below it).
_BACKDATE_TOLERANCE_S = 60.0


class MaintenanceError(SlaMonitorError):
    """A maintenance change is refused; ``status`` is the HTTP status an API answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class _Seen:
    """What users were last told of a window."""

    service: str
    start: float
    end: float
    reason: str
    #: Not what users see, but it moves the window's effective start.
    announced_at: float = field(default=0.0, compare=False)


_WORDS: dict[StatusEventKind, str] = {
    "maintenance_announced": "Planned maintenance",
    "maintenance_updated": "Maintenance rescheduled",
    "maintenance_cancelled": "Maintenance cancelled",
}


class MaintenanceService:
    """Validates and stores maintenance windows, reloads them into the eligibility the
    ledger classifies with, and announces every change to the subscribers.

    Args:
        config: services (a window names one) and the time zone.
        store: where windows live (the daemon's store, or the CLI's connection to it).
        clock: time source ("now" for announcements and the future-only rule).
        eligibility: the daemon's; None in the CLI (the daemon reloads on its own).
        publish: tells the subscribers; None in the CLI (the daemon announces).
    """

    def __init__(
        self,
        config: Config,
        store: MaintenanceStore,
        clock: Clock,
        *,
        eligibility: Eligibility | None = None,
        publish: Callable[[StatusEvent], None] | None = None,
        on_change: Callable[[list[tuple[int, int]]], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.eligibility = eligibility
        self.publish = publish
        #: Called with the epoch-minute spans [first, end) whose exclusion may have changed
        #: (the daemon re-decides its sealed minutes there).
        self.on_change = on_change
        self._version: int | None = None
        self._seen: dict[str, _Seen] | None = None  # None until the first reload

    # --- writing ---------------------------------------------------------------------------

    async def add(
        self,
        service: str,
        start: float,
        end: float,
        reason: str,
        by: str,
        *,
        announced_at: float | None = None,
        allow_past: bool = False,
        correction: str | None = None,
        origin: str | None = None,
    ) -> MaintenanceWindow:
        """Store a window announced now (or at ``announced_at``: the CLI registers a window
        agreed late for a report correction) and take it into account.

        An announcement dated before now is not taken on trust: it is a correction and
        needs ``correction`` (why); the store keeps when it was really recorded and by whom,
        and the report shows it as a correction. ``origin`` is where it came from as
        authenticated (``by`` is only the name the announcer gave).

        Raises:
            MaintenanceError: unknown service, empty reason, end not after start, (unless
                ``allow_past``) a window already over, or a past announcement without a
                correction.
        """
        self.check_service(service)
        reason = self._reason(reason)
        self._check_times(start, end, allow_past=allow_past)
        now = self.clock.now()
        correction = " ".join((correction or "").split()) or None
        backdated = announced_at is not None and announced_at < now - _BACKDATE_TOLERANCE_S
        if backdated and correction is None:
            raise MaintenanceError(
                400,
                "an announcement dated in the past is a correction: say why (--correction) "
                "so the report shows it as one",
            )
        window = await self.store.add_maintenance(
            service,
            start,
            end,
            reason,
            now if announced_at is None else announced_at,
            by,
            correction=correction if backdated else None,
            origin=origin,
        )
        await self.reload()
        return window

    async def change(
        self,
        window_id: str,
        *,
        start: float | None = None,
        end: float | None = None,
        reason: str | None = None,
    ) -> MaintenanceWindow:
        """Change a stored window. Shrinking or rewording keeps its announcement; moving or
        extending it is announced now (only what users were told in advance is excluded)."""
        window = await self.stored(window_id)
        start = window.start if start is None else start
        end = window.end if end is None else end
        reason = window.reason if reason is None else self._reason(reason)
        self._check_times(start, end, allow_past=False)
        within = start >= window.start and end <= window.end
        announced = window.announced_at if within else self.clock.now()
        changed = await self.store.update_maintenance(window.id, start, end, reason, announced)
        if changed is None:
            raise MaintenanceError(404, f"no maintenance window {window.id!r}")
        await self.reload()
        return changed

    async def remove(self, window_id: str, by: str) -> MaintenanceWindow:
        """Cancel (soft-delete) a stored window; it stays on file for the audit."""
        window = await self.stored(window_id)
        if not await self.store.remove_maintenance(window.id, by):
            raise MaintenanceError(404, f"no maintenance window {window.id!r}")
        await self.reload()
        return window

    async def stored(self, window_id: str) -> MaintenanceWindow:
        """A stored, not removed window (config windows are changed in the file)."""
        if window_id.startswith("cfg-"):
            raise MaintenanceError(409, "this window comes from the config file: change it there")
        for record in await self.store.maintenance_records():
            if record.window.id == window_id:
                return record.window
        raise MaintenanceError(404, f"no maintenance window {window_id!r}")

    async def records(self, include_removed: bool = False) -> list[MaintenanceRecord]:
        """Stored windows with their audit trail."""
        return await self.store.maintenance_records(include_removed)

    def check_service(self, name: str) -> None:
        """Raise MaintenanceError (400) for a service the config does not have."""
        names = [s.name for s in self.config.services]
        if name not in names:
            raise MaintenanceError(
                400, f"unknown service {name!r} (the config has: {', '.join(names)})"
            )

    # --- reloading and announcing ------------------------------------------------------------

    async def reload(self) -> bool:
        """Take the stored windows into account when they changed (whoever wrote them) and
        announce what changed; returns True when they changed. The first reload only
        learns what is there: a restart announces nothing again."""
        version = await self.store.maintenance_version()
        if version == self._version:
            return False
        windows = await self.store.list_maintenance()
        if self.eligibility is not None:
            self.eligibility.replace_stored_maintenance(windows)
        self._version = version
        before = self._seen
        self._announce_changes(windows)
        if self.on_change is not None and before is not None:
            spans = _changed_spans(before, self._seen or {})
            if spans:
                await self.on_change(spans)
        return True

    def _announce_changes(self, windows: list[MaintenanceWindow]) -> None:
        seen = {w.id: _Seen(w.service, w.start, w.end, w.reason, w.announced_at) for w in windows}
        before, self._seen = self._seen, seen
        if before is None or self.publish is None:
            return
        now = self.clock.now()
        by_id = {w.id: w for w in windows}
        for window_id, current in seen.items():
            previous = before.get(window_id)
            window = by_id[window_id]
            if previous is None:
                if window.end > now:
                    self._announce("maintenance_announced", window)
            elif previous != current and window.end > now:
                self._announce("maintenance_updated", window)
        for window_id, previous in before.items():
            if window_id not in seen and previous.end > now:
                gone = MaintenanceWindow(
                    window_id,
                    previous.service,
                    previous.start,
                    previous.end,
                    previous.reason,
                    announced_at=0.0,
                )
                self._announce("maintenance_cancelled", gone)

    def _announce(self, kind: StatusEventKind, window: MaintenanceWindow) -> None:
        assert self.publish is not None
        service = window.service
        self.publish(
            StatusEvent(
                kind=kind,
                service=service,
                subject=f"maintenance-{window.id}",
                summary=(
                    f"{_WORDS[kind]}: {service}, {iso_utc(window.start)} to {iso_utc(window.end)}"
                ),
                description=window.reason,
                started_at=window.start,
                ended_at=window.end,
            )
        )

    # --- checks ------------------------------------------------------------------------------

    @staticmethod
    def _reason(text: str) -> str:
        reason = " ".join(text.split())
        if not reason:
            raise MaintenanceError(400, "the reason must not be empty: users and reports show it")
        if len(reason) > MAX_REASON:
            raise MaintenanceError(400, f"the reason is longer than {MAX_REASON} characters")
        return reason

    def _check_times(self, start: float, end: float, *, allow_past: bool) -> None:
        if not (math.isfinite(start) and math.isfinite(end)):
            raise MaintenanceError(400, "start and end must be finite times")
        if end <= start:
            raise MaintenanceError(400, "end must be after start")
        if not allow_past and end <= self.clock.now():
            raise MaintenanceError(400, "end must be in the future: past time cannot be excluded")


def _changed_spans(before: dict[str, _Seen], after: dict[str, _Seen]) -> list[tuple[int, int]]:
    """Epoch-minute spans [first, end) of every window added, changed or removed."""
    spans = []
    for window_id in before.keys() | after.keys():
        old, new = before.get(window_id), after.get(window_id)
        if old == new and (old is None or new is None or old.announced_at == new.announced_at):
            continue
        for seen in (old, new):
            if seen is not None:
                spans.append((math.floor(seen.start / 60), math.ceil(seen.end / 60) + 1))
    return spans
