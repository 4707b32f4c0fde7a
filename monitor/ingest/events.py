"""Events of real traffic: parsed and checked line by line, then turned into results.

An ``exchange`` event is one real online message or integrated-service call, reported by
the system that handled it. It becomes a ``Result`` of its service's traffic feed (a
``kind: traffic`` entry among the service's probes), so it is counted by the same
ledger, rollups, metrics, alerts and report as a probe's result, in the minute it started.

One bad line never stops the others: each gets its own error; the good ones go on.
The format is documented in docs/events.md and docs/events.schema.json.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from monitor.config import Config, IngestConfig
from monitor.results import BatchRecord, Result
from monitor.sla.counts import Counted, count_result
from monitor.sla.minutes import ProbeId
from monitor.sla.objectives import probe_thresholds
from probes.base import Outcome

#: An event id: what a client retries with, so the event is counted once.
_ID = r"^[\x21-\x7e]{1,128}$"


class ExchangeEvent(BaseModel):
    """One real online message or integrated-service call, as the system that handled it
    saw it (docs/events.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["exchange"] = Field(description="The kind of event.")
    id: str = Field(
        pattern=_ID,
        description="Unique per service: a sender that retries sends the same id, and the "
        "event is counted once. 1 to 128 printable ASCII characters, no spaces.",
    )
    service: str = Field(description="A service of the config with a traffic feed.")
    feed: str | None = Field(
        default=None,
        description="Its traffic feed (a probe of kind traffic); needed only when the "
        "service has several.",
    )
    start: AwareDatetime = Field(
        description="When the exchange began: RFC 3339 with an offset (or UTC epoch "
        "seconds). The event counts in this minute."
    )
    duration_s: float | None = Field(
        default=None, ge=0, le=86_400, description="How long it took (or give end)."
    )
    end: AwareDatetime | None = Field(
        default=None, description="When it ended (or give duration_s)."
    )
    outcome: Outcome = Field(description="ok, or the error class.")
    detail: str = Field(default="", max_length=200, description="A short reason for a failure.")
    institution: str | None = Field(
        default=None,
        max_length=64,
        description="Who sent it (accepted; figures per institution are not computed yet).",
    )
    provider: str | None = Field(
        default=None,
        max_length=64,
        description="Which provider answered (accepted; not computed per provider yet).",
    )


class BatchEvent(BaseModel):
    """A batch handed in (``submitted``, with its volume) or records of it processed
    (``processed``; a batch may be processed in several events) (docs/events.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["batch"] = Field(description="The kind of event.")
    id: str = Field(pattern=_ID, description="The event's id, unique per service (retries).")
    service: str = Field(description="A service of the config with a batch objective.")
    batch: str = Field(pattern=_ID, description="The batch's id.")
    event: Literal["submitted", "processed"] = Field(description="What happened to it.")
    at: AwareDatetime = Field(description="When: RFC 3339 with an offset (or epoch seconds).")
    records: int = Field(
        ge=0,
        le=10**12,
        description="submitted: the batch's volume; processed: the records this event processed.",
    )
    bytes: int | None = Field(default=None, ge=0, description="The batch's size (accepted).")
    institution: str | None = Field(
        default=None, max_length=64, description="Who handed it in (kept with the event)."
    )


#: One event of any kind, told apart by ``type``.
Event = Annotated[ExchangeEvent | BatchEvent, Field(discriminator="type")]
_EVENT: TypeAdapter[ExchangeEvent | BatchEvent] = TypeAdapter(Event)


def event_schema(ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """The JSON schema of one event (either kind, told apart by ``type``)."""
    return _EVENT.json_schema(ref_template=ref_template)


def events_json_schema() -> dict[str, Any]:
    """The JSON schema of an event, as docs/events.schema.json publishes it."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sla-monitor event",
        **event_schema(),
    }


@dataclass(frozen=True, slots=True)
class LineError:
    """Why one line (1-based, or the array index + 1) was refused."""

    line: int
    error: str
    #: ``invalid`` (fix the event) or ``late`` (its minute is closed: a correction).
    reason: Literal["invalid", "late"] = "invalid"

    def to_dict(self) -> dict[str, Any]:
        """As the API answers it."""
        return {"line": self.line, "reason": self.reason, "error": self.error}


class BodyError(ValueError):
    """The request body as a whole cannot be read (not one line's fault)."""


#: A whole array validated at once, parsed by pydantic-core (the common case: no error).
_ARRAY: TypeAdapter[list[ExchangeEvent | BatchEvent]] = TypeAdapter(list[Event])


def parse_events(body: bytes) -> Iterator[tuple[int, ExchangeEvent | BatchEvent | LineError]]:
    """The events of a body: a JSON array, or NDJSON (one JSON object per line, blank
    lines skipped). Yields (line number or array position, the event or its error).

    Raises BodyError for a body that is neither (e.g. a truncated array).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"the body is not UTF-8 (byte {exc.start})") from None
    if text.lstrip().startswith("["):
        try:
            yield from enumerate(_ARRAY.validate_json(body), 1)
            return
        except ValidationError:
            pass  # one or more bad events: check each on its own, below
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BodyError(f"the JSON array is malformed: {exc.msg} (line {exc.lineno})") from None
        if not isinstance(items, list):
            raise BodyError("the body must be a JSON array or NDJSON")
        for number, item in enumerate(items, 1):
            if not isinstance(item, dict):
                yield number, LineError(number, "an event must be a JSON object")
                continue
            try:
                yield number, _EVENT.validate_python(item)
            except ValidationError as exc:
                yield number, LineError(number, _describe(exc))
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, _EVENT.validate_json(line)
        except ValidationError as exc:
            yield number, LineError(number, _describe(exc))


class TooManyEvents(ValueError):
    """A body with more events than ``ingest.max_events``."""


@dataclass(slots=True)
class Read:
    """A body's events, checked: exchanges as results, batch events (with the line each
    came from), and the errors."""

    events: list[Result] = field(default_factory=list)
    #: Per event, what it adds to its feed's rollups (worked out here: off the loop).
    counts: list[Counted] = field(default_factory=list)
    batches: list[BatchRecord] = field(default_factory=list)
    batch_lines: list[int] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)

    @property
    def good(self) -> int:
        """Events that passed every check."""
        return len(self.events) + len(self.batches)


@dataclass(frozen=True, slots=True)
class ReaderSpec:
    """What checking an event needs of the config: small and picklable, so a worker
    process (``monitor.ingest.pool``) checks exactly as the daemon does."""

    #: Per service: its traffic feeds.
    feeds: dict[str, tuple[str, ...]]
    #: Per traffic feed: the thresholds its events are counted against (the ledger's).
    thresholds: dict[ProbeId, tuple[float, ...]]
    #: The services with a batch objective.
    batch_services: frozenset[str]
    #: The longest batch deadline: a batch event older than it and ``max_age`` is late.
    batch_horizon: float
    max_age: float
    max_ahead: float
    max_events: int

    @classmethod
    def of(cls, config: Config) -> ReaderSpec:
        """The spec of a config."""
        settings: IngestConfig = config.ingest
        feeds = {
            s.name: tuple(p.name for p in s.probes if p.kind == "traffic") for s in config.services
        }
        return cls(
            feeds=feeds,
            thresholds={
                key: value
                for key, value in probe_thresholds(config).items()
                if key[1] in feeds[key[0]]
            },
            batch_services=frozenset(s.name for s in config.services if s.batch_objectives),
            batch_horizon=max(
                (o.deadline for s in config.services for o in s.batch_objectives), default=0.0
            ),
            max_age=settings.max_age,
            max_ahead=settings.max_ahead,
            max_events=settings.max_events,
        )

    @property
    def takes_events(self) -> bool:
        """True when some service has a traffic feed or a batch objective."""
        return bool(self.batch_services) or any(self.feeds.values())


class EventReader:
    """Checks events against the config and the clock and turns them into results.

    Whether a ``processed`` event's batch is known needs the daemon's batch book: the
    intake checks that afterwards (``Intake.read``), so this runs in a worker as well."""

    def __init__(self, spec: ReaderSpec) -> None:
        self.spec = spec

    def read(self, body: bytes, now: float) -> Read:
        """The body's good events (results and batch records), and the others' errors.

        Raises:
            BodyError: the body as a whole cannot be read.
            TooManyEvents: over ``ingest.max_events``.
        """
        limit = self.spec.max_events
        read = Read()
        for count, (number, event) in enumerate(parse_events(body), 1):
            if count > limit:
                raise TooManyEvents(f"more than ingest.max_events ({limit}) events")
            checked = self.check(number, event, now)
            if isinstance(checked, LineError):
                read.errors.append(checked)
            elif isinstance(checked, BatchRecord):
                read.batches.append(checked)
                read.batch_lines.append(number)
            else:
                read.events.append(checked)
                read.counts.append(
                    count_result(
                        checked.ok,
                        checked.outcome.value,
                        checked.latency_s,
                        self.spec.thresholds.get((checked.service, checked.probe), ()),
                    )
                )
        return read

    def check(
        self, number: int, event: ExchangeEvent | BatchEvent | LineError, now: float
    ) -> Result | BatchRecord | LineError:
        """The result (or batch record) of one valid event, or why the config or the clock
        refuse it (a line that did not parse keeps its error)."""
        if isinstance(event, LineError):
            return event
        if isinstance(event, BatchEvent):
            return self._check_batch(number, event, now)
        spec = self.spec
        feeds = spec.feeds.get(event.service)
        if feeds is None:
            return LineError(number, f"service: unknown service {event.service!r}")
        if not feeds:
            return LineError(number, f"service: {event.service!r} has no traffic feed")
        if event.feed is None:
            if len(feeds) > 1:
                return LineError(number, f"feed: {event.service!r} has several: {list(feeds)}")
            feed = feeds[0]
        elif event.feed in feeds:
            feed = event.feed
        else:
            return LineError(number, f"feed: {event.service!r} has no traffic feed {event.feed!r}")
        start = event.start.timestamp()
        if (event.duration_s is None) == (event.end is None):
            return LineError(number, "give either duration_s or end")
        if event.end is not None:
            latency = event.end.timestamp() - start
            if latency < 0:
                return LineError(number, "end: before start")
        else:
            latency = event.duration_s or 0.0
        if start > now + spec.max_ahead:
            return LineError(number, "start: in the future (check the sender's clock)")
        if start < now - spec.max_age:
            return LineError(
                number,
                f"start: older than ingest.max_age ({spec.max_age:g} s): its minute "
                "is closed (a report correction changes a closed period)",
                "late",
            )
        if not math.isfinite(latency):
            return LineError(number, "duration_s: not a number")
        return Result(
            event.service,
            feed,
            "traffic",
            start,
            latency,
            event.outcome,
            event.detail,
            event.id,
        )

    def _check_batch(self, number: int, event: BatchEvent, now: float) -> BatchRecord | LineError:
        spec = self.spec
        if event.service not in spec.feeds:
            return LineError(number, f"service: unknown service {event.service!r}")
        if event.service not in spec.batch_services:
            return LineError(number, f"service: {event.service!r} has no batch objective")
        at = event.at.timestamp()
        if at > now + spec.max_ahead:
            return LineError(number, "at: in the future (check the sender's clock)")
        horizon = spec.batch_horizon + spec.max_age
        if at < now - horizon:
            return LineError(
                number,
                f"at: older than the batch deadline + ingest.max_age ({horizon:g} s): its "
                "day is final (a report correction changes a closed period)",
                "late",
            )
        return BatchRecord(
            event.service, event.id, event.batch, event.event, at, event.records, event.institution
        )


def unknown_batches(read: Read, known_batch: Callable[[str, str], bool]) -> Read:
    """The read with every ``processed`` event of a batch neither known nor submitted in
    the same body moved to the errors (a ``processed`` may come before its
    ``submitted`` in one body)."""
    submitted = {(b.service, b.batch) for b in read.batches if b.event == "submitted"}
    kept = Read(read.events, read.counts, errors=read.errors)
    refused = []
    for record, number in zip(read.batches, read.batch_lines, strict=True):
        key = (record.service, record.batch)
        if record.event == "processed" and not (key in submitted or known_batch(*key)):
            refused.append(
                LineError(
                    number,
                    f"batch: unknown batch {record.batch!r}: send its submitted event first "
                    "(or in the same request)",
                )
            )
        else:
            kept.batches.append(record)
            kept.batch_lines.append(number)
    if refused:
        kept.errors = sorted([*read.errors, *refused], key=lambda e: e.line)
    return kept


#: Pydantic's error types for an event that is not a JSON object.
_NOT_AN_OBJECT = ("model_type", "dict_type", "model_attributes_type")


def _describe(exc: ValidationError) -> str:
    """Every problem of one event as ``key: message``, joined."""
    parts = []
    for error in exc.errors(include_url=False):
        if error["type"] == "json_invalid":
            return f"not JSON: {error['ctx'].get('error', error['msg'])}"
        if not error["loc"] and error["type"] in _NOT_AN_OBJECT:
            return "an event must be a JSON object"
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            return "type: must be exchange or batch"
        loc = error["loc"]
        if loc and loc[0] in ("exchange", "batch"):  # the union's tag, not a key
            loc = loc[1:]
        where = ".".join(str(part) for part in loc) or "event"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
