"""The scheduler: runs every probe at its interval, on a schedule that does not drift.

Each run is its own task, so a slow probe (or a slow run of the same probe) never delays
another; a global semaphore bounds the runs in flight. Results go to a bounded queue:
when the collector falls behind, runs wait to hand their result over rather than drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.clock import Clock
from monitor.metrics import Metrics
from monitor.results import QueueItem, Result
from probes.base import Observation, Outcome, Probe

log = logging.getLogger(__name__)

#: Extra time a probe gets beyond its own timeout before the scheduler gives up on it.
_GUARD_S = 1.0


@dataclass(frozen=True, slots=True)
class Job:
    """One probe to run: its identity, its schedule and the probe itself."""

    service: str
    name: str
    kind: str
    interval_s: float
    timeout_s: float
    probe: Probe


class Scheduler:
    """Runs jobs until ``stop`` is set, then waits for the runs in flight.

    Args:
        jobs: the probes to run.
        queue: where results go (bounded).
        clock: time source.
        max_concurrency: runs in flight at once across all jobs.
        metrics: lag and skip counters.
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        queue: asyncio.Queue[QueueItem],
        clock: Clock,
        max_concurrency: int,
        metrics: Metrics | None = None,
        location: str = "",
    ) -> None:
        self.jobs = list(jobs)
        #: Stamped on every result: where this daemon probes from.
        self.location = location
        self.queue = queue
        self.clock = clock
        self.metrics = metrics
        self._slots = asyncio.Semaphore(max_concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self.runs_started = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Schedule every job until ``stop`` is set, then drain runs in flight."""
        try:
            async with asyncio.TaskGroup() as group:
                # Without probes (a service measured by its traffic alone) the daemon
                # still runs until told to stop.
                group.create_task(stop.wait(), name="schedule until stopped")
                for job in self.jobs:
                    group.create_task(
                        self._loop(job, stop), name=f"schedule {job.service}/{job.name}"
                    )
        finally:
            await self._wait_in_flight()

    async def _loop(self, job: Job, stop: asyncio.Event) -> None:
        # Spread first runs over the interval (stable per probe) so 1,000 probes with the
        # same interval do not all fire in the same millisecond.
        phase = (zlib.crc32(f"{job.service}/{job.name}".encode()) % 1000) / 1000 * job.interval_s
        start = self.clock.monotonic() + phase
        tick = 0
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                due = start + tick * job.interval_s
                sleeper = asyncio.ensure_future(self.clock.sleep_until(due))
                await asyncio.wait({sleeper, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set():
                    sleeper.cancel()
                    break
                await self._slots.acquire()
                now = self.clock.monotonic()
                lateness = now - due
                if self.metrics is not None:
                    self.metrics.lag.observe(max(lateness, 0.0))
                # Ticks missed while waiting for a slot are skipped, not run in a burst: the
                # schedule stays anchored to `start`, so it never drifts.
                missed = int(lateness // job.interval_s)
                if missed > 0 and self.metrics is not None:
                    self.metrics.skipped.labels(job.service, job.name).inc(missed)
                tick += 1 + max(missed, 0)
                task = asyncio.create_task(self._run_once(job), name=f"probe {job.name}")
                self._in_flight.add(task)
                task.add_done_callback(self._reap)
        finally:
            stopping.cancel()

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("probe run failed unexpectedly", exc_info=task.exception())

    async def _run_once(self, job: Job) -> None:
        self.runs_started += 1
        started_at = self.clock.now()
        try:
            async with asyncio.timeout(job.timeout_s + _GUARD_S):
                observation = await job.probe.observe()
        except TimeoutError:
            observation = Observation(
                job.timeout_s + _GUARD_S, Outcome.TIMEOUT, "probe overran its timeout"
            )
        except Exception as exc:  # a probe bug must not stop the others; record it
            log.exception("probe %s/%s raised", job.service, job.name)
            observation = Observation(0.0, Outcome.ERROR, f"probe raised {type(exc).__name__}")
        await self.queue.put(
            Result(
                service=job.service,
                probe=job.name,
                kind=job.kind,
                started_at=started_at,
                latency_s=observation.latency_s,
                outcome=observation.outcome,
                detail=observation.detail,
                request_id=observation.request_id,
                location=self.location,
            )
        )

    async def _wait_in_flight(self) -> None:
        """Let runs in flight finish (each is bounded by its timeout), then cancel any left."""
        if not self._in_flight:
            return
        bound = max((j.timeout_s for j in self.jobs), default=0.0) + 2 * _GUARD_S
        pending = set(self._in_flight)
        _, still = await asyncio.wait(pending, timeout=bound)
        for task in still:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*still, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        """Probe runs currently in flight."""
        return len(self._in_flight)
