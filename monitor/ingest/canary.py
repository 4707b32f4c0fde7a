"""The synthetic batch probe: for a batch objective whose system reports no events, a
small canary batch is handed in every ``canary.interval`` and its status polled until it
is done (or its deadline has passed); each step becomes a batch event, through the same
intake as events posted by real systems, so the canaries' days are judged like real ones.

A canary that could not be handed in (no answer, an error status) is not a batch: it is
logged and counted in ``sla_batch_canary_errors_total``, the service's batch intake being
down is what the availability objectives measure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

import aiohttp

from monitor.clock import Clock
from monitor.config import BatchCanary, BatchObjective, Config
from monitor.errors import StoreError
from monitor.ingest.intake import Store
from monitor.metrics import Metrics
from monitor.results import BatchRecord

log = logging.getLogger(__name__)


class CanaryRunner:
    """The canaries of one batch objective."""

    def __init__(
        self,
        service: str,
        objective: BatchObjective,
        clock: Clock,
        store: Store,
        metrics: Metrics,
    ) -> None:
        assert objective.canary is not None
        self.service = service
        self.objective = objective
        self.canary: BatchCanary = objective.canary
        self.clock = clock
        self._store = store
        self._metrics = metrics
        self._headers = {h: os.environ.get(v, "") for h, v in self.canary.headers_env.items()}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Hand in a canary every interval until cancelled (each followed on its own)."""
        timeout = aiohttp.ClientTimeout(total=self.canary.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                while True:
                    started = self.clock.monotonic()
                    task = asyncio.create_task(self._one(session))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                    await self.clock.sleep_until(started + self.canary.interval)
            finally:
                for task in list(self._tasks):
                    task.cancel()

    async def _one(self, session: aiohttp.ClientSession) -> None:
        canary_id = f"canary-{uuid.uuid4().hex[:16]}"
        at = self.clock.now()
        body = self.canary.body.replace("{id}", canary_id)
        url = self.canary.submit_url.replace("{id}", canary_id)
        try:
            async with session.request(
                self.canary.method, url, data=body, headers=self._headers
            ) as answer:
                if answer.status >= 300:
                    raise aiohttp.ClientResponseError(
                        answer.request_info, (), status=answer.status, message="not accepted"
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._metrics.canary_errors.labels(self.service, self.objective.name).inc()
            log.warning("batch canary of %s not handed in: %s", self.service, exc)
            return
        await self._record(canary_id, "submitted", at)
        deadline = at + self.objective.deadline
        status_url = self.canary.status_url.replace("{id}", canary_id)
        while self.clock.now() < deadline:
            await self.clock.sleep_until(self.clock.monotonic() + self.canary.poll_every)
            if await self._done(session, status_url):
                await self._record(canary_id, "processed", self.clock.now())
                return
        log.warning("batch canary %s of %s not done within its deadline", canary_id, self.service)

    async def _done(self, session: aiohttp.ClientSession, url: str) -> bool:
        try:
            async with session.get(url, headers=self._headers) as answer:
                if answer.status not in self.canary.done_status:
                    return False
                if self.canary.done_body is None:
                    return True
                return self.canary.done_body in await answer.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("batch canary status unknown (%s): polled again", exc)
            return False

    async def _record(self, canary_id: str, event: str, at: float) -> None:
        """One batch event, stored through the intake (retried while the store fails)."""
        record = BatchRecord(
            self.service, f"{canary_id}-{event}", canary_id, event, at, self.canary.records
        )
        delay = 0.5
        while True:
            try:
                await self._store([], [record], [])
                return
            except (StoreError, TimeoutError) as exc:
                log.error("batch canary event not stored (retry in %.1f s): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)


def canary_runners(
    config: Config, clock: Clock, store: Store, metrics: Metrics
) -> list[CanaryRunner]:
    """One runner per batch objective with a canary."""
    return [
        CanaryRunner(service.name, objective, clock, store, metrics)
        for service in config.services
        for objective in service.batch_objectives
        if objective.canary is not None
    ]
