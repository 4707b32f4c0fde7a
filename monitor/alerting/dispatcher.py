"""The dispatcher: delivers events to notifiers with retries, backoff and jitter, in
the background, so alerting never blocks probing; counts deliveries in metrics.

An event may come with ``done``, told ``sent`` once it is delivered or why it was given
up (attempts exhausted, queue overflow); never at shutdown: an event the stop cut off
stays undone, for the outbox to hand to the next start or leader."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.alerting.notifiers.base import (
    AlertEvent,
    Notifier,
    logger,
)
from monitor.errors import NotifierError

#: Told what became of an event: ``sent``, or ``given up: WHY``.
Done = Callable[[str], None]
_Item = tuple[AlertEvent, Done | None]


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one event for one notifier (the dispatcher's history)."""

    notifier: str
    event: AlertEvent
    attempts: int
    at: float
    error: str | None = None


class Dispatcher:
    """Delivers events to notifiers in the background, with retries, never blocking callers.

    Each notifier has a bounded queue and one worker: a slow notifier delays only its
    own events. A full queue drops its oldest event (newer notices matter more).
    Failed attempts are retried with exponential backoff and jitter, up to
    ``max_attempts``; then the event is dropped and counted.
    """

    def __init__(
        self,
        notifiers: Mapping[str, Notifier],
        registry: CollectorRegistry,
        *,
        max_attempts: int = 6,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 60.0,
        queue_size: int = 1000,
        history_size: int = 100,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1 or queue_size < 1:
            raise ValueError("max_attempts and queue_size must be at least 1")
        self.notifiers = dict(notifiers)
        self.max_attempts = max_attempts
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._rng = rng or random.Random()
        #: The last deliveries, oldest first.
        self.delivered: deque[Delivery] = deque(maxlen=history_size)
        #: The last events given up on (after max_attempts, on overflow or at shutdown).
        self.failed: deque[Delivery] = deque(maxlen=history_size)
        self._queues = {name: asyncio.Queue[_Item](maxsize=queue_size) for name in notifiers}
        self._workers: list[asyncio.Task[None]] = []
        self._overflows = dict.fromkeys(self._queues, 0)
        self._closed = False
        self._sent = Counter(
            "sla_notifier_sent", "Events delivered, by notifier.", ["notifier"], registry=registry
        )
        self._failures = Counter(
            "sla_notifier_failures",
            "Failed delivery attempts (each retry counts), by notifier.",
            ["notifier"],
            registry=registry,
        )
        self._dropped = Counter(
            "sla_notifier_dropped",
            "Events given up on: max attempts reached, queue overflow or shutdown.",
            ["notifier"],
            registry=registry,
        )
        depth = Gauge(
            "sla_notifier_queue_depth",
            "Events waiting for their notifier.",
            ["notifier"],
            registry=registry,
        )
        for name, queue in self._queues.items():
            for counter in (self._sent, self._failures, self._dropped):
                counter.labels(name)  # expose zeros from the start
            depth.labels(name).set_function(queue.qsize)

    def submit(self, notifier_name: str, event: AlertEvent, done: Done | None = None) -> None:
        """Queue ``event`` for ``notifier_name``; never blocks, never raises."""
        try:
            queue = self._queues.get(notifier_name)
            if queue is None or self._closed:
                why = "unknown notifier" if queue is None else "dispatcher closed"
                logger.error("notifier %s: %s, event dropped", notifier_name, why)
                self._give_up(notifier_name, event, 0, why, done if queue is None else None)
                return
            if queue.full():
                oldest, told = queue.get_nowait()
                queue.task_done()
                self._give_up(notifier_name, oldest, 0, "queue overflow", told)
                overflowed = self._overflows[notifier_name] = self._overflows[notifier_name] + 1
                if overflowed % 100 == 1:  # a flood must not flood the log too
                    logger.warning(
                        "notifier %s: queue full, oldest event dropped (%d so far)",
                        notifier_name,
                        overflowed,
                    )
            queue.put_nowait((event, done))
        except Exception:  # a caller on the probing path must never see our bugs
            logger.exception("notifier %s: submit failed", notifier_name)

    async def start(self) -> None:
        """Start one worker per notifier."""
        if self._workers:
            return
        self._workers = [
            asyncio.create_task(self._work(name, queue), name=f"notifier-{name}")
            for name, queue in self._queues.items()
        ]

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Stop taking events, deliver what can be delivered within ``timeout_s``, then
        cancel the rest (counted as dropped) and close every notifier."""
        self._closed = True
        if self._workers:
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.gather(*(q.join() for q in self._queues.values()))
            except TimeoutError:
                logger.warning("notifiers not drained within %gs; dropping the rest", timeout_s)
            for task in self._workers:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers = []
        for name, queue in self._queues.items():
            while not queue.empty():
                self._give_up(name, queue.get_nowait()[0], 0, "shutdown")
                queue.task_done()
        for notifier in self.notifiers.values():
            try:
                await notifier.aclose()
            except Exception:
                logger.exception("notifier %s: close failed", notifier.name)

    def backoff_s(self, attempt: int) -> float:
        """Delay before retry ``attempt + 1``: exponential, capped, with "equal jitter"."""
        ceiling = min(self.backoff_max_s, self.backoff_min_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _give_up(
        self, name: str, event: AlertEvent, attempts: int, reason: str, done: Done | None = None
    ) -> None:
        self._dropped.labels(name).inc()
        self.failed.append(Delivery(name, event, attempts, time.time(), reason))
        _tell(done, f"given up: {reason}")

    async def _work(self, name: str, queue: asyncio.Queue[_Item]) -> None:
        notifier = self.notifiers[name]
        while True:
            event, done = await queue.get()
            try:
                await self._deliver(notifier, name, event, done)
            except asyncio.CancelledError:
                self._give_up(name, event, 0, "shutdown")
                raise
            finally:
                queue.task_done()

    async def _deliver(
        self, notifier: Notifier, name: str, event: AlertEvent, done: Done | None = None
    ) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                await notifier.send(event)
            except NotifierError as exc:
                reason = str(exc)
            except Exception as exc:  # a notifier bug must not kill the worker
                logger.exception("notifier %s: unexpected error", name)
                reason = f"{type(exc).__name__}: {exc}"
            else:
                self._sent.labels(name).inc()
                self.delivered.append(Delivery(name, event, attempt, time.time()))
                _tell(done, "sent")
                return
            self._failures.labels(name).inc()
            if attempt == self.max_attempts:
                logger.error(
                    "notifier %s: giving up on %s %s after %d attempts: %s",
                    name,
                    event.kind,
                    event.alert_id,
                    attempt,
                    reason,
                )
                self._give_up(name, event, attempt, reason, done)
                return
            delay_s = self.backoff_s(attempt)
            logger.warning(
                "notifier %s: attempt %d failed (%s); retrying in %.2fs",
                name,
                attempt,
                reason,
                delay_s,
            )
            await self._sleep(delay_s)


def _tell(done: Done | None, outcome: str) -> None:
    """Tell ``done`` (its bug must not stop a worker)."""
    if done is None:
        return
    try:
        done(outcome)
    except Exception:
        logger.exception("an event's done callback failed")
