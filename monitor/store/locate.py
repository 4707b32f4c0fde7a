"""Which store a location names: a ``postgresql://`` URL is the PostgreSQL store, anything
else the SQLite file at that path (``:memory:`` included). The daemon, the CLI and the
report and digest children all open their store through here, so they agree."""

from __future__ import annotations

from monitor.clock import Clock
from monitor.store.base import Store


def is_database(location: str) -> bool:
    """Whether ``location`` is a PostgreSQL URL rather than a file."""
    return location.startswith(("postgresql://", "postgres://"))


def shown(location: str) -> str:
    """The location as logs and messages show it (a URL without its password)."""
    if is_database(location):
        from monitor.store.postgres import redacted

        return redacted(location)
    return location


def store_at(location: str, *, clock: Clock | None = None) -> Store:
    """The store at ``location``, not yet opened."""
    if is_database(location):
        from monitor.store.postgres import PostgresStore

        return PostgresStore(location, clock=clock)
    from monitor.store.sqlite import SqliteStore

    return SqliteStore(location, clock=clock)
