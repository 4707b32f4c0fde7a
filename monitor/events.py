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

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from monitor.config import Config, IngestConfig
from monitor.results import Result
from probes.base import Outcome

#: An event id: what a client retries with, so the event is counted once.
_ID = r"^[\x21-\x7e]{1,128}$"


class ExchangeEvent(BaseModel):
    """One real exchange (docs/events.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["exchange"]
    id: str = Field(pattern=_ID)
    service: str
    #: The service's traffic feed; needed only when it has several.
    feed: str | None = None
    #: When the exchange began (RFC 3339 with an offset, or UTC epoch seconds).
    start: AwareDatetime
    #: Either how long it took, or when it ended.
    duration_s: float | None = Field(default=None, ge=0, le=86_400)
    end: AwareDatetime | None = None
    outcome: Outcome
    detail: str = Field(default="", max_length=200)
    #: Who sent it and which provider answered (accepted for the senders' convenience;
    #: figures per institution or provider are not computed yet).
    institution: str | None = Field(default=None, max_length=64)
    provider: str | None = Field(default=None, max_length=64)


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


def split_body(body: bytes) -> Iterator[tuple[int, Any | LineError]]:
    """The events of a body: a JSON array, or NDJSON (one JSON object per line, blank
    lines skipped). Yields (line number, parsed value or the line's error).

    Raises BodyError for a body that is neither (e.g. a truncated array).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"the body is not UTF-8 (byte {exc.start})") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise BodyError(
                f"the JSON array is malformed: {exc.msg} at line {exc.lineno}"
            ) from None
        if not isinstance(items, list):
            raise BodyError("the body must be a JSON array or NDJSON")
        yield from enumerate(items, 1)
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, LineError(number, f"not JSON: {exc.msg} at column {exc.colno}")


class EventReader:
    """Checks events against the config and the clock and turns them into results."""

    def __init__(self, config: Config) -> None:
        self.settings: IngestConfig = config.ingest
        #: Per service: its traffic feeds.
        self._feeds = {
            s.name: [p.name for p in s.probes if p.kind == "traffic"] for s in config.services
        }

    def read(self, number: int, value: Any, now: float) -> Result | LineError:
        """The result of one parsed event, or why it is refused."""
        if isinstance(value, LineError):  # the line was not even JSON
            return value
        if not isinstance(value, dict):
            return LineError(number, "an event must be a JSON object")
        try:
            event = ExchangeEvent.model_validate(value)
        except ValidationError as exc:
            return LineError(number, _describe(exc))
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


def _describe(exc: ValidationError) -> str:
    """Every problem of one event as ``key: message``, joined."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "event"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
