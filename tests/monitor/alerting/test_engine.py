"""Built-in alerting driven by a fake clock and a synthetic result stream.

Each expected minute is computed in the test from the burn-rate definition, not read
from the code under test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from monitor.alerting.engine import Alerter
from monitor.alerting.notifiers import AlertEvent
from monitor.collector import Collector
from monitor.config import Config
from monitor.ledger.windows import Ledger
from monitor.metrics import Metrics
from monitor.results import BatchRecord, Result
from monitor.sla.batch import BatchBook
from monitor.sla.eligibility import MaintenanceWindow
from monitor.sla.figures import all_figures, batch_figures
from monitor.store import MemoryStore
from probes.base import Outcome
from tests.support import builders

# 2026-11-10 00:00 UTC: the month is well under way; every minute is eligible (24x7).
T0 = dt.datetime(2026, 11, 10, tzinfo=dt.UTC).timestamp()
GOOD_MINUTES = 60
ERROR_SHARE = 0.3  # 30 % of answers fail: burn rate 30 against a 99 % target
PER_MINUTE = 60


def _config(**alerting: Any) -> Config:
    return builders.config(
        builders.service("svc", latency={"fast": 1}),
        alerting={
            "notifiers": {"oncall": {"kind": "log"}, "manager": {"kind": "log"}},
            "escalation": {
                "page": [
                    {"notifiers": ["oncall"]},
                    {"notifiers": ["manager"], "after": "10m"},
                ],
                "ticket": [{"notifiers": ["oncall"]}],
            },
            "repeat_interval": "1h",
            "month_forecast": {"enabled": False},
            "month_breach": {"enabled": False},
            **alerting,
        },
    )


class Harness:
    """Results in, minutes by, alerts out."""

    def __init__(self, config: Config, store: MemoryStore | None = None) -> None:
        self.config = config
        self.store = store or MemoryStore()
        self.ledger = Ledger(config, grace_minutes=1)
        self.collector = Collector(
            asyncio.Queue(), self.ledger, self.store, Metrics(config), clock=None
        )  # type: ignore[arg-type]
        self.sent: list[tuple[float, str, AlertEvent]] = []
        self.now = T0
        self.alerter = Alerter(
            config,
            self.ledger,
            self.store,
            notify=lambda name, event: self.sent.append((self.now, name, event)),
            in_maintenance=lambda s, t: self.ledger.eligibility.maintenance_at(s, t) is not None,
        )

    async def minute(self, index: int, error_share: float) -> None:
        """Feed minute ``index`` (from T0) and evaluate at its last second."""
        start = T0 + index * 60
        failures = round(PER_MINUTE * error_share)
        for i in range(PER_MINUTE):
            outcome = Outcome.STATUS if i < failures else Outcome.OK
            self.collector.accept(Result("svc", "p", "http", start + i, 0.2, outcome))
        await self.collector.flush()
        self.now = start + 59.5
        await self.ledger.advance(self.now, self.store)
        self.alerter.evaluate(all_figures(self.config, self.ledger, self.now), self.now)
        await self.alerter.save()

    def events(self, rule: str, kind: str) -> list[tuple[int, str]]:
        """(minute index, notifier) of each event of a rule and kind."""
        return [
            (int((at - T0) // 60), name)
            for at, name, event in self.sent
            if event.rule == rule and event.kind == kind
        ]


def _first_minute(factor: float, long_m: int, short_m: int, errors_from: int) -> int:
    """The first minute at whose end both windows burn faster than ``factor``; computed
    from the definition with the stream's shape (good minutes, then a constant share)."""
    budget = 0.01
    for minute in range(errors_from, errors_from + 10_000):

        def burn(length: int, minute: int = minute) -> float:
            first = max(minute - length + 1, 0)
            bad_minutes = minute - max(first, errors_from) + 1
            return (ERROR_SHARE * bad_minutes / (minute - first + 1)) / budget

        if burn(long_m) > factor and burn(short_m) > factor:
            return minute
    raise AssertionError("never")


async def test_burn_rate_alerts_fire_escalate_and_resolve_once() -> None:
    h = Harness(_config())
    errors_until = GOOD_MINUTES + 45
    for minute in range(GOOD_MINUTES + 120):
        share = ERROR_SHARE if GOOD_MINUTES <= minute < errors_until else 0.0
        await h.minute(minute, share)

    fast = _first_minute(14.4, 60, 5, GOOD_MINUTES)
    slow = _first_minute(6, 360, 30, GOOD_MINUTES)
    assert h.events("burn-14x", "firing") == [(fast, "oncall")]
    assert h.events("burn-6x", "firing") == [(slow, "oncall")]
    # The second step after 10 minutes of firing, once.
    assert h.events("burn-6x", "escalated") == [(slow + 10, "manager")]
    assert h.events("burn-14x", "escalated") == [(fast + 10, "manager")]
    # Clear when the short window cools down: 5 minutes of 30 % errors give a 5m burn of
    # 30; it drops to or below 14.4 once 3 of the 5 minutes are clean. Resolved after it
    # stayed clear for its short window (5 minutes), the default resolve_after.
    resolved_fast = errors_until + 2 + 5
    assert sorted(h.events("burn-14x", "resolved")) == [
        (resolved_fast, "manager"),
        (resolved_fast, "oncall"),
    ]
    # No firing notice repeated within the hour-long repeat interval.
    assert h.events("burn-14x", "repeat") == []
    # Stored: the history keeps them, nothing is left active.
    stored = await h.store.load_alerts()
    assert {a.rule for a in stored} >= {"burn-14x", "burn-6x"}
    assert all(a.status == "resolved" for a in stored if a.rule == "burn-14x")


def _burns(shares: list[float], minute: int, length: int) -> float:
    """Burn rate over the ``length`` minutes ending at ``minute``, from the stream."""
    window = shares[max(minute - length + 1, 0) : minute + 1]
    return (sum(window) / len(window)) / 0.01


async def test_a_burst_crossing_the_threshold_again_and_again_pages_once() -> None:
    """A burst whose 5-minute burn hovers around 14.4: the raw condition flips
    many times, but the alert fires once and resolves once, after the stream stays clear
    for the short window; the resolution says the values that cleared it."""
    h = Harness(_config())
    # 35 minutes of 30 % errors, then 4 bad minutes in every 7: five minutes then hold
    # 2 or 3 bad ones, a 5m burn of 12 or 18 around the 14.4 threshold.
    pattern = (1, 1, 0, 1, 0, 0, 1)
    burst = [ERROR_SHARE] * 35 + [ERROR_SHARE * pattern[i % 7] for i in range(42)]
    shares = [0.0] * GOOD_MINUTES + burst + [0.0] * 30
    for minute, share in enumerate(shares):
        await h.minute(minute, share)

    # Independently of the code: where the rule's condition holds, minute by minute.
    holds = [
        _burns(shares, m, 60) > 14.4 and _burns(shares, m, 5) > 14.4 for m in range(len(shares))
    ]
    first = holds.index(True)
    last = len(holds) - 1 - holds[::-1].index(True)
    flips = sum(
        1 for a, b in zip(holds[first:last], holds[first + 1 : last + 1], strict=True) if a != b
    )
    assert flips >= 8  # it clears and holds again at least four times
    clear_runs, run = [], 0
    for value in holds[first : last + 1]:
        run = 0 if value else run + 1
        clear_runs.append(run)
    assert max(clear_runs) < 5  # never clear for the whole short window before the end

    assert h.events("burn-14x", "firing") == [(first, "oncall")]
    resolved = h.events("burn-14x", "resolved")
    assert sorted(resolved) == [(last + 1 + 5, "manager"), (last + 1 + 5, "oncall")]
    summaries = {e.summary for _, _, e in h.sent if e.rule == "burn-14x" and e.kind == "resolved"}
    [summary] = summaries  # the same message to both notifiers
    assert "burn back to" in summary
    assert "clear for 5 min" in summary


async def test_acknowledged_alert_stops_escalating() -> None:
    h = Harness(_config())
    slow = _first_minute(6, 360, 30, GOOD_MINUTES)
    for minute in range(GOOD_MINUTES + 40):
        share = ERROR_SHARE if minute >= GOOD_MINUTES else 0.0
        await h.minute(minute, share)
        if minute == slow + 2:
            alert = next(a for a in h.alerter.active() if a.rule == "burn-6x")
            h.alerter.acknowledge(alert.alert_id, "alice", h.now)
    assert h.events("burn-6x", "escalated") == []
    assert h.events("burn-6x", "acknowledged") == [(slow + 2, "oncall")]


async def test_repeat_interval_repeats_unacknowledged_alerts() -> None:
    h = Harness(_config(repeat_interval="20m"))
    for minute in range(GOOD_MINUTES + 70):
        await h.minute(minute, ERROR_SHARE if minute >= GOOD_MINUTES else 0.0)
    slow = _first_minute(6, 360, 30, GOOD_MINUTES)
    # Fired at `slow`, escalated at slow+10 (a notice), then every 20 minutes after that.
    repeats = [m for m, name in h.events("burn-6x", "repeat") if name == "oncall"]
    assert repeats == [slow + 30, slow + 50]


async def test_maintenance_silences_a_firing_alert() -> None:
    config = _config()
    h = Harness(config)
    slow = _first_minute(6, 360, 30, GOOD_MINUTES)
    start, end = T0 + (slow + 2) * 60, T0 + (slow + 40) * 60
    h.ledger.eligibility.replace_stored_maintenance(
        [MaintenanceWindow("1", "svc", start, end, "planned", T0 - 86400)]
    )
    for minute in range(GOOD_MINUTES + 45):
        await h.minute(minute, ERROR_SHARE if minute >= GOOD_MINUTES else 0.0)
    # Fired before the maintenance; its escalation (due at slow+10) fell inside: silent.
    assert h.events("burn-6x", "firing") == [(slow, "oncall")]
    assert h.events("burn-6x", "escalated") == []
    assert not [e for at, _, e in h.sent if start <= at < end]


async def test_state_survives_a_restart_without_renotifying() -> None:
    config = _config()
    store = MemoryStore()
    h = Harness(config, store)
    slow = _first_minute(6, 360, 30, GOOD_MINUTES)
    for minute in range(slow + 1):
        await h.minute(minute, ERROR_SHARE if minute >= GOOD_MINUTES else 0.0)
    assert h.events("burn-6x", "firing") == [(slow, "oncall")]

    again = Harness(config, store)
    await again.alerter.load()
    await again.ledger.load(store, h.now)
    for minute in range(slow + 1, slow + 5):
        await again.minute(minute, ERROR_SHARE)
    assert again.events("burn-6x", "firing") == []
    assert [a.rule for a in again.alerter.active()].count("burn-6x") == 1


async def test_service_down_after_consecutive_down_minutes() -> None:
    config = Config.model_validate(
        {
            "storage": {"path": ":memory:"},
            "services": [
                {
                    "name": "svc",
                    "probes": [{"name": "p", "kind": "http", "url": "http://127.0.0.1:1/"}],
                    "objectives": [{"name": "up", "kind": "availability", "target": 99}],
                }
            ],
            "alerting": {
                "service_down": {"consecutive_minutes": 3},
                "month_forecast": {"enabled": False},
                "month_breach": {"enabled": False},
                "burn_rate": [],
            },
        }
    )
    h = Harness(config)
    for minute in range(30):
        await h.minute(minute, 1.0 if 10 <= minute < 20 else 0.0)
    # Evaluated at the end of minute m, the last complete minute is m-1: minutes 10, 11
    # and 12 are down by the end of minute 13; the first clean minute (20) is complete at
    # the end of minute 21.
    assert h.events("service-down", "firing") == [(13, "log")]
    assert h.events("service-down", "resolved") == [(21, "log")]


async def test_coverage_below_the_floor_raises_one_ticket_and_resolves() -> None:
    """The probe runs every second; from minute 30 the scheduler keeps only half its runs
    for 90 minutes. The month's coverage (results over the runs due in the sealed
    minutes, computed here from the stream) drops below 90 %: one ticket, which resolves
    once full runs bring it back. (The ledger, never loaded here, also seals the minute
    before the first result, empty: the first minutes are below the floor too.)"""
    document = builders.service("svc", latency={"fast": 1})
    document["probes"][0]["interval"] = "1s"
    config = builders.config(
        document,
        alerting={
            "burn_rate": [],
            "month_forecast": {"enabled": False},
            "month_breach": {"enabled": False},
        },
    )
    h = Harness(config)
    kept = [PER_MINUTE] * 30 + [PER_MINUTE // 2] * 90 + [PER_MINUTE] * 900
    for minute, runs in enumerate(kept):
        start = T0 + minute * 60
        for i in range(runs):
            at = start + i * 60 / runs  # spread over the minute
            h.collector.accept(Result("svc", "p", "http", at, 0.2, Outcome.OK))
        await h.collector.flush()
        h.now = start + 59.5
        await h.ledger.advance(h.now, h.store)
        h.alerter.evaluate(all_figures(h.config, h.ledger, h.now), h.now)
        await h.alerter.save()

    # Independently: at the end of minute m the minutes -1 .. m - 2 are sealed (grace 1),
    # minute -1 with no result.
    def coverage(m: int) -> float:
        sealed = [0, *kept[: m - 1]]
        return sum(sealed) / (len(sealed) * 60)

    below = [m for m in range(1, len(kept)) if coverage(m) < 0.9]
    runs: list[list[int]] = []
    for m in below:
        if runs and runs[-1][-1] == m - 1:
            runs[-1].append(m)
        else:
            runs.append([m])
    assert len(runs) == 2, "the start, then the thinned runs, cross the floor"
    assert runs[1][0] > 30
    assert h.events("coverage-low", "firing") == [(run[0], "log") for run in runs]
    assert h.events("coverage-low", "resolved") == [(run[-1] + 1, "log") for run in runs]
    alerts = [a for a in await h.store.load_alerts() if a.rule == "coverage-low"]
    assert len(alerts) == 2
    assert all("insufficient data" in a.summary for a in alerts)
    labels = next(e for _, _, e in h.sent if e.rule == "coverage-low").labels
    assert labels["alertname"] == "SlaCoverageLow"


def _batch_config() -> Config:
    """Service ``files`` with ``data-4d`` (4 days, 99 %) beside a probed one; alerts
    resolve at once."""
    return builders.config(
        builders.service("svc", latency={"fast": 1}),
        {
            "name": "files",
            "objectives": [{"name": "data-4d", "kind": "batch", "deadline": "4d", "target": 99}],
        },
        alerting={"burn_rate": [], "month_forecast": {"enabled": False}, "resolve_after": 0},
    )


async def test_a_batch_at_risk_pages_once_and_resolves_when_processed() -> None:
    """A batch of 800 records handed in 3.5 days ago against a 4-day deadline, 1 day of
    margin: at risk until its processing is reported, then clear (resolved after the
    configured quiet time)."""
    config = _batch_config()
    h = Harness(config)
    book = BatchBook()
    submitted = T0 - 3.5 * 86400
    book.add([BatchRecord("files", "e1", "F1", "submitted", submitted, 800)])
    events = h.alerter.evaluate(batch_figures(config, book, T0), T0)
    [fired] = [e for e in events if e.labels["rule"] == "batch-at-risk"]
    assert (fired.kind, fired.labels["alertname"], fired.labels["severity"]) == (
        "firing",
        "SlaBatchAtRisk",
        "page",
    )
    assert "800 still unprocessed" in fired.summary
    assert not h.alerter.evaluate(batch_figures(config, book, T0 + 60), T0 + 60)  # once
    book.add([BatchRecord("files", "e2", "F1", "processed", T0 + 90, 800)])
    events = h.alerter.evaluate(batch_figures(config, book, T0 + 120), T0 + 120)
    assert [e.kind for e in events if e.labels["rule"] == "batch-at-risk"] == ["resolved"]


async def test_a_batch_objective_breached_for_the_month_is_alerted_once() -> None:
    """Two batches handed in on 1 November: 1,000 records processed after a day, 50 after
    five. Once that day's deadline has passed it is final at 1,000 / 1,050 (95.2 %) < 99 %:
    the month is breached, alerted once; a pending day alone alerts nothing."""
    config = _batch_config()
    h = Harness(config)
    book = BatchBook()
    submitted = dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC).timestamp()
    book.add(
        [
            BatchRecord("files", "s1", "A", "submitted", submitted, 1000),
            BatchRecord("files", "s2", "B", "submitted", submitted, 50),
            BatchRecord("files", "p1", "A", "processed", submitted + 86400, 1000),
        ]
    )
    pending = submitted + 2 * 86400  # 3 November: day 1 is pending (B unprocessed, in time)
    events = h.alerter.evaluate(batch_figures(config, book, pending), pending)
    assert [e for e in events if e.labels["rule"] == "month-breach"] == []
    book.add([BatchRecord("files", "p2", "B", "processed", submitted + 5 * 86400, 50)])
    final = submitted + 6 * 86400  # 7 November: 1 November's deadline has passed
    events = h.alerter.evaluate(batch_figures(config, book, final), final)
    [fired] = [e for e in events if e.labels["rule"] == "month-breach"]
    assert fired.kind == "firing"
    assert fired.labels["objective"] == "data-4d"
    assert f"({100 * 1000 / 1050:.3f} % < 99.000 %)" in fired.summary, fired.summary
    later = final + 3600
    assert not h.alerter.evaluate(batch_figures(config, book, later), later)  # once
