"""The collector: takes results off the queue and counts each one exactly once, in the
Prometheus metrics, the in-memory ledger and (batched) the store.

A result the collector has taken is not lost: when a store write fails, the batch is kept
and retried; beyond ``max_staged`` results in memory it is spilled to the spool; on
shutdown the queue is drained, the last batch flushed, and what the store still refuses
goes to the spool. Only what the spool cannot take is lost: counted in ``lost`` and
``sla_results_lost_total``, and ``run`` then exits non-zero.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping

from monitor.clock import Clock
from monitor.errors import StoreError
from monitor.ledger.windows import Ledger
from monitor.metrics import Metrics
from monitor.results import (
    BatchRecord,
    EventBatch,
    HourSummary,
    QueueItem,
    Result,
    ServiceMinute,
)
from monitor.sla.counts import Counted, Rollup
from monitor.sla.minutes import ProbeId
from monitor.sla.objectives import location_series, probe_thresholds
from monitor.store import RollupKey, Store
from monitor.store.spool import Spool, replay

log = logging.getLogger(__name__)

#: Bodies of events stored at once (one written while the one before is counted).
_STORING = 2


class Collector:
    """Consumes results until told to stop, then drains and flushes.

    Args:
        queue: where the scheduler puts results.
        ledger: in-memory windows.
        store: where raw results and rollups are written.
        metrics: Prometheus instruments.
        clock: time source for window sliding.
        batch_size: results per store transaction, at most.
        flush_interval_s: longest time a result waits before it is written.
        spool: where results go that the store cannot take (None: kept in memory only).
        max_staged: results kept in memory while the store fails before spilling.
    """

    def __init__(
        self,
        queue: asyncio.Queue[QueueItem],
        ledger: Ledger,
        store: Store,
        metrics: Metrics,
        clock: Clock,
        batch_size: int = 1000,
        flush_interval_s: float = 1.0,
        spool: Spool | None = None,
        max_staged: int = 50_000,
    ) -> None:
        self.queue = queue
        self.ledger = ledger
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._pending: list[Result] = []
        self._deltas: dict[RollupKey, Rollup] = {}
        #: The batch being written in the background (``run``), and its task.
        self._writing: tuple[list[Result], dict[RollupKey, Rollup]] | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self.accepted = 0
        self.written = 0
        #: The start time of the newest result written (None: none yet).
        self.last_written_at: float | None = None
        self._decisions: list[ServiceMinute] = []
        self._hours: list[HourSummary] = []
        self._retry_after = 0.0
        self._failures_in_row = 0
        self.spool = spool
        self.max_staged = max_staged
        #: Results neither the store nor the spool could take.
        self.lost = 0
        #: Set once the collector has drained: events can no longer be taken.
        self.closed = False
        #: (service, probe, location) -> the series of that location's results alone,
        #: for latency objectives of one location (counted beside the probe's own).
        self._series = location_series(ledger.config)
        #: Told of the batch events newly stored (the batch book counts them).
        self.on_batch_events: Callable[[list[BatchRecord]], None] | None = None
        #: Bodies of events being stored, oldest first.
        self._storing: deque[asyncio.Task[None]] = deque()
        #: With several locations: per probe, the results the store took after their
        #: minute was decided (counted in no figure; shown in sla_results_too_late).
        self.take_late: Callable[[], Mapping[ProbeId, int]] | None = None

    def accept(self, result: Result) -> None:
        """Count one result in metrics and ledger and stage it for the store."""
        self.accepted += 1
        self._pending.append(result)  # first: whatever fails below, the result is stored
        counted = self._count(result)
        if counted is None:
            counted = self.ledger.count(result)
        self._stage_delta(result, counted)
        if self._series:
            series = self._series.get((result.service, result.probe, result.location))
            if series is not None:
                self._count_series(dataclasses.replace(result, probe=series))

    def _count_series(self, result: Result) -> None:
        """Count a result again in the series of its location alone (ledger and store
        rollups only: it is stored raw, and in the metrics, once)."""
        try:
            counted = self.ledger.add(result, series=True)
        except Exception:  # as in _count
            log.exception("could not count a result of %s/%s", result.service, result.probe)
            counted = self.ledger.count(result)
        self._stage_delta(result, counted)

    def _stage_delta(self, result: Result, counted: Counted) -> None:
        """Add a result's counts to the store's rollup of its probe (or series) and minute."""
        key = (result.service, result.probe, result.minute)
        delta = self._deltas.get(key)
        if delta is None:
            delta = self._deltas[key] = Rollup()
        delta.add_counted(counted)

    def _count(self, result: Result, counted: Counted | None = None) -> Counted | None:
        """Count a result in the metrics and the ledger; None when that failed."""
        try:
            self.metrics.accepted.inc()
            self.metrics.observe(result)
            # Worked out once, for the ledger and the store.
            return self.ledger.add(result, counted)
        except Exception:  # a bug here must not stop the collector; a restart recounts
            log.exception("could not count a result of %s/%s", result.service, result.probe)
            return None

    def _count_events(self, fresh: list[tuple[Result, Counted]]) -> None:
        """Count newly stored events in the metrics (per body) and the ledger."""
        try:
            self.metrics.accepted.inc(len(fresh))
            self.metrics.observe_many([event for event, _ in fresh])
        except Exception:  # as in _count: a bug here must not stop the collector
            log.exception("could not count %d events in the metrics", len(fresh))
        add = self.ledger.add
        for event, counted in fresh:
            try:
                add(event, counted)
            except Exception:
                log.exception("could not count an event of %s/%s", event.service, event.probe)

    async def take(self, item: QueueItem) -> None:
        """Take one item off the queue: stage a probe's result, or store a batch of events.

        Events are stored by a task, up to ``_STORING`` bodies at once: while SQLite
        writes one (in its thread), the loop counts the one before. Their transactions
        still follow each other (the store's write lock), so a body's duplicates are
        found among everything committed before it."""
        if isinstance(item, EventBatch):
            while len(self._storing) >= _STORING:
                await self._storing.popleft()
            self._storing.append(asyncio.create_task(self._store_events(item)))
        else:
            self.accept(item)

    async def settle(self) -> None:
        """Wait until every body of events taken is stored and counted (or refused)."""
        while self._storing:
            await self._storing.popleft()

    async def _store_events(self, batch: EventBatch) -> None:
        """Store the events not seen before, then count them: an event is counted only
        once it is on disk, and its sender is answered only then (``batch.done``). On a
        store error the sender gets the error (and retries): what was committed before it
        is counted already, and is a duplicate in the retry."""
        events = batch.events
        counts = batch.counts
        if counts is None:
            counts = [self.ledger.count(e) for e in events]
        try:
            new = await self.store.write_events(events, counts) if events else []
        except StoreError as exc:
            self._refuse(batch, exc)
            return
        fresh = [(e, c) for e, c, is_new in zip(events, counts, new, strict=True) if is_new]
        stored = len(fresh)
        self._count_events(fresh)
        self.accepted += stored
        self.written += stored
        self.metrics.written.inc(stored)
        try:
            new_batches = (
                await self.store.write_batch_events(batch.batches) if batch.batches else []
            )
        except StoreError as exc:
            self._refuse(batch, exc)
            return
        if self.on_batch_events is not None:
            self.on_batch_events([b for b, n in zip(batch.batches, new_batches, strict=True) if n])
        if not batch.done.done():  # the sender may have gone: its retry finds them stored
            batch.done.set_result(new + new_batches)

    def _refuse(self, batch: EventBatch, exc: StoreError) -> None:
        self.metrics.store_errors.inc()
        log.error(
            "could not store %d events (the sender retries): %s",
            len(batch.events) + len(batch.batches),
            exc,
        )
        if not batch.done.done():
            batch.done.set_exception(exc)

    async def ingest(
        self,
        events: list[Result],
        batches: list[BatchRecord] | None = None,
        counts: list[Counted] | None = None,
        timeout_s: float = 30.0,
    ) -> list[bool]:
        """Store and count events through the results' queue; per exchange event, then
        per batch event, whether it was new (False: stored before, e.g. a retry).

        Raises:
            StoreError: the store refused them (nothing was counted).
            TimeoutError: the collector did not answer in time, or has stopped.
        """
        if self.closed:
            raise TimeoutError("the daemon is stopping")
        batch = EventBatch(events, batches or [], counts)
        async with asyncio.timeout(timeout_s):
            await self.queue.put(batch)
            return await asyncio.shield(batch.done)

    async def flush(self) -> bool:
        """Write the staged results and rollup deltas in one transaction (after the write
        under way in the background, if any).

        Returns True when everything staged is on disk. On a store error the batch stays
        staged (nothing is lost) and the next attempt waits with backoff.
        """
        if not await self._settle_write():
            return False
        if not self._pending:
            return True
        return await self._write(*self._take())

    def _take(self) -> tuple[list[Result], dict[RollupKey, Rollup]]:
        """The staged batch, out of staging (``_give_back`` returns it on failure)."""
        batch, deltas = self._pending, self._deltas
        self._pending, self._deltas = [], {}
        return batch, deltas

    def _give_back(self, batch: list[Result], deltas: dict[RollupKey, Rollup]) -> None:
        """A batch the store refused, back in front of what was staged since."""
        self._pending = batch + self._pending
        for key, delta in self._deltas.items():
            if key in deltas:
                deltas[key].merge(delta)
            else:
                deltas[key] = delta
        self._deltas = deltas

    async def _write(self, batch: list[Result], deltas: dict[RollupKey, Rollup]) -> bool:
        """Write one batch taken out of staging; given back when the store refuses it."""
        started = time.perf_counter()
        try:
            await self.store.write_batch(batch, deltas)
        except StoreError as exc:
            self._writing = None
            self._give_back(batch, deltas)
            self.metrics.store_errors.inc()
            self._failures_in_row += 1
            backoff = min(30.0, 0.5 * 2 ** min(self._failures_in_row, 6))
            self._retry_after = time.monotonic() + backoff
            log.error(
                "store write failed (%d results kept, retry in %.1fs): %s",
                len(self._pending),
                backoff,
                exc,
            )
            if len(self._pending) >= self.max_staged:
                self.spill()
            return False
        self._writing = None  # on disk: no longer staged
        self.metrics.write_seconds.observe(time.perf_counter() - started)
        self.metrics.written.inc(len(batch))
        self.written += len(batch)
        latest = max(r.started_at for r in batch)
        if self.last_written_at is None or latest > self.last_written_at:
            self.last_written_at = latest
        self._failures_in_row = 0
        if self.take_late is not None:
            for probe, count in self.take_late().items():
                self.metrics.results_too_late.labels(*probe).inc(count)
        if self.spool is not None and self.spool.size():
            await self._replay_spool()
        return True

    def _write_behind(self) -> None:
        """Start writing the staged batch while the next one is taken (one write at a
        time: the store's transactions stay in the order the results came)."""
        batch, deltas = self._take()
        self._writing = (batch, deltas)
        self._inflight = asyncio.create_task(self._write(batch, deltas))

    async def _settle_write(self) -> bool:
        """Wait for the write under way, if any; False when it failed (its batch is staged
        again)."""
        task, self._inflight = self._inflight, None
        if task is None:
            return True
        return await task

    def spill(self) -> bool:
        """Move every staged result to the spool (the store keeps failing, or the daemon
        stops); what the spool cannot take is lost, counted and logged. True when
        nothing was lost."""
        if not self._pending:
            return True
        count = len(self._pending)
        try:
            if self.spool is None:
                raise OSError("no spool is configured")
            self.spool.append(self._pending)
        except OSError as exc:
            self.lost += count
            self.metrics.lost.inc(count)
            log.critical(
                "%d results lost: neither the store nor the spool took them: %s", count, exc
            )
            self._pending, self._deltas = [], {}
            return False
        log.warning("store failing: %d results spilled to %s", count, self.spool.path)
        self.metrics.spooled.set(self.spool.pending())
        self._pending, self._deltas = [], {}
        return True

    async def _replay_spool(self) -> None:
        """The store is back: write the spooled results back in bounded batches."""
        assert self.spool is not None
        before = self.spool.pending()
        try:
            await replay(
                self.spool,
                self.store,
                probe_thresholds(self.ledger.config),
                self.batch_size,
                self._series,
            )
        except StoreError as exc:
            log.error("replaying the spool failed (will retry): %s", exc)
        # What went back is written too (a part, when the replay failed half way): else a
        # run that spilled and recovered would end saying it wrote less than it accepted.
        after = self.spool.pending()
        self.written += before - after
        self.metrics.written.inc(before - after)
        self.metrics.spooled.set(after)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set and the queue is empty, flushing as it goes.

        Set ``stop`` only once nothing will be put on the queue any more (the scheduler
        has finished its runs in flight).
        """
        # Flushing keeps the store's pace in real time, not the clock's: a fake clock that
        # stands still in a test must not stop the writes.
        next_flush = time.monotonic() + self.flush_interval_s
        next_tick = 0.0
        while True:
            timeout = max(0.0, min(next_flush, next_tick + 1.0) - time.monotonic())
            item = await self._get(timeout)
            if item is not None:
                await self.take(item)
                # Take whatever else is already waiting without yielding per result.
                while len(self._pending) < self.batch_size:
                    try:
                        await self.take(self.queue.get_nowait())
                    except asyncio.QueueEmpty:
                        break
            self.metrics.queue_depth.set(self.queue.qsize())
            now = time.monotonic()
            due = now >= next_flush or len(self._pending) >= self.batch_size
            if self._inflight is not None and self._inflight.done():
                await self._settle_write()  # over (a failure gave its batch back already)
            writing = self._inflight is not None
            if due and now >= self._retry_after and not writing:
                # Start the next write and go on taking results meanwhile.
                if self._pending:
                    self._write_behind()
                next_flush = time.monotonic() + self.flush_interval_s
            elif writing and len(self._pending) >= 2 * self.batch_size:
                await self._settle_write()  # the store is slower than the probes: wait
            if self.store_failing and len(self._pending) >= self.max_staged:
                self.spill()  # bounded memory through the whole backoff, not at its end
            if now >= next_tick + 1.0:
                next_tick = now
                await self._advance()
            if stop.is_set() and self.queue.empty():
                break
        await self.drain()
        self.closed = True
        # Events posted while the last batch was written: their senders are told to retry.
        while True:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if isinstance(item, EventBatch) and not item.done.done():
                item.done.set_exception(TimeoutError("the daemon is stopping"))

    async def _get(self, wait_s: float) -> QueueItem | None:
        """The next result, or None after ``wait_s`` seconds.

        Not ``wait_for(queue.get())``: on Python 3.11 a result that arrives as the timeout
        fires can be lost with it. Cancelling a waiting ``get`` leaves the item queued.
        """
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        getter = asyncio.ensure_future(self.queue.get())
        done, _ = await asyncio.wait({getter}, timeout=wait_s)
        if getter in done or not getter.cancel():
            return getter.result()
        return None

    async def _advance(self) -> None:
        try:
            await self.ledger.advance(self.clock.now(), self.store)
        except StoreError as exc:
            log.error("could not slide windows (will retry): %s", exc)
        await self.write_decisions()

    async def write_decisions(self) -> None:
        """Persist the minutes the ledger sealed and the hours it compacted, so a restart
        reuses its decisions (kept and retried when the store fails)."""
        decisions = self._decisions + self.ledger.take_decisions()
        hours = self._hours + self.ledger.take_hours()
        try:
            if decisions:
                await self.store.write_minute_states(decisions)
            decisions = []
            if hours:
                await self.store.write_hours(hours)
            hours = []
        except StoreError as exc:
            log.error(
                "could not store %d minute decisions and %d hours (will retry): %s",
                len(decisions),
                len(hours),
                exc,
            )
        self._decisions, self._hours = decisions, hours

    async def drain(self, attempts: int = 5) -> None:
        """Take every result left in the queue and flush it, retrying a failing store."""
        while True:
            try:
                await self.take(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        await self.settle()
        for attempt in range(attempts):
            if await self.flush():
                await self.write_decisions()
                return
            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
        count = len(self._pending)
        if self.spill():
            log.warning("%d results the store refused at shutdown are in the spool", count)

    def written_through(self, minute: int) -> bool:
        """Whether every result taken so far that started in ``minute`` or before is in the
        store (nothing of it staged or being written, nothing in the spool)."""
        if self.spool is not None and self.spool.pending():
            return False
        writing = self._writing[1] if self._writing is not None else {}
        return all(key[2] > minute for key in (*self._deltas, *writing))

    @property
    def store_failing(self) -> bool:
        """True while the last store write failed (results are kept and retried)."""
        return self._failures_in_row > 0

    @property
    def staged(self) -> int:
        """Results accepted but not yet on disk."""
        return len(self._pending) + (len(self._writing[0]) if self._writing is not None else 0)
