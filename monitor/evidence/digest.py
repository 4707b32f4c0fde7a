"""The daily digest: each local day's raw results hashed and chained to the day before.

A day's digest is the SHA-256 of its raw results' lines exactly as an evidence pack's
``results.csv`` holds them (``pack.result_row`` and ``pack.csv_line``), in the store's
order (start time, then insertion). Its ``chain`` is the SHA-256 of the text

    {previous chain}\\n{date}\\n{results}\\n{results_sha256}\\nformat 2\\n

(format 1 digests, made before results.csv had its location and late columns, hashed
the records without those two columns and leave out the last line), so changing one
row of a digested day, or one digest, breaks every later link. The digests are never
pruned: a digest outlives the raw rows it summarises, and
``sla-monitor verify`` recomputes a pack's days and links from its bytes.

A day is digested once it is over by ``settle_s`` (an hour, or the age up to which events
of real traffic are still accepted), so late rows are rare: a row stored after its day was
digested makes that day mismatch in ``verify``, which is what a digest is for.

Reading a day of raw results is heavy at scale (8.6 M rows a day at 1,000 probes), so the
daemon runs this in a child process (``python -m monitor.evidence.digest``) that opens the
same SQLite file: the probes' event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import sys
from typing import Protocol
from zoneinfo import ZoneInfo

from monitor.evidence.pack import csv_line, result_row
from monitor.results import Result
from monitor.sla.windows import day_bounds
from monitor.store.records import DayDigest

#: The ``previous`` of the first day digested.
GENESIS = "0" * 64
#: How a day's rows are hashed now: whole results.csv records, with the location and
#: late columns (format 1, before those columns, hashed the records without them).
FORMAT = 2
#: Results are read this many seconds at a time (an hour: 3.6 M rows at 1,000 probes/s).
_CHUNK_S = 3600.0


class DigestStore(Protocol):
    """What digests are made from and kept in."""

    async def results(
        self, start: float, end: float, service: str | None = None
    ) -> list[Result]: ...

    async def digests(self) -> list[DayDigest]: ...

    async def write_digest(self, digest: DayDigest) -> bool: ...


def chain_of(
    previous: str, date: str, results: int, results_sha256: str, format: int = FORMAT
) -> str:
    """The link of one day: SHA-256 of the day before's chain and this day's digest (and,
    from format 2, of its format: a day cannot be passed off as hashed the old way)."""
    text = f"{previous}\n{date}\n{results}\n{results_sha256}\n"
    if format >= 2:
        text += f"format {format}\n"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def digest_results(store: DigestStore, start: float, end: float) -> tuple[int, str]:
    """(count, SHA-256) of the raw results that started in [start, end)."""
    digest = hashlib.sha256()
    count = 0
    at = start
    while at < end:
        until = min(at + _CHUNK_S, end)
        for result in await store.results(at, until):
            digest.update(csv_line(result_row(result)).encode("utf-8"))
            count += 1
        at = until
    return count, digest.hexdigest()


async def digest_due_days(
    store: DigestStore, zone: ZoneInfo, now: float, settle_s: float, retention_days: int
) -> list[DayDigest]:
    """Digest every local day over by ``settle_s`` that has no digest yet, oldest first;
    returns the new ones. The first digest is of the first whole day still within raw
    retention (earlier days' rows may already be pruned)."""
    done = await store.digests()
    if done:
        date = dt.date.fromisoformat(done[-1].date) + dt.timedelta(days=1)
        previous = done[-1].chain
    else:
        oldest = now - retention_days * 86400.0
        date = dt.datetime.fromtimestamp(oldest, zone).date() + dt.timedelta(days=1)
        previous = GENESIS
    made: list[DayDigest] = []
    while True:
        first, after = day_bounds(date, zone)  # epoch minutes (23 or 25 hours on DST days)
        start, end = first * 60.0, after * 60.0
        if end + settle_s > now:
            return made
        count, sha = await digest_results(store, start, end)
        chain = chain_of(previous, date.isoformat(), count, sha)
        digest = DayDigest(date.isoformat(), count, sha, previous, chain, now, FORMAT)
        if not await store.write_digest(digest):
            return made  # another process digested it meanwhile: it goes on from there
        made.append(digest)
        previous, date = chain, date + dt.timedelta(days=1)


async def _run(job: dict[str, object]) -> dict[str, object]:
    from monitor.store import store_at

    store = store_at(str(job["store"]))
    await store.open()
    try:
        made = await digest_due_days(
            store,
            ZoneInfo(str(job["timezone"])),
            float(str(job["now"])),
            float(str(job["settle_s"])),
            int(str(job["retention_days"])),
        )
    finally:
        await store.aclose()
    last = made[-1] if made else None
    return {
        "status": "ok",
        "days": [d.date for d in made],
        "head": None if last is None else {"date": last.date, "chain": last.chain},
    }


def main() -> None:
    """The child process: a JSON job on stdin, a JSON answer as the last line of stdout."""
    with contextlib.suppress(OSError):
        os.nice(10)  # below the daemon: its probes' timing comes first
    job = json.loads(sys.stdin.read())
    try:
        answer = asyncio.run(_run(job))
    except Exception as exc:  # reported to the daemon, which logs it and retries
        answer = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
