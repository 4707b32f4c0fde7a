"""The write-ahead spool: results the store could not take, kept on disk in arrival order
and written back in bounded batches once it can.

The collector spills here when the store has failed for longer than its memory allows,
and at shutdown whatever it could not write; the daemon replays the spool before it loads
its windows. A result is lost only when the spool itself cannot be written (full, or its
disk failing), and then the count is logged, exported and makes ``run`` exit non-zero.

Format: one JSON array per line (service, probe, kind, started_at, latency_s, outcome,
detail, request_id), fsynced per append. Replay records how far it got in ``<spool>.done``
(renamed into place after each committed batch), so a replay interrupted by a crash
resumes where it stopped and writes nothing twice.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from monitor.errors import StoreError
from monitor.results import Result
from monitor.sla.counts import Rollup, count_result
from monitor.sla.minutes import ProbeId
from monitor.store.base import ResultLog
from monitor.store.records import RollupKey
from probes.base import Outcome

log = logging.getLogger(__name__)


class SpoolFull(OSError):
    """Appending would make the spool larger than its configured bound."""


def _line(result: Result) -> bytes:
    fields = [
        result.service,
        result.probe,
        result.kind,
        result.started_at,
        result.latency_s,
        result.outcome.value,
        result.detail,
        result.request_id,
    ]
    if result.location:  # after the others: a spool written before locations still reads
        fields.append(result.location)
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def _result(line: bytes) -> Result:
    service, probe, kind, started_at, latency_s, outcome, detail, request_id, *rest = json.loads(
        line
    )
    location = str(rest[0]) if rest else ""
    return Result(
        service, probe, kind, started_at, latency_s, Outcome(outcome), detail, request_id, location
    )


class Spool:
    """An append-only file of results, bounded by ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._done = path.with_name(path.name + ".done")

    def _offset(self) -> int:
        try:
            return int(self._done.read_text(encoding="ascii"))
        except (FileNotFoundError, ValueError):
            return 0

    def size(self) -> int:
        """Bytes in the spool file (0 when there is none)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def pending(self) -> int:
        """Results in the spool not yet written back."""
        if not self.path.exists():
            return 0
        with self.path.open("rb") as spool:
            spool.seek(self._offset())
            return sum(1 for _ in spool)

    def append(self, results: Sequence[Result]) -> None:
        """Append ``results`` durably (fsync); SpoolFull or OSError when it cannot, and
        then nothing of them is in the spool."""
        if not results:
            return
        data = b"".join(_line(r) for r in results)
        before = self.size()
        if before + len(data) > self.max_bytes:
            raise SpoolFull(f"the spool {self.path} would exceed {self.max_bytes} bytes")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as spool:
            try:
                spool.write(data)
                spool.flush()
                os.fsync(spool.fileno())
            except OSError:
                spool.truncate(before)  # all or nothing: no half line to replay
                raise

    def batches(self, size: int) -> Iterator[tuple[list[Result], int]]:
        """The unreplayed results in order, ``size`` at a time, each with the file offset
        just after it (what ``mark`` takes once the batch is committed)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as spool:
            spool.seek(self._offset())
            batch: list[Result] = []
            for line in iter(spool.readline, b""):
                if not line.endswith(b"\n"):
                    log.warning("spool %s ends in a partial line: ignored", self.path)
                    break
                batch.append(_result(line))
                if len(batch) >= size:
                    yield batch, spool.tell()
                    batch = []
            if batch:
                yield batch, spool.tell()

    def mark(self, offset: int) -> None:
        """Record that everything before ``offset`` is in the store."""
        temporary = self._done.with_name(self._done.name + ".tmp")
        temporary.write_text(str(offset), encoding="ascii")
        os.replace(temporary, self._done)

    def clear(self) -> None:
        """Remove the spool once every result in it is in the store."""
        self.path.unlink(missing_ok=True)
        self._done.unlink(missing_ok=True)


def rollup_deltas(
    results: Sequence[Result],
    thresholds: Mapping[ProbeId, tuple[float, ...]],
    series: Mapping[tuple[str, str, str], str] | None = None,
) -> dict[RollupKey, Rollup]:
    """The rollup deltas of ``results``, counted as the collector counts them: in their
    probe's series, and in their location's own (``location_series``) where one is."""
    deltas: dict[RollupKey, Rollup] = {}
    for result in results:
        names = [result.probe]
        if series:
            own = series.get((result.service, result.probe, result.location))
            if own is not None:
                names.append(own)
        for name in names:
            counted = count_result(
                result.ok,
                result.outcome.value,
                result.latency_s,
                thresholds.get((result.service, name), ()),
            )
            key = (result.service, name, result.minute)
            delta = deltas.get(key)
            if delta is None:
                delta = deltas[key] = Rollup()
            delta.add_counted(counted)
    return deltas


async def replay(
    spool: Spool,
    store: ResultLog,
    thresholds: Mapping[ProbeId, tuple[float, ...]],
    batch_size: int,
    series: Mapping[tuple[str, str, str], str] | None = None,
) -> int:
    """Write the spool back into ``store`` in batches of ``batch_size``; returns how many
    results it wrote. StoreError leaves the rest for the next replay."""
    written = 0
    for batch, offset in spool.batches(batch_size):
        await store.write_batch(batch, rollup_deltas(batch, thresholds, series))
        spool.mark(offset)
        written += len(batch)
    if spool.path.exists():
        spool.clear()
    if written:
        log.warning("wrote %d spooled results back into the store", written)
    return written


__all__ = ["Spool", "SpoolFull", "StoreError", "replay", "rollup_deltas"]
