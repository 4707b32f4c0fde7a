"""The value that flows from the scheduler to the collector: one probe run, stamped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from monitor.sla.counts import Counted
from probes.base import Outcome


@dataclass(frozen=True, slots=True)
class Result:
    """One probe run.

    Attributes:
        service: the service the probe belongs to.
        probe: the probe's name, unique within the service.
        kind: the probe kind (mqtt, http, integrated).
        started_at: UTC epoch seconds when the exchange began; the result counts in the
            minute it started in (the contract times a message from when it was sent).
        latency_s: measured latency (monotonic clock, exchange only).
        outcome: ok or the error class.
        detail: short reason for a failure.
        request_id: correlation id sent to the target.
        location: where the daemon that measured it probes from (``instance.location``);
            empty for traffic events, which no location measured.
        late: stored after the locations had decided its minute (several locations
            only): kept raw, counted in no figure. Set by the store when it reads it back.
    """

    service: str
    probe: str
    kind: str
    started_at: float
    latency_s: float
    outcome: Outcome
    detail: str = ""
    request_id: str = ""
    location: str = ""
    late: bool = False

    @property
    def ok(self) -> bool:
        """True when the exchange succeeded."""
        return self.outcome is Outcome.OK

    def __reduce__(self) -> tuple[type[Result], tuple[object, ...]]:
        # Pickled as its fields (ingest workers send thousands a body): 3x faster to load
        # than the slots' default state dict.
        return (
            Result,
            (
                self.service,
                self.probe,
                self.kind,
                self.started_at,
                self.latency_s,
                self.outcome,
                self.detail,
                self.request_id,
                self.location,
                self.late,
            ),
        )

    @property
    def minute(self) -> int:
        """The epoch minute the result counts in."""
        return int(self.started_at // 60)


@dataclass(frozen=True, slots=True)
class ServiceMinute:
    """What one sealed minute of a service counted as, decided once and persisted, so a
    restart (or a monthly report) reuses the decision instead of guessing it again.

    Attributes:
        service: the service.
        minute: the epoch minute.
        exclusion: why the minute does not count for the service's objectives
            (``outside_hours`` or ``maintenance``), or None.
        states: per availability objective, the minute's code: ``up``, ``down``,
            ``unmonitored``, ``outside_hours``, ``maintenance`` or ``provider_unavailable``.
        faults: the locations whose own path failed, per objective.
    """

    service: str
    minute: int
    exclusion: str | None
    states: dict[str, str]
    #: Per availability objective counted up although some locations saw it down: those
    #: locations (location faults, with several locations only).
    faults: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HourSummary:
    """One complete hour of a service, compacted: what each minute counted as, and the
    sum of its eligible minute rollups per probe. A restart reads ~60x fewer rows.

    Attributes:
        service: the service.
        hour: the epoch hour (epoch minute // 60).
        exclusions: 60 digits, one per minute: the service's eligibility code.
        states: per availability objective, 60 digits of minute codes.
        rollups: per probe, the sum of the hour's eligible minutes (as ``Rollup.to_dict``).
    """

    service: str
    hour: int
    exclusions: str
    states: dict[str, str]
    rollups: dict[str, dict[str, object]]


@dataclass(frozen=True, slots=True)
class DaySummary:
    """One complete UTC day of a service: its 24 hour summaries joined, so a restart reads
    one row where it would read 24. Written once every hour of the day is compacted and
    past the time late results can change it.

    Attributes:
        service: the service.
        day: the epoch day (epoch minute // 1440).
        exclusions: 1,440 digits, one per minute: the service's eligibility code.
        states: per availability objective, 1,440 digits of minute codes.
        rollups: per probe, the sum of the day's eligible minutes (as ``Rollup.to_dict``).
    """

    service: str
    day: int
    exclusions: str
    states: dict[str, str]
    rollups: dict[str, dict[str, object]]


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One event of batch processing: a batch submitted (its volume) or records of it
    processed (one batch may be processed in several events).

    Attributes:
        service: the service the batch was handed to.
        id: the event's id (unique per service: a retry is counted once).
        batch: the batch's id.
        event: ``submitted`` or ``processed``.
        at: UTC epoch seconds when it was submitted, or when these records were processed.
        records: the batch's volume (submitted), or the records this event processed.
        institution: who handed the batch in, when given.
    """

    service: str
    id: str
    batch: str
    event: str
    at: float
    records: int
    institution: str | None = None


@dataclass(slots=True)
class EventBatch:
    """Events of real traffic on their way to the store through the results' queue: the
    collector stores them (once per id) and only then counts them and answers ``done``
    with, per event, whether it was new."""

    events: list[Result]
    #: Events of batch processing, stored beside them.
    batches: list[BatchRecord] = field(default_factory=list)
    #: Per event, what it adds to its rollups, when the intake worked it out (else the
    #: collector does).
    counts: list[Counted] | None = None
    #: Per exchange event then per batch event: whether it was new.
    done: asyncio.Future[list[bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


#: What the results' queue carries: a probe's result, or a batch of events.
QueueItem = Result | EventBatch
