"""The daily digest: days digested once settled, chained from the first one, the 25-hour
day whole; the expected hashes are computed here from the rows with the csv module and
hashlib, not with the digest code."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from zoneinfo import ZoneInfo

from monitor.evidence.digest import GENESIS, digest_due_days
from monitor.results import Result
from monitor.store import MemoryStore
from probes.base import Outcome

ZONE = ZoneInfo("Europe/Brussels")


def _at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


def _expected(results: list[Result]) -> tuple[int, str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for r in results:
        utc = dt.datetime.fromtimestamp(r.started_at, dt.UTC).isoformat()
        writer.writerow([r.service, r.probe, r.kind, repr(r.started_at), utc,
                         repr(r.latency_s), r.outcome.value, r.detail, r.request_id,
                         r.location, int(r.late)])  # fmt: skip
    return len(results), hashlib.sha256(buffer.getvalue().encode()).hexdigest()


def _link(previous: str, date: str, count: int, sha: str) -> str:
    text = f"{previous}\n{date}\n{count}\n{sha}\nformat 2\n"  # format 2: with location, late
    return hashlib.sha256(text.encode()).hexdigest()


async def test_settled_days_are_digested_once_and_chained() -> None:
    store = MemoryStore()
    # The 24th, the 25th (clocks go back: 25 hours, its 02:30 happens twice) and the 26th.
    day24 = [Result("core", "p", "http", _at("2026-10-24T12:00") + k, 0.1, Outcome.OK)
             for k in range(3)]  # fmt: skip
    day25 = [
        Result("core", "p", "http", _at("2026-10-25T00:00"), 0.2, Outcome.OK),
        Result("core", "p", "http", _at("2026-10-25T02:30"), 5.0, Outcome.TIMEOUT, "no, answer"),
        Result("core", "p", "http", _at("2026-10-25T02:30") + 3600, 0.3, Outcome.OK),  # CET
        Result("core", "p", "http", _at("2026-10-25T23:59:59"), 0.4, Outcome.OK, "", "id\n2"),
    ]
    day26 = [Result("core", "p", "http", _at("2026-10-26T08:00"), 0.1, Outcome.OK)]
    day25[0] = Result("core", "p", "http", _at("2026-10-25T00:00"), 0.2, Outcome.OK,
                      location="ghent")  # fmt: skip
    await store.write_batch(day24 + day25 + day26, {})

    # At 00:30 on the 26th with an hour to settle, the 25th is not yet due.
    # Raw results are kept 4 days: the first whole day within them is the 23rd.
    made = await digest_due_days(store, ZONE, _at("2026-10-26T00:30"), 3600.0, 4)
    assert [d.date for d in made] == ["2026-10-23", "2026-10-24"]
    assert made[0].previous == GENESIS
    assert (made[0].results, made[0].results_sha256) == _expected([])
    assert (made[1].results, made[1].results_sha256) == _expected(day24)
    assert made[1].previous == made[0].chain == _link(GENESIS, "2026-10-23", *_expected([]))

    made = await digest_due_days(store, ZONE, _at("2026-10-26T01:00"), 3600.0, 3)
    assert [d.date for d in made] == ["2026-10-25"]
    assert (made[0].results, made[0].results_sha256) == _expected(day25)
    chain = await store.digests()
    assert made[0].previous == chain[1].chain
    assert made[0].chain == _link(chain[1].chain, "2026-10-25", *_expected(day25))
    # Nothing is due twice: a later pass starts after the last digest.
    assert await digest_due_days(store, ZONE, _at("2026-10-26T01:30"), 3600.0, 3) == []
    assert [d.date for d in await store.digests()] == ["2026-10-23", "2026-10-24", "2026-10-25"]
