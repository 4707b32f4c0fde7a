"""Which PostgreSQL driver the store uses: psycopg 3 or asyncpg, measured on the store's
own write (raw results in batches of 1,000, each batch one transaction).

Both drivers write the same rows into the same table on one server, alternating, so the
machine's noise falls on both; the medians of the runs are compared.

    .venv/bin/python bench/pg_drivers.py --url postgresql://postgres@127.0.0.1:5432/postgres

A throwaway database is made and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import psycopg

TABLE = """
CREATE TABLE results (
    id BIGSERIAL PRIMARY KEY, service TEXT NOT NULL, probe TEXT NOT NULL,
    kind TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL,
    latency_s DOUBLE PRECISION NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL,
    request_id TEXT NOT NULL);
CREATE INDEX results_by_time ON results (started_at);
"""
COLUMNS = ("service", "probe", "kind", "started_at", "latency_s", "outcome", "detail", "request_id")
Row = tuple[str, str, str, float, float, str, str, str]


def rows(n: int) -> list[Row]:
    """Rows like a probe's results: 100 services of 10 probes, a few failures."""
    t0 = 1_767_225_600.0
    return [
        (
            f"svc-{i % 100:03d}",
            f"p{i % 10}",
            "http",
            t0 + i * 0.01,
            0.05 + (i % 97) / 1000,
            "ok" if i % 50 else "timeout",
            "" if i % 50 else "no reply in 5 s",
            "",
        )
        for i in range(n)
    ]


async def asyncpg_copy(url: str, data: list[Row], batch: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        for at in range(0, len(data), batch):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "results", records=data[at : at + batch], columns=COLUMNS
                )
    finally:
        await conn.close()


async def asyncpg_executemany(url: str, data: list[Row], batch: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        for at in range(0, len(data), batch):
            async with conn.transaction():
                await conn.executemany(
                    f"INSERT INTO results ({', '.join(COLUMNS)})"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    data[at : at + batch],
                )
    finally:
        await conn.close()


async def psycopg_copy(url: str, data: list[Row], batch: int) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for at in range(0, len(data), batch):
            async with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f"COPY results ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(["text"] * 3 + ["float8"] * 2 + ["text"] * 3)
                for row in data[at : at + batch]:
                    await copy.write_row(row)


async def psycopg_executemany(url: str, data: list[Row], batch: int) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for at in range(0, len(data), batch):
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(
                    f"INSERT INTO results ({', '.join(COLUMNS)})"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    data[at : at + batch],
                )


WAYS: dict[str, Callable[[str, list[Row], int], Awaitable[None]]] = {
    "asyncpg copy": asyncpg_copy,
    "psycopg copy": psycopg_copy,
    "asyncpg executemany": asyncpg_executemany,
    "psycopg executemany (pipeline)": psycopg_executemany,
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.url)
    await admin.execute(f"CREATE DATABASE {name}")
    url = args.url.rsplit("/", 1)[0] + f"/{name}"
    data = rows(args.rows)
    timings: dict[str, list[float]] = {way: [] for way in WAYS}
    try:
        for _ in range(args.runs):
            for way, run in WAYS.items():
                conn = await asyncpg.connect(url)
                await conn.execute("DROP TABLE IF EXISTS results")
                await conn.execute(TABLE)
                await conn.close()
                start = time.perf_counter()
                await run(url, data, args.batch)
                timings[way].append(time.perf_counter() - start)
        print(f"{args.rows:,} rows in transactions of {args.batch:,}, {args.runs} runs")
        for way, seconds in timings.items():
            rates = sorted(args.rows / s for s in seconds)
            print(
                f"  {way:32s} median {statistics.median(rates):>9,.0f} rows/s"
                f"  ({rates[0]:,.0f}-{rates[-1]:,.0f})"
            )
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
