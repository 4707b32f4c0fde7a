"""The simulator's ground truth: what each endpoint really did with each request.

The monitor's measured latencies and outcomes are checked against these records. The log
keeps records in memory (for in-process tests) and can append them to a CSV file with the
columns of ``TruthRecord``, in that order, after a header line.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from simulator.profiles import Action

if TYPE_CHECKING:
    import _csv

log = logging.getLogger(__name__)

#: How the request reached the simulator (``traffic``: a real exchange it reported as an
#: event, never sent through a transport).
Kind = Literal["mqtt", "http", "traffic"]


@dataclass(frozen=True, slots=True)
class TruthRecord:
    """One request as the simulator served it.

    Attributes:
        request_id: the correlation id (MQTT ``id``, or the HTTP ``X-Request-Id``; for
            traffic, the event's id).
        endpoint: the request topic or the HTTP path (traffic: ``traffic/SERVICE``).
        kind: ``mqtt``, ``http`` or ``traffic``.
        received_at: UTC epoch seconds (``time.time()``) when the request arrived.
        handled_s: true server-side handling time, from receipt to the moment the reply was
            handed to the transport (``time.perf_counter_ns()``); 0 for ``drop``.
        action: ``ok``, ``error`` or ``drop`` (no answer sent).
    """

    request_id: str
    endpoint: str
    kind: Kind
    received_at: float
    handled_s: float
    action: Action


#: The CSV header, the field names of ``TruthRecord``.
CSV_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TruthRecord))


class TruthLog:
    """Collects ``TruthRecord``s in memory and, when given a path, in a CSV file."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        keep_records: bool = True,
        flush_interval_s: float = 1.0,
    ) -> None:
        """Open the log.

        Args:
            path: CSV file to append to (created with a header when new or empty).
            keep_records: keep every record in ``records``; a long-running simulator with a
                CSV file turns this off so memory does not grow without bound.
            flush_interval_s: the CSV file is flushed when a record arrives this long after
                the last flush (one flush per line costs a syscall per request), by
                ``flush()``, and on ``close()``.
        """
        self.path = Path(path) if path is not None else None
        self.records: list[TruthRecord] = []
        self._keep = keep_records
        self._flush_interval_s = flush_interval_s
        self._last_flush = time.monotonic()
        self._file: IO[str] | None = None
        self._csv: _csv.Writer | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", newline="", encoding="utf-8")
            self._csv = csv.writer(self._file)
            if self._file.tell() == 0:
                self._csv.writerow(CSV_COLUMNS)

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called on a log with a file."""
        return self.path is not None and self._file is None

    def record(
        self,
        request_id: str,
        endpoint: str,
        kind: Kind,
        received_at: float,
        handled_s: float,
        action: Action,
    ) -> TruthRecord:
        """Add one served request and return its record."""
        entry = TruthRecord(request_id, endpoint, kind, received_at, handled_s, action)
        if self._keep:
            self.records.append(entry)
        if self._csv is not None:
            self._csv.writerow(astuple(entry))
            if time.monotonic() - self._last_flush >= self._flush_interval_s:
                self.flush()
        return entry

    def flush(self) -> None:
        """Push buffered CSV lines to the file."""
        self._last_flush = time.monotonic()
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the CSV file; later records stay in memory only."""
        if self._file is not None:
            file, self._file, self._csv = self._file, None, None
            file.flush()
            file.close()
