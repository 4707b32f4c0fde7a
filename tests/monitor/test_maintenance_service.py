"""The maintenance service: one path for the CLI and the API. A window written by another
process (the CLI's service has no publisher) is announced by the daemon's service when it
reloads, exactly like one written through the API; a restart announces nothing again."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.incidents import StatusEvent
from monitor.maintenance import MaintenanceError, MaintenanceService
from monitor.sla.eligibility import Eligibility
from monitor.store import SqliteStore
from tests.fakes import FakeClock
from tests.support import builders

CONFIG = builders.config(builders.service("core", availability=["availability"]))
HOUR = 3600.0


class Daemon:
    """The daemon's side: its own store connection, eligibility and publisher."""

    def __init__(self, path: Path, clock: FakeClock) -> None:
        self.store = SqliteStore(path, clock=clock)
        self.eligibility = Eligibility(CONFIG)
        self.events: list[StatusEvent] = []
        self.service = MaintenanceService(
            CONFIG, self.store, clock, eligibility=self.eligibility, publish=self.events.append
        )

    async def __aenter__(self) -> Daemon:
        await self.store.open()
        await self.service.reload()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.store.aclose()


async def test_a_cli_window_is_announced_by_the_daemon_like_an_api_one(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "sla.sqlite3"
    now = clock.now()
    async with Daemon(path, clock) as daemon:
        # Through the API: the daemon's own service writes, reloads and announces.
        api = await daemon.service.add("core", now + HOUR, now + 2 * HOUR, "api upgrade", "ops")
        # Through the CLI: another connection, another service, no publisher.
        cli_store = SqliteStore(path, clock=clock)
        await cli_store.open()
        try:
            cli = await MaintenanceService(CONFIG, cli_store, clock).add(
                "core", now + 3 * HOUR, now + 4 * HOUR, "broker  upgrade\n", "alice"
            )
        finally:
            await cli_store.aclose()
        assert [e.subject for e in daemon.events] == [f"maintenance-{api.id}"]
        assert await daemon.service.reload() is True
        assert [(e.kind, e.subject) for e in daemon.events] == [
            ("maintenance_announced", f"maintenance-{api.id}"),
            ("maintenance_announced", f"maintenance-{cli.id}"),
        ]
        announced = daemon.events[1]
        assert announced.description == "broker upgrade"  # the same normalised reason
        assert announced.started_at == now + 3 * HOUR
        # The daemon's eligibility now excludes the CLI's window.
        assert daemon.eligibility.maintenance_at("core", now + 3.5 * HOUR) is not None
        # Changed and cancelled from the CLI side: announced by the daemon too.
        cli_store = SqliteStore(path, clock=clock)
        await cli_store.open()
        try:
            other = MaintenanceService(CONFIG, cli_store, clock)
            await other.change(cli.id, end=now + 5 * HOUR)
            await other.remove(api.id, "alice")
        finally:
            await cli_store.aclose()
        await daemon.service.reload()
        assert [e.kind for e in daemon.events[2:]] == [
            "maintenance_updated",
            "maintenance_cancelled",
        ]
        assert daemon.events[3].service == "core"
    # A restart learns what is there and announces nothing again.
    async with Daemon(path, clock) as restarted:
        assert restarted.events == []
        assert restarted.eligibility.maintenance_at("core", now + 4.5 * HOUR) is not None


@pytest.mark.parametrize(
    ("service", "start_h", "end_h", "reason", "status", "message"),
    [
        ("nope", 1, 2, "x", 400, "unknown service 'nope'"),
        ("core", 2, 1, "x", 400, "end must be after start"),
        ("core", -3, -2, "x", 400, "end must be in the future"),
        ("core", 1, 2, "  \n ", 400, "reason must not be empty"),
        ("core", 1, 2, "x" * 501, 400, "longer than 500"),
    ],
)
async def test_bad_windows_are_refused_and_nothing_is_stored(
    tmp_path: Path, service: str, start_h: int, end_h: int, reason: str, status: int, message: str
) -> None:
    clock = FakeClock()
    now = clock.now()
    async with Daemon(tmp_path / "sla.sqlite3", clock) as daemon:
        with pytest.raises(MaintenanceError, match=message) as raised:
            await daemon.service.add(service, now + start_h * HOUR, now + end_h * HOUR, reason, "x")
        assert raised.value.status == status
        assert await daemon.store.maintenance_records(include_removed=True) == []
        assert daemon.events == []


async def test_config_windows_and_unknown_ids_cannot_be_changed(tmp_path: Path) -> None:
    clock = FakeClock()
    async with Daemon(tmp_path / "sla.sqlite3", clock) as daemon:
        with pytest.raises(MaintenanceError) as from_config:
            await daemon.service.remove("cfg-core-0", "x")
        assert from_config.value.status == 409
        with pytest.raises(MaintenanceError) as unknown:
            await daemon.service.change("42", reason="y")
        assert unknown.value.status == 404
