"""The whole simulated network: MQTT responders, HTTP services and their truth log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType

from probes.settings import MqttBrokerSettings
from simulator.batches import BatchServices
from simulator.http_services import HttpServices
from simulator.responder import MqttResponder
from simulator.settings import SimulatorSettings
from simulator.traffic import TrafficGenerator
from simulator.truth import TruthLog

log = logging.getLogger(__name__)


class Simulator:
    """Runs the simulator section of a config; use ``async with Simulator(...) as sim:``."""

    def __init__(
        self,
        settings: SimulatorSettings,
        brokers: Mapping[str, MqttBrokerSettings],
        *,
        keep_records: bool = True,
        drain_timeout_s: float = 5.0,
        ready_timeout_s: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Build every part (nothing runs until ``start``).

        Args:
            settings: the ``simulator:`` section.
            brokers: the config's ``brokers`` by name.
            keep_records: keep every truth record in memory (``truth.records``); turn it
                off for long runs that write ``settings.truth_log``.
            drain_timeout_s: how long ``stop`` lets answers in flight finish.
            ready_timeout_s: how long ``start`` waits for the brokers before going on (the
                responder keeps reconnecting in the background).
            wall_clock: the clock outages are scheduled by and truth is stamped with (an
                accelerated fake in tests that live through minutes in seconds).
        """
        self.settings = settings
        self._ready_timeout_s = ready_timeout_s
        self.truth = TruthLog(settings.truth_log, keep_records=keep_records)
        try:
            self._mqtt = (
                MqttResponder(
                    settings,
                    brokers,
                    self.truth,
                    drain_timeout_s=drain_timeout_s,
                    wall_clock=wall_clock,
                )
                if settings.mqtt
                else None
            )
            self._http = (
                HttpServices(
                    settings, self.truth, drain_timeout_s=drain_timeout_s, wall_clock=wall_clock
                )
                if settings.http is not None
                else None
            )
        except BaseException:
            self.truth.close()  # do not leak the CSV file of a simulator that never ran
            raise
        self.traffic = TrafficGenerator(settings, self.truth, wall_clock)
        self.batches = BatchServices(settings, wall_clock)
        self._traffic_task: asyncio.Task[None] | None = None
        self._batches_task: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._started = False

    @property
    def http_port(self) -> int | None:
        """The HTTP server's bound port (``None`` without an ``http`` section)."""
        return self._http.port if self._http is not None else None

    async def start(self) -> None:
        """Start serving; wait (bounded) until the responder is subscribed on its brokers."""
        if self._started:
            raise RuntimeError("a Simulator runs once")
        self._started = True
        try:
            if self._http is not None:
                await self._http.start()
            if self._mqtt is not None:
                await self._mqtt.start()
                if not await self._mqtt.wait_ready(self._ready_timeout_s):
                    log.warning(
                        "simulator: not every broker answered within %g s; retrying in "
                        "the background",
                        self._ready_timeout_s,
                    )
            self._flusher = asyncio.create_task(self._flush_regularly(), name="truth-flush")
            if self.traffic.streams:
                self._traffic_task = asyncio.create_task(self.traffic.run(), name="traffic")
            if self.batches.services:
                self._batches_task = asyncio.create_task(self.batches.run(), name="batches")
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop taking requests, let answers in flight finish (bounded), close the log."""
        await self.stop_traffic()
        try:
            async with asyncio.TaskGroup() as group:
                if self._http is not None:
                    group.create_task(self._http.stop())
                if self._mqtt is not None:
                    group.create_task(self._mqtt.stop())
        finally:
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher
                self._flusher = None
            self.truth.close()

    async def stop_traffic(self) -> None:
        """Stop drawing real traffic and batches (events not yet sent stay unsent; see
        ``TrafficGenerator.finish`` and ``BatchServices.flush`` to send them)."""
        for task in (self._traffic_task, self._batches_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._traffic_task = self._batches_task = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _flush_regularly(self, interval_s: float = 1.0) -> None:
        """Flush the truth CSV even when requests stop coming, so readers see the tail."""
        while True:
            await asyncio.sleep(interval_s)
            self.truth.flush()


async def run_simulator(
    settings: SimulatorSettings,
    brokers: Mapping[str, MqttBrokerSettings],
    stop: asyncio.Event,
) -> None:
    """Run the simulated network until ``stop`` is set (``sla-monitor simulate``)."""
    # Nobody reads the in-memory records of a standalone run: its truth is the CSV file
    # (settings.truth_log), and memory stays flat however long it runs.
    async with Simulator(settings, brokers, keep_records=False) as sim:
        if sim.http_port is not None:
            log.info("simulator: HTTP services on port %d", sim.http_port)
        await stop.wait()
