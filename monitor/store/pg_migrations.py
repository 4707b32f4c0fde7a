"""Schema versions of the PostgreSQL store: the same versions as the SQLite store's
(``monitor.store.migrations``), one script each in PostgreSQL's dialect.

The version is kept in the ``counters`` table (row ``schema version``), each version is
one transaction with its number (PostgreSQL's DDL is transactional), and several daemons
starting at once on one database take turns through an advisory lock. A database of a
newer version than this code knows is refused. Append, never edit a released script, and
keep the two files' numbering in step.
"""

from __future__ import annotations

import psycopg

from monitor import __version__
from monitor.errors import StoreError

#: The advisory lock taken while migrating ("slam" as a number: any constant will do,
#: this one is unlikely to be another application's).
MIGRATION_LOCK = 0x736C616D

_V1 = """
CREATE TABLE IF NOT EXISTS results (
    id BIGSERIAL PRIMARY KEY,
    service TEXT NOT NULL,
    probe TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    latency_s DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_time ON results (started_at);
CREATE TABLE IF NOT EXISTS rollups (
    service TEXT NOT NULL,
    probe TEXT NOT NULL,
    minute BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    ok BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (minute, service, probe)
);
CREATE TABLE IF NOT EXISTS minute_states (
    service TEXT NOT NULL,
    minute BIGINT NOT NULL,
    exclusion TEXT,
    states TEXT NOT NULL,
    PRIMARY KEY (minute, service)
);
CREATE TABLE IF NOT EXISTS hours (
    service TEXT NOT NULL,
    hour BIGINT NOT NULL,
    exclusions TEXT NOT NULL,
    states TEXT NOT NULL,
    rollups TEXT NOT NULL,
    PRIMARY KEY (hour, service)
);
CREATE TABLE IF NOT EXISTS days (
    service TEXT NOT NULL,
    day BIGINT NOT NULL,
    exclusions TEXT NOT NULL,
    states TEXT NOT NULL,
    rollups TEXT NOT NULL,
    PRIMARY KEY (day, service)
);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    pending_since DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (status, pending_since);
CREATE TABLE IF NOT EXISTS maintenance (
    id BIGSERIAL PRIMARY KEY,
    service TEXT NOT NULL,
    "start" DOUBLE PRECISION NOT NULL,
    "end" DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    announced_at DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    removed_at DOUBLE PRECISION,
    removed_by TEXT
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
-- Whoever writes a window (this code, another daemon, psql), the version moves in the
-- same transaction, and it never repeats.
CREATE OR REPLACE FUNCTION sla_maintenance_version() RETURNS trigger AS $$
BEGIN
    INSERT INTO counters (name, value) VALUES ('maintenance', 1)
        ON CONFLICT (name) DO UPDATE SET value = counters.value + 1;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER maintenance_version AFTER INSERT OR UPDATE OR DELETE ON maintenance
    FOR EACH ROW EXECUTE FUNCTION sla_maintenance_version();
CREATE TABLE IF NOT EXISTS incidents (
    id BIGSERIAL PRIMARY KEY,
    service TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    objective TEXT,
    started_at DOUBLE PRECISION NOT NULL,
    resolved_at DOUBLE PRECISION,
    created_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_by_start ON incidents (started_at);
CREATE TABLE IF NOT EXISTS incident_updates (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    at DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    author TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_updates_by_incident
    ON incident_updates (incident_id, id);
"""

_V2 = """
CREATE TABLE IF NOT EXISTS schema_history (
    version INTEGER PRIMARY KEY,
    applied_at DOUBLE PRECISION NOT NULL,
    sla_monitor TEXT NOT NULL
);
"""

_V3 = "ALTER TABLE maintenance ADD COLUMN correction TEXT;"

_V4 = "ALTER TABLE maintenance ADD COLUMN origin TEXT;"

_V5 = """
CREATE UNIQUE INDEX IF NOT EXISTS results_event_id ON results (service, request_id)
    WHERE kind = 'traffic';
"""

_V6 = """
CREATE TABLE IF NOT EXISTS batch_events (
    service TEXT NOT NULL,
    id TEXT NOT NULL,
    batch TEXT NOT NULL,
    event TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    records BIGINT NOT NULL,
    institution TEXT,
    PRIMARY KEY (service, id)
);
CREATE INDEX IF NOT EXISTS batch_events_by_time ON batch_events (at);
"""

_V7 = """
CREATE TABLE IF NOT EXISTS digests (
    date TEXT PRIMARY KEY,
    results BIGINT NOT NULL,
    results_sha256 TEXT NOT NULL,
    previous TEXT NOT NULL,
    chain TEXT NOT NULL,
    made_at DOUBLE PRECISION NOT NULL
);
"""

_V8 = """
ALTER TABLE results ADD COLUMN location TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS instances (
    name TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL,
    last_result_at DOUBLE PRECISION
);
"""

_V9 = """
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until DOUBLE PRECISION NOT NULL
);
"""

_V10 = """
CREATE TABLE IF NOT EXISTS outbox (
    id BIGSERIAL PRIMARY KEY,
    notifier TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    done_at DOUBLE PRECISION,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE done_at IS NULL;
"""

_V11 = """
CREATE TABLE IF NOT EXISTS config_versions (
    sha256 TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    first_seen_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS config_history (
    id BIGSERIAL PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    instance TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
"""

_V12 = """
ALTER TABLE minute_states ADD COLUMN IF NOT EXISTS faults TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS location_counts (
    minute BIGINT NOT NULL,
    service TEXT NOT NULL,
    probe TEXT NOT NULL,
    location TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    ok BIGINT NOT NULL,
    PRIMARY KEY (minute, service, probe, location)
);
"""

#: Version 13: the report archive the daemons on several hosts share (monitor.report.shelf).
_V13 = """
CREATE TABLE IF NOT EXISTS report_files (
    month TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (month, version, name)
);
"""

#: Version 14: a result stored after the locations decided its minute is marked late
#: (counted in no figure), and a digest says how it hashed its day's rows (format 2:
#: with the location and late columns). Both constant defaults: no table rewrite.
_V14 = """
ALTER TABLE results ADD COLUMN IF NOT EXISTS late BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE digests ADD COLUMN IF NOT EXISTS format INTEGER NOT NULL DEFAULT 1;
"""

#: The script that brings version n-1 to version n, at index n-1.
MIGRATIONS: tuple[str, ...] = (
    *(_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10, _V11, _V12),
    *(_V13, _V14),
)
#: The version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)


async def schema_version(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> int:
    """The database's version (0: no sla-monitor tables yet)."""
    cur = await conn.execute("SELECT to_regclass('counters') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return 0
    cur = await conn.execute("SELECT value FROM counters WHERE name = 'schema version'")
    row = await cur.fetchone()
    return int(str(row[0])) if row else 0


async def migrate(conn: psycopg.AsyncConnection[tuple[object, ...]], where: str, now: float) -> int:
    """Bring the database to ``SCHEMA_VERSION``; returns the version it had.

    Raises:
        StoreError: the database was written by a newer sla-monitor.
    """
    async with conn.transaction():
        # Held to the transaction's end: a second daemon waits, then finds it done.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        found = await schema_version(conn)
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"the store {where} has schema version {found}, newer than this sla-monitor "
                f"{__version__} knows ({SCHEMA_VERSION}): upgrade sla-monitor, or use another"
                " database"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            async with conn.transaction():  # a savepoint: each version whole or not at all
                await conn.execute(MIGRATIONS[version - 1])
                if version >= 2:
                    await conn.execute(
                        "INSERT INTO schema_history (version, applied_at, sla_monitor)"
                        " VALUES (%s, %s, %s) ON CONFLICT (version) DO UPDATE"
                        " SET applied_at = excluded.applied_at, sla_monitor = excluded.sla_monitor",
                        (version, float(now), __version__),
                    )
                await conn.execute(
                    "INSERT INTO counters (name, value) VALUES ('schema version', %s)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (version,),
                )
    return found
