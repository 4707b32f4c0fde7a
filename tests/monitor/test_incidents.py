"""Incidents: the store contract (every Store), detection from minute codes, user notices,
and the status config."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from monitor.alerting.notifiers import AlertEvent
from monitor.config import Config, parse_config
from monitor.errors import ConfigError
from monitor.incidents import IncidentBook, IncidentDetector, StatusEvent, UserNotices
from monitor.results import ServiceMinute
from monitor.sla.minutes import MinuteCode, ObjectiveKey
from monitor.store import Store
from tests.fakes import FakeClock

T0 = 1_795_000_020.0  # a minute boundary
M0 = int(T0 // 60)


@pytest.fixture
def clock() -> FakeClock:
    """The stores' clock (the shared ``store`` fixture takes it)."""
    return FakeClock(T0)


# --- the store contract ---------------------------------------------------------------------


async def test_incident_timeline_round_trip(store: Store) -> None:
    first = await store.add_incident("svc", "Down", T0, "detected", "availability", "me", "hm")
    assert first.is_open
    assert first.status == "investigating"
    update = await store.add_incident_update(first.id, T0 + 60, "identified", "disk", "ops")
    assert update is not None
    assert update.incident_id == first.id
    closing = await store.resolve_incident(first.id, T0 + 120, "fixed", "ops")
    assert closing is not None
    assert closing.status == "resolved"
    # Resolving twice, or updating a resolved incident, changes nothing.
    assert await store.resolve_incident(first.id, T0 + 180, "again", "ops") is None
    assert await store.add_incident_update(first.id, T0 + 180, "monitoring", "x", "ops") is None
    stored = await store.incident(first.id)
    assert stored is not None
    assert stored.resolved_at == T0 + 120
    assert [u.status for u in stored.updates] == ["investigating", "identified", "resolved"]
    assert [u.message for u in stored.updates] == ["hm", "disk", "fixed"]
    assert stored.objective == "availability"
    assert stored.source == "detected"
    for unknown in ("999", "x", "", "1" * 40):
        assert await store.incident(unknown) is None
        assert await store.resolve_incident(unknown, T0, "m", "a") is None


async def test_incidents_listing(store: Store) -> None:
    old = await store.add_incident("a", "old", T0, "operator", None, "me", "m")
    await store.resolve_incident(old.id, T0 + 60, "done", "me")
    still = await store.add_incident("b", "still", T0 + 10, "operator", None, "me", "m")
    new = await store.add_incident("a", "new", T0 + 20, "operator", None, "me", "m")
    assert [i.id for i in await store.incidents()] == [new.id, still.id, old.id]
    assert [i.id for i in await store.incidents(open_only=True)] == [new.id, still.id]
    assert [i.id for i in await store.incidents(since=T0 + 61)] == [new.id, still.id]
    assert [i.id for i in await store.incidents(limit=1)] == [new.id]


async def test_update_maintenance(store: Store) -> None:
    window = await store.add_maintenance("svc", T0, T0 + 60, "r", T0 - 10, "me")
    version = await store.maintenance_version()
    changed = await store.update_maintenance(window.id, T0 + 60, T0 + 120, "r2", T0)
    assert changed is not None
    assert (changed.start, changed.end, changed.reason) == (
        T0 + 60,
        T0 + 120,
        "r2",
    )
    assert await store.maintenance_version() != version
    assert (await store.list_maintenance())[0] == changed
    with pytest.raises(ValueError, match="end after"):
        await store.update_maintenance(window.id, T0, T0, "r", T0)
    assert await store.remove_maintenance(window.id, "me")
    assert await store.update_maintenance(window.id, T0, T0 + 60, "r", T0) is None
    assert await store.update_maintenance("nope", T0, T0 + 60, "r", T0) is None


async def test_minute_state_counts(store: Store) -> None:
    minutes = [
        ServiceMinute("a", M0 + i, None, {"availability": "down" if i == 3 else "up"})
        for i in range(20)
    ]
    minutes.append(ServiceMinute("b", M0, "maintenance", {"availability": "maintenance"}))
    await store.write_minute_states(minutes)
    rows = await store.minute_state_counts(M0, M0 + 20, 15)
    totals: dict[tuple[str, str], int] = {}
    for service, bucket, objective, state, count in rows:
        assert bucket % 15 == 0
        assert objective == "availability"
        totals[(service, state)] = totals.get((service, state), 0) + count
    assert totals == {("a", "up"): 19, ("a", "down"): 1, ("b", "maintenance"): 1}
    assert await store.minute_state_counts(M0 + 20, M0 + 40, 15) == []


# --- detection ------------------------------------------------------------------------------


def _config(**status: Any) -> Config:
    document = {
        "services": [
            {
                "name": "svc",
                "probes": [{"name": "p", "kind": "http", "url": "http://127.0.0.1:9/"}],
                "objectives": [{"name": "availability", "kind": "availability", "target": 99}],
            }
        ],
        "status": status,
    }
    return parse_config(yaml.safe_dump(document))


class FakeLedger:
    """Minute codes a test decides; UNKNOWN beyond them."""

    def __init__(self) -> None:
        self.codes: dict[int, MinuteCode] = {}

    def codes_between(
        self, key: ObjectiveKey, first: int, last: int, now: float
    ) -> list[MinuteCode]:
        return [self.codes.get(m, MinuteCode.UNKNOWN) for m in range(first, last + 1)]


class Harness:
    def __init__(self, store: Store, **status: Any) -> None:
        self.clock = FakeClock(T0)
        self.ledger = FakeLedger()
        self.events: list[StatusEvent] = []
        self.book = IncidentBook(store, self.clock, publish=self.events.append)
        self.detector = IncidentDetector(_config(**status), self.ledger, self.book)  # type: ignore[arg-type]

    async def live(self, codes: str) -> None:
        """Live one minute per letter: u(p) d(own) m(aintenance) n(o result yet)."""
        letters = {"u": MinuteCode.UP, "d": MinuteCode.DOWN, "m": MinuteCode.MAINTENANCE}
        for letter in codes:
            minute = int(self.clock.now() // 60)
            if letter in letters:
                self.ledger.codes[minute] = letters[letter]
            self.clock.advance(60)
            await self.detector.evaluate(self.clock.now())


async def test_down_minutes_open_and_up_minutes_resolve(store: Store) -> None:
    h = Harness(store, resolve_after_minutes=3)
    await h.live("uuu")
    assert await h.book.find() == []
    await h.live("d")
    [incident] = await h.book.find(open_only=True)
    assert incident.source == "detected"
    assert incident.objective == "availability"
    assert incident.started_at == (M0 + 3) * 60  # the first down minute, not when noticed
    assert h.detector.down_services() == {"svc"}
    await h.live("ddmumu")  # maintenance neither resolves nor restarts the up run
    assert (await h.book.find(open_only=True)) != []
    await h.live("u")
    assert await h.book.find(open_only=True) == []
    resolved = await h.book.get(incident.id)
    assert resolved is not None
    assert resolved.resolved_at == (M0 + 7) * 60
    assert h.detector.down_services() == set()
    assert [e.kind for e in h.events] == ["incident_opened", "incident_resolved"]


async def test_open_after_needs_consecutive_down_minutes(store: Store) -> None:
    h = Harness(store, open_after_minutes=3)
    await h.live("ddudd")
    assert await h.book.find() == []
    await h.live("d")
    [incident] = await h.book.find()
    assert incident.started_at == (M0 + 3) * 60


async def test_minutes_without_result_are_read_again(store: Store) -> None:
    h = Harness(store)
    await h.live("un")  # the second minute has no result yet...
    h.ledger.codes[M0 + 1] = MinuteCode.DOWN  # ...then its late results arrive
    await h.live("u")
    [incident] = await h.book.find()
    assert incident.started_at == (M0 + 1) * 60


async def test_an_operator_may_resolve_a_detected_incident(store: Store) -> None:
    h = Harness(store, resolve_after_minutes=2)
    await h.live("d")
    [incident] = await h.book.find()
    updated = await h.book.post_update(incident.id, "identified", "A router failed.", "ops")
    assert updated is not None
    assert updated.status == "identified"
    await h.book.resolve(incident.id, "Router replaced.", "ops")
    await h.live("d")  # still down: a new incident
    assert len(await h.book.find(open_only=True)) == 1
    assert len(await h.book.find()) == 2


async def test_detection_resumes_after_a_restart(store: Store) -> None:
    h = Harness(store, resolve_after_minutes=1)
    await h.live("d")
    again = Harness(store, resolve_after_minutes=1)
    again.clock = h.clock
    again.ledger = h.ledger
    again.detector._ledger = h.ledger  # type: ignore[assignment]
    again.book._clock = h.clock
    await again.detector.load()
    await again.live("u")
    assert await again.book.find(open_only=True) == []
    assert len(await again.book.find()) == 1  # resolved, not duplicated


async def test_a_daemon_taking_over_follows_the_incidents_another_leader_kept(
    store: Store,
) -> None:
    """This daemon led and opened an incident, then followed while the other leader
    resolved it and opened the next; taking over again, it continues that one."""
    h = Harness(store, resolve_after_minutes=1)
    await h.live("d")
    [mine] = await h.book.find(open_only=True)
    await h.book.resolve(mine.id, "Resolved by the other leader.", "leader-b")
    theirs = await h.book.open(
        "svc", "Down again", "m", "leader-b", source="detected", objective="availability"
    )
    await h.detector.reload()
    await h.live("dd")  # still down: theirs stays the one open incident
    assert [i.id for i in await h.book.find(open_only=True)] == [theirs.id]
    await h.live("u")  # and it is theirs that resolves
    assert await h.book.find(open_only=True) == []
    assert len(await h.book.find()) == 2


async def test_post_update_rejects_unknown_status(store: Store) -> None:
    h = Harness(store)
    incident = await h.book.open("svc", "t", "m", "ops")
    with pytest.raises(ValueError, match="status"):
        await h.book.post_update(incident.id, "resolved", "m", "ops")


# --- user notices and config ----------------------------------------------------------------


def test_notices_go_to_the_subscribers_of_the_service() -> None:
    document = {
        "services": [
            {
                "name": name,
                "probes": [{"name": "p", "kind": "http", "url": "http://127.0.0.1:9/"}],
            }
            for name in ("a", "b")
        ],
        "alerting": {
            "notifiers": {
                "log": {"kind": "log"},
                "hook": {"kind": "webhook", "url": "http://127.0.0.1:9/hook"},
            }
        },
        "status": {
            "subscribers": [
                {"service": "a", "notifier": "hook"},
                {"service": "a", "notifier": "log"},
                {"service": "b", "notifier": "log"},
            ]
        },
    }
    sent: list[tuple[str, AlertEvent]] = []
    notices = UserNotices(parse_config(yaml.safe_dump(document)), lambda n, e: sent.append((n, e)))
    notices.publish(
        StatusEvent("incident_resolved", "a", "incident-4", "Resolved: a down", "ok", T0, T0 + 60)
    )
    assert [name for name, _ in sent] == ["hook", "log"]
    event = sent[0][1]
    assert event.kind == "resolved"
    assert event.ended_at == T0 + 60
    assert event.rule == "status-incident"
    assert event.alert_id == "incident-4"
    assert event.labels["status_event"] == "incident_resolved"
    assert event.to_dict()["summary"] == "Resolved: a down"


@pytest.mark.parametrize(
    ("status", "alerting", "message"),
    [
        ({"subscribers": [{"service": "zz", "notifier": "log"}]}, {}, "unknown service 'zz'"),
        ({"subscribers": [{"service": "svc", "notifier": "zz"}]}, {}, "unknown notifier 'zz'"),
        (
            {"subscribers": [{"service": "svc", "notifier": "am"}]},
            {
                "notifiers": {
                    "log": {"kind": "log"},
                    "am": {"kind": "alertmanager", "url": "http://127.0.0.1:9093"},
                }
            },
            "cannot use an alertmanager notifier",
        ),
        ({"resolve_after_minutes": 0}, {}, "resolve_after_minutes"),
    ],
)
def test_status_config_errors(
    status: dict[str, Any], alerting: dict[str, Any], message: str
) -> None:
    document: dict[str, Any] = {
        "services": [
            {"name": "svc", "probes": [{"name": "p", "kind": "http", "url": "http://127.0.0.1:9/"}]}
        ],
        "status": status,
    }
    if alerting:
        document["alerting"] = alerting
    with pytest.raises(ConfigError, match=message):
        parse_config(yaml.safe_dump(document), "status.yaml")
