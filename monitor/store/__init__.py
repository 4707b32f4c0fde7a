"""Where history lives: narrow protocols and the records they return (``base``,
``records``), the SQLite store with its schema versions (``sqlite``, ``migrations``) and
the PostgreSQL store for several daemons on one database (``postgres``, ``pg_migrations``;
imported only when a config names a database: psycopg takes ~90 ms to import),
an in-memory one for tests and benchmarks (``memory``), and ``store_at``, which picks
one from a location (``locate``)."""

from monitor.store.base import (
    AlertStore,
    ConfigHistory,
    HistoryReader,
    IncidentStore,
    InstanceRegistry,
    Leases,
    Lifecycle,
    MaintenanceStore,
    MinuteHistory,
    Outbox,
    ResultLog,
    RollupReader,
    RunLog,
    SharedMinute,
    SharedMinutes,
    Store,
)
from monitor.store.locate import is_database, shown, store_at
from monitor.store.memory import MemoryStore
from monitor.store.records import Incident, IncidentUpdate, MaintenanceRecord, RollupKey
from monitor.store.sqlite import BUSY_TIMEOUT_MS, SqliteStore

__all__ = [
    "BUSY_TIMEOUT_MS",
    "AlertStore",
    "ConfigHistory",
    "HistoryReader",
    "Incident",
    "IncidentStore",
    "IncidentUpdate",
    "InstanceRegistry",
    "Leases",
    "Lifecycle",
    "MaintenanceRecord",
    "MaintenanceStore",
    "MemoryStore",
    "MinuteHistory",
    "Outbox",
    "ResultLog",
    "RollupKey",
    "RollupReader",
    "RunLog",
    "SharedMinute",
    "SharedMinutes",
    "SqliteStore",
    "Store",
    "is_database",
    "shown",
    "store_at",
]
