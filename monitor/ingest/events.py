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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from monitor.config import Config, IngestConfig
from monitor.results import Result
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


def events_json_schema() -> dict[str, Any]:
    """The JSON schema of an event, as docs/events.schema.json publishes it."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sla-monitor event",
        **ExchangeEvent.model_json_schema(),
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
_ARRAY: TypeAdapter[list[ExchangeEvent]] = TypeAdapter(list[ExchangeEvent])


def parse_events(body: bytes) -> Iterator[tuple[int, ExchangeEvent | LineError]]:
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
                yield number, ExchangeEvent.model_validate(item)
            except ValidationError as exc:
                yield number, LineError(number, _describe(exc))
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, ExchangeEvent.model_validate_json(line)
        except ValidationError as exc:
            yield number, LineError(number, _describe(exc))


class EventReader:
    """Checks events against the config and the clock and turns them into results."""

    def __init__(self, config: Config) -> None:
        self.settings: IngestConfig = config.ingest
        #: Per service: its traffic feeds.
        self._feeds = {
            s.name: [p.name for p in s.probes if p.kind == "traffic"] for s in config.services
        }

    def check(
        self, number: int, event: ExchangeEvent | LineError, now: float
    ) -> Result | LineError:
        """The result of one valid event, or why the config or the clock refuse it (a line
        that did not parse keeps its error)."""
        if isinstance(event, LineError):
            return event
        feeds = self._feeds.get(event.service)
        if feeds is None:
            return LineError(number, f"service: unknown service {event.service!r}")
        if not feeds:
            return LineError(number, f"service: {event.service!r} has no traffic feed")
        if event.feed is None:
            if len(feeds) > 1:
                return LineError(number, f"feed: {event.service!r} has several: {feeds}")
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
        if start > now + self.settings.max_ahead:
            return LineError(number, "start: in the future (check the sender's clock)")
        if start < now - self.settings.max_age:
            return LineError(
                number,
                f"start: older than ingest.max_age ({self.settings.max_age:g} s): its minute "
                "is closed (a report correction changes a closed period)",
                "late",
            )
        if not math.isfinite(latency):
            return LineError(number, "duration_s: not a number")
        return Result(
            service=event.service,
            probe=feed,
            kind="traffic",
            started_at=start,
            latency_s=latency,
            outcome=event.outcome,
            detail=event.detail,
            request_id=event.id,
        )


#: Pydantic's error types for an event that is not a JSON object.
_NOT_AN_OBJECT = ("model_type", "dict_type", "model_attributes_type")


def _describe(exc: ValidationError) -> str:
    """Every problem of one event as ``key: message``, joined."""
    parts = []
    for error in exc.errors(include_url=False):
        if error["type"] == "json_invalid":
            return f"not JSON: {error['ctx'].get('error', error['msg'])}"
        if not error["loc"] and error["type"] in (
            "model_type",
            "dict_type",
            "model_attributes_type",
        ):
            return "an event must be a JSON object"
        where = ".".join(str(part) for part in error["loc"]) or "event"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
