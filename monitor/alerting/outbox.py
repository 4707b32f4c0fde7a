"""The notifications outbox: a notice is stored before it is sent and marked once
delivered (or given up), so a daemon, or a leader, that dies in between leaves it to the
next start or the next leader, which sends it (``resume``).

The order, at each alert evaluation: the new notices are stored, then the alerts' state,
then the notices go to the dispatcher. Dying after the first write sends a notice whose
alert state was not saved (the successor may decide it again: a duplicate, never a loss);
dying after delivery but before its mark (written at the next evaluation) sends it again.
So delivery is at least once; ``(alert_id, kind, escalation_step)`` identifies a notice
for a receiver that drops repeats (Alertmanager does, by fingerprint).

When the store cannot take a notice, it is sent all the same: a page is not held back
for the database (its outbox row is then missing, said in the log).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging

from monitor.alerting.dispatcher import Dispatcher
from monitor.alerting.notifiers.base import AlertEvent
from monitor.clock import Clock
from monitor.errors import StoreError
from monitor.store import Outbox

log = logging.getLogger(__name__)


def body_of(event: AlertEvent) -> str:
    """The event as stored in the outbox."""
    return json.dumps(dataclasses.asdict(event), sort_keys=True)


def event_of(body: str) -> AlertEvent:
    """The event a stored body holds."""
    return AlertEvent(**json.loads(body))


class NoticeOutbox:
    """Holds the alerter's notices until they are stored, then hands them over."""

    def __init__(self, store: Outbox, dispatcher: Dispatcher, clock: Clock) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._clock = clock
        self._held: list[tuple[str, AlertEvent]] = []  # notified, not stored yet
        self._ready: list[tuple[int, str, AlertEvent]] = []  # stored, not handed over
        self._done: list[tuple[int, str]] = []  # delivered or given up, not marked yet
        # Handed to the dispatcher by this process and not yet marked in the store: never
        # resumed, whether on its way or delivered.
        self._mine: set[int] = set()

    def notify(self, notifier: str, event: AlertEvent) -> None:
        """The alerter's ``notify``: the notice waits for ``store``."""
        self._held.append((notifier, event))

    async def store(self) -> None:
        """Store the held notices and mark the ones done since the last call."""
        if not self._held and not self._done:
            return  # the usual case, every second: no write
        held, self._held = self._held, []
        done, self._done = self._done, []
        now = self._clock.now()
        try:
            if done:
                await self._store.mark_notices(done, now)
                self._mine.difference_update(i for i, _ in done)
        except StoreError as exc:
            self._done = done + self._done  # marked at the next call
            log.error("could not mark %d delivered notices (will retry): %s", len(done), exc)
        if not held:
            return
        try:
            ids = await self._store.add_notices([(n, body_of(e)) for n, e in held], now)
        except StoreError as exc:
            log.error("%d notices sent without the outbox (the store failed): %s", len(held), exc)
            for notifier, event in held:
                self._dispatcher.submit(notifier, event)
            return
        self._ready += [(i, n, e) for i, (n, e) in zip(ids, held, strict=True)]

    def send(self) -> None:
        """Hand the stored notices to the dispatcher (once the alerts' state is saved)."""
        ready, self._ready = self._ready, []
        for notice_id, notifier, event in ready:
            self._submit(notice_id, notifier, event)

    async def resume(self) -> int:
        """Send what the outbox holds undelivered (a predecessor died with it); returns
        how many notices that was."""
        resumed = 0
        for notice in await self._store.unsent_notices():
            if notice.id in self._mine:
                continue  # this process has it on its way, or sent it
            self._submit(notice.id, notice.notifier, event_of(notice.body))
            resumed += 1
        if resumed:
            log.warning("sending %d notices a previous run or leader did not deliver", resumed)
        return resumed

    def _submit(self, notice_id: int, notifier: str, event: AlertEvent) -> None:
        self._mine.add(notice_id)
        self._dispatcher.submit(notifier, event, functools.partial(self._mark, notice_id))

    def _mark(self, notice_id: int, outcome: str) -> None:
        self._done.append((notice_id, outcome))
