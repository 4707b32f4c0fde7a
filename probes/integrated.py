"""Integrated services: several HTTP and MQTT steps timed as one answer.

Every step shares the probe's correlation id: step ``n`` (from 1) sends ``<id>-<n>``, in its
HTTP header or as its MQTT message id, so a target's log can join the steps of one answer.
All steps run within the one probe timeout; each gets what is left of it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

from probes.base import Observation, Outcome
from probes.http import http_exchange
from probes.settings import HttpStep, IntegratedProbeSettings, MqttStep

if TYPE_CHECKING:
    from probes.mqtt import MqttConnection
    from probes.registry import ProbeResources

__all__ = ["IntegratedProbe"]

_NS_PER_S = 1e9


class _StepFailed(Exception):
    """Raised inside the parallel task group so the first failure cancels the other steps."""

    def __init__(self, observation: Observation) -> None:
        super().__init__(observation.detail)
        self.observation = observation


class IntegratedProbe:
    """Runs the steps sequentially or in parallel; the first failing step decides."""

    def __init__(self, settings: IntegratedProbeSettings, resources: ProbeResources) -> None:
        self.settings = settings
        self.resources = resources

    async def observe(self) -> Observation:
        """Run every step within the probe's timeout and report them as one answer."""
        # Resolved before the clock starts: the first call may wait for a connection.
        connections = await self._connections()
        request_id = uuid.uuid4().hex
        start = time.perf_counter_ns()
        deadline_s = time.perf_counter() + self.settings.timeout
        runs = [
            (index, step, f"{request_id}-{index}")
            for index, step in enumerate(self.settings.steps, start=1)
        ]
        failure: Observation | None = None
        if self.settings.mode == "sequential":
            for index, step, step_id in runs:
                try:
                    await self._step(index, step, connections, step_id, deadline_s)
                except _StepFailed as exc:
                    failure = exc.observation
                    break
        else:
            try:
                async with asyncio.TaskGroup() as group:
                    for index, step, step_id in runs:
                        group.create_task(self._step(index, step, connections, step_id, deadline_s))
            except* _StepFailed as failures:
                # In completion order: the first step known to fail decides.
                failure = next(
                    e.observation for e in failures.exceptions if isinstance(e, _StepFailed)
                )
        latency_s = (time.perf_counter_ns() - start) / _NS_PER_S
        if failure is None:
            return Observation(latency_s, Outcome.OK, "", request_id)
        return Observation(latency_s, failure.outcome, failure.detail, request_id)

    async def aclose(self) -> None:
        """Nothing to release: clients belong to ``ProbeResources``."""

    async def _connections(self) -> dict[str, MqttConnection]:
        brokers = {s.broker for s in self.settings.steps if isinstance(s, MqttStep)}
        return {broker: await self.resources.mqtt(broker) for broker in sorted(brokers)}

    async def _step(
        self,
        index: int,
        step: HttpStep | MqttStep,
        connections: dict[str, MqttConnection],
        step_id: str,
        deadline_s: float,
    ) -> None:
        """Run one step with the remaining budget; raise ``_StepFailed`` unless it is OK."""
        label = f"step {step.name!r}" if step.name else f"step {index}"
        remaining_s = deadline_s - time.perf_counter()
        if remaining_s <= 0:
            observation = Observation(0.0, Outcome.TIMEOUT, "no time left", step_id)
        elif isinstance(step, HttpStep):
            session = self.resources.http_session()
            observation = await http_exchange(session, step, step_id, remaining_s)
        else:
            observation = await connections[step.broker].request(
                step.request_topic,
                step.qos,
                step.reply_topic,
                "x" * step.payload_bytes,
                remaining_s,
                request_id=step_id,
            )
        if not observation.ok:
            detail = f"{label}: {observation.detail or observation.outcome.value}"
            raise _StepFailed(
                Observation(observation.latency_s, observation.outcome, detail, step_id)
            )
