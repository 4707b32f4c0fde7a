"""Schema versions of the SQLite store, kept in ``PRAGMA user_version``.

Each version is a script that brings the previous version to it, run in one transaction
with the new version number, so a store is always at exactly one version. A store written
before versions existed has ``user_version`` 0 and the tables of version 1: version 1's
``IF NOT EXISTS`` script adopts it as it is. A store of a newer version than this code
knows is refused rather than written with an old idea of its schema.

To change the schema: append a script to ``MIGRATIONS`` (never edit a released one) and
keep a store of the previous version under tests/testdata/stores.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from monitor import __version__
from monitor.errors import StoreError

_V1_TABLES = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    probe TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at REAL NOT NULL,
    latency_s REAL NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_time ON results (started_at);
CREATE TABLE IF NOT EXISTS rollups (
    service TEXT NOT NULL,
    probe TEXT NOT NULL,
    minute INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (minute, service, probe)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minute_states (
    service TEXT NOT NULL,
    minute INTEGER NOT NULL,
    exclusion TEXT,
    states TEXT NOT NULL,
    PRIMARY KEY (minute, service)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hours (
    service TEXT NOT NULL,
    hour INTEGER NOT NULL,
    exclusions TEXT NOT NULL,
    states TEXT NOT NULL,
    rollups TEXT NOT NULL,
    PRIMARY KEY (hour, service)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS days (
    service TEXT NOT NULL,
    day INTEGER NOT NULL,
    exclusions TEXT NOT NULL,
    states TEXT NOT NULL,
    rollups TEXT NOT NULL,
    PRIMARY KEY (day, service)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    pending_since REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (status, pending_since);
CREATE TABLE IF NOT EXISTS maintenance (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    "start" REAL NOT NULL,
    "end" REAL NOT NULL,
    reason TEXT NOT NULL,
    announced_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    removed_at REAL,
    removed_by TEXT
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

# Triggers keep the maintenance version in the same transaction as the change, whoever
# writes (this code, another process, an operator with the sqlite3 shell), and it never
# repeats, even if rows were one day pruned.
_MAINTENANCE_TRIGGERS = "".join(
    f"""
CREATE TRIGGER IF NOT EXISTS maintenance_version_{event.lower()} AFTER {event} ON maintenance
BEGIN
    INSERT INTO counters (name, value) VALUES ('maintenance', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;"""
    for event in ("INSERT", "UPDATE", "DELETE")
)

# Incidents shown to users (monitor.incidents); updates form each incident's timeline.
_V1_INCIDENTS = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    objective TEXT,
    started_at REAL NOT NULL,
    resolved_at REAL,
    created_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_by_start ON incidents (started_at);
CREATE TABLE IF NOT EXISTS incident_updates (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    at REAL NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    author TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_updates_by_incident ON incident_updates (incident_id, id);
"""


#: Version 2: a history of the schema itself (when each version was applied, by which
#: sla-monitor), so an auditor can tell which code wrote a store and since when.
_V2_HISTORY = """
CREATE TABLE IF NOT EXISTS schema_history (
    version INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL,
    sla_monitor TEXT NOT NULL
);
"""

#: Version 3: an announcement dated before the window was recorded is a correction, and
#: says why (the report shows it as such; ``created_at`` is when it was really recorded).
_V3_CORRECTION = """
ALTER TABLE maintenance ADD COLUMN correction TEXT;
"""

#: Version 4: where a window was announced from, as authenticated, not as claimed: the
#: API and its token's name, or the CLI and the local user and host.
_V4_ORIGIN = """
ALTER TABLE maintenance ADD COLUMN origin TEXT;
"""

#: Version 5: events of real traffic are raw results of kind ``traffic`` whose
#: ``request_id`` is the event's id, once per service: a client's retry is found here.
_V5_EVENT_IDS = """
CREATE UNIQUE INDEX IF NOT EXISTS results_event_id ON results (service, request_id)
    WHERE kind = 'traffic';
"""

#: Version 6: events of batch processing (a batch submitted, records of it processed),
#: once per service and event id.
_V6_BATCH_EVENTS = """
CREATE TABLE IF NOT EXISTS batch_events (
    service TEXT NOT NULL,
    id TEXT NOT NULL,
    batch TEXT NOT NULL,
    event TEXT NOT NULL,
    at REAL NOT NULL,
    records INTEGER NOT NULL,
    institution TEXT,
    PRIMARY KEY (service, id)
);
CREATE INDEX IF NOT EXISTS batch_events_by_time ON batch_events (at);
"""

#: Version 7: each local day's raw results digested and chained to the day before
#: (``monitor.evidence.digest``); never pruned: a digest outlives the rows it summarises.
_V7_DIGESTS = """
CREATE TABLE IF NOT EXISTS digests (
    date TEXT PRIMARY KEY,
    results INTEGER NOT NULL,
    results_sha256 TEXT NOT NULL,
    previous TEXT NOT NULL,
    chain TEXT NOT NULL,
    made_at REAL NOT NULL
) WITHOUT ROWID;
"""

#: Version 8: several daemons on one store: where each result was measured from, and
#: the daemons themselves (``monitor.cluster``: who they are, when they were last seen).
_V8_INSTANCES = """
ALTER TABLE results ADD COLUMN location TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS instances (
    name TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at REAL NOT NULL,
    seen_at REAL NOT NULL,
    last_result_at REAL
) WITHOUT ROWID;
"""

#: Version 9: leases (the leader among the daemons of one store, ``monitor.leader``).
_V9_LEASES = """
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until REAL NOT NULL
) WITHOUT ROWID;
"""

#: Version 10: the notifications outbox: each notice stored before it is sent and marked
#: once delivered, so a daemon or leader that dies in between leaves it to the next one.
_V10_OUTBOX = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    notifier TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    done_at REAL,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE done_at IS NULL;
"""

#: Version 11: the config files the daemons ran with, each text once by its SHA-256, and
#: when each daemon started with which (an evidence pack shows the month's changes).
_V11_CONFIGS = """
CREATE TABLE IF NOT EXISTS config_versions (
    sha256 TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    first_seen_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS config_history (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    instance TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
"""

#: Version 12: several locations deciding minutes together (a PostgreSQL store shares
#: them; the tables are the same everywhere): the locations at fault in a decided minute,
#: and each location's attempts and successes per probe and minute.
_V12_LOCATIONS = """
ALTER TABLE minute_states ADD COLUMN faults TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS location_counts (
    minute INTEGER NOT NULL,
    service TEXT NOT NULL,
    probe TEXT NOT NULL,
    location TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    PRIMARY KEY (minute, service, probe, location)
) WITHOUT ROWID;
"""

#: Version 13: the report archive shared by daemons on several hosts, which only a
#: PostgreSQL store has (monitor.report.shelf); a SQLite file's daemon is alone and keeps
#: its archive in its folder. Nothing to do here: the number keeps the versions in step.
_V13_SHARED_ARCHIVE = """
SELECT 1;
"""

#: Version 14: evidence of several locations. A raw result is marked ``late`` when it was
#: stored after the locations had decided its minute (counted in no figure; only a shared
#: PostgreSQL store marks any), and a digest says how it hashed its day's rows: format 1
#: without the location and late columns, format 2 with them (evidence.digest).
_V14_LATE = """
ALTER TABLE results ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
"""

#: The script that brings version n-1 to version n, at index n-1.
MIGRATIONS: tuple[str, ...] = (
    _V1_TABLES + _MAINTENANCE_TRIGGERS + _V1_INCIDENTS,
    _V2_HISTORY,
    _V3_CORRECTION,
    _V4_ORIGIN,
    _V5_EVENT_IDS,
    _V6_BATCH_EVENTS,
    _V7_DIGESTS,
    _V8_INSTANCES,
    _V9_LEASES,
    _V10_OUTBOX,
    _V11_CONFIGS,
    _V12_LOCATIONS,
    _V13_SHARED_ARCHIVE,
    _V14_LATE,
)
#: The version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)


async def schema_version(db: aiosqlite.Connection) -> int:
    """The store's ``user_version`` (0: new, or written before versions existed)."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def migrate(db: aiosqlite.Connection, path: Path, now: float) -> int:
    """Bring the store to ``SCHEMA_VERSION``; returns the version it had.

    Raises:
        StoreError: the store was written by a newer sla-monitor.
    """
    found = await schema_version(db)
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"the store {path} has schema version {found}, newer than this sla-monitor "
            f"{__version__} knows ({SCHEMA_VERSION}): upgrade sla-monitor, or use another file"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        # executescript commits what is pending first; BEGIN ... COMMIT keeps the script
        # and its version number one transaction (user_version is in the file header).
        history = ""
        if version >= 2:
            history = (
                "INSERT OR REPLACE INTO schema_history (version, applied_at, sla_monitor)"
                f" VALUES ({version}, {float(now)!r}, '{__version__}');"
            )
        try:
            await db.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[version - 1]}\n{history}\n"
                f"PRAGMA user_version = {version};\nCOMMIT;"
            )
        except aiosqlite.Error:
            if db.in_transaction:
                await db.rollback()  # the version stays where it was, with its tables
            raise
    return found
