"""Built-in alerting: conditions from the SLA figures, an alert lifecycle, escalation.

Each evaluation turns the figures into conditions (multi-window multi-burn-rate, month
forecast, month breach, service down). A condition that holds makes its alert pending,
then firing once it has held ``pending_for``; firing notifies the first escalation step,
later steps after their delay, again every ``repeat_interval``, until the alert resolves
or is acknowledged. A firing alert resolves only once its condition has stayed clear for
its ``resolve_after`` (a burn-rate rule's short window by default), and its resolution
says the values that cleared it; a condition that holds again before then continues the
same alert, so a burn hovering at a threshold pages once. One alert per fingerprint
(rule, service, objective) at a time, so the same firing alert is never notified twice
for the same reason. During announced maintenance of its service an alert sends nothing.
State lives in the store, so a restart neither forgets a firing alert nor notifies it
again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from monitor.alerting.labels import (
    BATCH_AT_RISK_RULE,
    COVERAGE_RULE,
    DOWN_RULE,
    LOCATION_FAULT_RULE,
    MONTH_BREACH_RULE,
    MONTH_FORECAST_RULE,
    alert_labels,
    resolve_after_s,
)
from monitor.alerting.notifiers import AlertEvent, EventKind
from monitor.config import AlertingConfig, AvailabilityObjective, Config
from monitor.ledger.windows import Ledger
from monitor.sla.batch import span_text
from monitor.sla.figures import ObjectiveFigures, projected_compliance
from monitor.sla.minutes import MinuteCode, ObjectiveKey
from monitor.sla.windows import month_bounds, month_of
from monitor.store import Store
from monitor.store.records import Alert

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Condition:
    """An alert rule that holds right now for one service (and objective)."""

    rule: str
    severity: str
    service: str
    objective: str | None
    value: float | None
    summary: str
    description: str
    #: Whether it holds; a rule that does not hold is kept for the message that tells
    #: why its alert resolved.
    holds: bool = True
    #: The monitor's location at fault (location-fault rule only).
    location: str | None = None

    @property
    def fingerprint(self) -> str:
        """Stable identity of the alert: same rule, service and objective (and location),
        same alert."""
        text = f"{self.rule}\x00{self.service}\x00{self.objective or ''}"
        if self.location is not None:
            text += f"\x00{self.location}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pct(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.3f} %"


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


class Alerter:
    """Evaluates conditions and drives every alert's lifecycle.

    Args:
        config: the daemon's config (its ``alerting`` section).
        ledger: for consecutive down minutes.
        store: where alerts are kept across restarts.
        notify: hands an event to a notifier by name; must not block (the dispatcher).
        in_maintenance: True while a service is in announced maintenance.
    """

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        store: Store,
        notify: Callable[[str, AlertEvent], None],
        in_maintenance: Callable[[str, float], bool],
    ) -> None:
        self.config = config
        self.settings: AlertingConfig = config.alerting
        self.ledger = ledger
        self.store = store
        self._notify = notify
        self._in_maintenance = in_maintenance
        self._active: dict[str, Alert] = {}  # fingerprint -> pending or firing alert
        self._dirty: dict[str, Alert] = {}  # alert_id -> changed since the last save

    # --- state ---------------------------------------------------------------------------

    async def load(self) -> None:
        """Restore pending and firing alerts from the store."""
        for alert in await self.store.load_alerts(active_only=True, limit=10_000):
            self._active[alert.fingerprint] = alert

    async def reload(self) -> None:
        """Forget what this process held and restore from the store: another daemon led
        meanwhile, and the store has what it decided."""
        self._active.clear()
        self._dirty.clear()
        await self.load()

    async def save(self) -> None:
        """Persist the alerts changed since the last save."""
        dirty, self._dirty = self._dirty, {}
        for alert in dirty.values():
            await self.store.save_alert(alert)

    def active(self) -> list[Alert]:
        """Pending and firing alerts."""
        return sorted(self._active.values(), key=lambda a: a.pending_since)

    def _touch(self, alert: Alert) -> None:
        self._dirty[alert.alert_id] = alert

    # --- conditions ----------------------------------------------------------------------

    def conditions(self, figures: list[ObjectiveFigures], now: float) -> list[Condition]:
        """Every condition that holds at ``now``."""
        return [c for c in self._observe(figures, now) if c.holds]

    def _observe(self, figures: list[ObjectiveFigures], now: float) -> list[Condition]:
        """The conditions that hold, and the burn-rate rules that do not (for the values
        that resolve an alert)."""
        seen: list[Condition] = []
        for f in figures:
            seen.extend(self._burn_rate(f))
            seen.extend(self._month(f, now))
            seen.extend(self._batch_at_risk(f))
        seen.extend(self._service_down(now))
        seen.extend(self._location_faults(now))
        return seen

    def resolve_after(self, rule: str) -> float:
        """Seconds a firing alert of ``rule`` must stay clear before it resolves."""
        return resolve_after_s(self.settings, rule)

    def _burn_rate(self, f: ObjectiveFigures) -> list[Condition]:
        """Each burn-rate rule's state for the objective: held, or clear (kept for the
        message that resolves its alert)."""
        seen = []
        for rule in self.settings.burn_rate:
            long = f.windows[rule.long_window].burn_rate
            short = f.windows[rule.short_window].burn_rate
            if long is None or short is None:
                continue
            holds = long > rule.factor and short > rule.factor
            windows = f"{long:.2f} over {rule.long_window} and {short:.2f} over {rule.short_window}"
            if holds:
                summary = f"error budget burning {long:.1f}x (threshold {rule.factor:g}x)"
                tail = (
                    f"At this rate the budget of a 30-day period is gone in {30 / long:.1f} days."
                )
            else:
                summary = (
                    f"error budget burn back to {long:.1f}x over {rule.long_window} and "
                    f"{short:.1f}x over {rule.short_window} (threshold {rule.factor:g}x)"
                )
                tail = f"At most {rule.factor:g} in at least one of them."
            seen.append(
                Condition(
                    rule=rule.name,
                    severity=rule.severity,
                    service=f.service,
                    objective=f.objective,
                    value=long,
                    summary=f"{f.service} {f.objective}: {summary}",
                    description=(f"Burn rate {windows}; target {_pct(f.target_ratio)}. {tail}"),
                    holds=holds,
                )
            )
        return seen

    def _month(self, f: ObjectiveFigures, now: float) -> list[Condition]:
        held = []
        month = f.windows["month"]
        breach = self.settings.month_breach
        if (
            breach.enabled
            and month.compliance is not None
            and month.valid >= breach.min_events
            and month.compliance < f.target_ratio
        ):
            held.append(
                Condition(
                    MONTH_BREACH_RULE,
                    breach.severity,
                    f.service,
                    f.objective,
                    month.compliance,
                    f"{f.service} {f.objective}: breached for this month "
                    f"({_pct(month.compliance)} < {_pct(f.target_ratio)})",
                    f"Month to date: {month.good} good of {month.valid}; the target allows "
                    f"{month.budget_allowed:.1f} bad, {month.valid - month.good} happened.",
                )
            )
        forecast = self.settings.month_forecast
        projected = self.projected_month_compliance(f, now)
        if (
            forecast.enabled
            and projected is not None
            and month.valid >= forecast.min_events
            and projected < f.target_ratio
            and not (month.compliance is not None and month.compliance < f.target_ratio)
        ):
            held.append(
                Condition(
                    MONTH_FORECAST_RULE,
                    forecast.severity,
                    f.service,
                    f.objective,
                    projected,
                    f"{f.service} {f.objective}: will miss its target this month at the "
                    f"current burn rate (projected {_pct(projected)})",
                    f"Month to date {_pct(month.compliance)} over {month.valid}; burn rate "
                    f"over {forecast.burn_window} "
                    f"{f.windows[forecast.burn_window].burn_rate or 0:.2f}; projected "
                    f"month-end compliance {_pct(projected)} against {_pct(f.target_ratio)}.",
                )
            )
        low = self.settings.coverage
        if low.enabled and month.coverage is not None and month.coverage < month.coverage_floor:
            what = "minutes" if f.kind == "availability" else "expected probe runs"
            held.append(
                Condition(
                    COVERAGE_RULE,
                    low.severity,
                    f.service,
                    f.objective,
                    month.coverage,
                    f"{f.service} {f.objective}: monitored only {_pct(month.coverage)} of "
                    f"this month (floor {_pct(month.coverage_floor)}): insufficient data",
                    f"The monitor produced results for {_pct(month.coverage)} of the "
                    f"month's {what} so far; below {_pct(month.coverage_floor)} the month "
                    "gets no verdict. Check that the daemon runs and its probes keep "
                    "their intervals (a late install lowers it for the whole month).",
                )
            )
        return held

    def _batch_at_risk(self, f: ObjectiveFigures) -> list[Condition]:
        """A batch objective's volume still unprocessed close to its deadline."""
        rule = self.settings.batch_at_risk
        if f.kind != "batch" or not rule.enabled or f.at_risk <= 0:
            return []
        deadline = f.threshold_s or 0.0
        return [
            Condition(
                BATCH_AT_RISK_RULE,
                rule.severity,
                f.service,
                f.objective,
                float(f.at_risk),
                f"{f.service} {f.objective}: {f.at_risk} still unprocessed close to "
                f"its deadline ({span_text(deadline)})",
                f"{f.at_risk} records (or batches) handed in are not processed yet and "
                "their deadline is within the objective's margin: process them now or "
                "they count against the target.",
            )
        ]

    def projected_month_compliance(self, f: ObjectiveFigures, now: float) -> float | None:
        """Month-end compliance if the rest of the month runs at the recent burn rate and
        at the month's event rate so far."""
        current = int(now // 60)
        first, end = month_bounds(*month_of(current, self.ledger.zone), self.ledger.zone)
        return projected_compliance(
            f.windows["month"],
            f.windows[self.settings.month_forecast.burn_window].burn_rate,
            f.target_ratio,
            elapsed_minutes=max(current - first + 1, 1),
            remaining_minutes=max(end - current - 1, 0),
        )

    def _service_down(self, now: float) -> list[Condition]:
        down = self.settings.service_down
        if not down.enabled:
            return []
        held = []
        last = self._last_minute(now)
        first = last - down.consecutive_minutes + 1
        for service in self.config.services:
            for objective in service.objectives:
                if not isinstance(objective, AvailabilityObjective):
                    continue
                key = ObjectiveKey(service.name, objective.name)
                codes = self.ledger.codes_between(key, first, last, now)
                if codes and all(code is MinuteCode.DOWN for code in codes):
                    held.append(
                        Condition(
                            DOWN_RULE,
                            down.severity,
                            service.name,
                            objective.name,
                            None,
                            f"{service.name} is down ({down.consecutive_minutes} minutes in a row)",
                            f"More than {objective.down_ratio:.0%} of the probes' results "
                            f"failed in each of the last {down.consecutive_minutes} minutes.",
                        )
                    )
        return held

    def _last_minute(self, now: float) -> int:
        """The last minute a minute-by-minute rule looks at: the last complete one, or
        with several locations the last one they decided (before that, nothing is known)."""
        last = int(now // 60) - 1
        sealed = self.ledger.sealed_through
        if self.ledger.shared and sealed is not None:
            last = min(last, sealed)
        return last

    def _location_faults(self, now: float) -> list[Condition]:
        """A location that alone saw a service down in each of the last N decided minutes:
        its own network path, alerted apart from the service (which stays up)."""
        rule = self.settings.location_fault
        if not rule.enabled or not self.ledger.shared:
            return []
        last = self._last_minute(now)
        minutes = self.ledger.faults_between(last - rule.consecutive_minutes + 1, last)
        held = []
        for service in self.config.services:
            # Faulty in every one of the minutes for one objective (as the generated rule
            # reads the per-objective counter).
            at_fault: set[str] = set()
            for key in self.ledger.classifier.objectives_of(service.name):
                per_minute = [set(faults.get(key, ())) for faults in minutes]
                if per_minute:
                    at_fault |= set.intersection(*per_minute)
            for location in sorted(at_fault):
                held.append(
                    Condition(
                        LOCATION_FAULT_RULE,
                        rule.severity,
                        service.name,
                        None,
                        None,
                        f"location {location} cannot reach {service.name}: the monitor's path"
                        f" ({rule.consecutive_minutes} minutes in a row)",
                        f"Only {location} saw {service.name} down in each of the last"
                        f" {rule.consecutive_minutes} decided minutes; the other locations saw"
                        " it up. Not counted against the service: check the monitor's network"
                        " there.",
                        location=location,
                    )
                )
        return held

    # --- lifecycle -----------------------------------------------------------------------

    def evaluate(self, figures: list[ObjectiveFigures], now: float) -> list[AlertEvent]:
        """Advance every alert to ``now``; returns the events sent to notifiers."""
        if not self.settings.enabled:
            return []
        events: list[AlertEvent] = []
        seen = self._observe(figures, now)
        held = {c.fingerprint: c for c in seen if c.holds}
        clear = {c.fingerprint: c for c in seen if not c.holds}
        for fingerprint, condition in held.items():
            alert = self._active.get(fingerprint)
            if alert is None:
                alert = Alert(
                    alert_id=f"{fingerprint}-{int(now)}",
                    fingerprint=fingerprint,
                    rule=condition.rule,
                    severity=condition.severity,
                    service=condition.service,
                    objective=condition.objective,
                    status="pending",
                    pending_since=now,
                    summary=condition.summary,
                    description=condition.description,
                    value=condition.value,
                    location=condition.location,
                )
                self._active[fingerprint] = alert
                self._touch(alert)
            else:
                alert.summary, alert.description = condition.summary, condition.description
                alert.value = condition.value
                if alert.clear_since is not None:  # held again in time: the same alert
                    alert.clear_since = None
                    self._touch(alert)
            events.extend(self._progress(alert, now))
        for fingerprint in [f for f in self._active if f not in held]:
            alert = self._active[fingerprint]
            if alert.status == "firing":
                if alert.clear_since is None:
                    alert.clear_since = now
                    self._touch(alert)
                wait = self.resolve_after(alert.rule)
                if now - alert.clear_since < wait:
                    continue  # clearing: no escalation, no repeat, not yet resolved
                if (values := clear.get(fingerprint)) is not None:
                    alert.summary = f"{values.summary}, clear for {_duration(wait)}"
                    alert.description, alert.value = values.description, values.value
            del self._active[fingerprint]
            events.extend(self._resolve(alert, now))
        return events

    def _progress(self, alert: Alert, now: float) -> list[AlertEvent]:
        if alert.status == "pending" and now - alert.pending_since >= self.settings.pending_for:
            alert.status = "firing"
            alert.started_at = now
            self._touch(alert)
        if alert.status != "firing" or self._in_maintenance(alert.service, now):
            return []  # silenced while its service is in announced maintenance
        if alert.acknowledged_at is not None:
            return []  # acknowledged: no escalation, no repeat
        events = []
        assert alert.started_at is not None
        steps = self.settings.escalation[alert.severity]
        for index, step in enumerate(steps):
            if index <= alert.escalation_step or now - alert.started_at < step.after:
                continue
            kind: EventKind = "firing" if alert.escalation_step < 0 else "escalated"
            alert.escalation_step = index
            events.extend(self._send(alert, kind, step.notifiers, now))
        if (
            alert.last_notified_at is not None
            and now - alert.last_notified_at >= self.settings.repeat_interval
        ):
            events.extend(self._send(alert, "repeat", self._reached_notifiers(alert), now))
        return events

    def _reached_notifiers(self, alert: Alert) -> list[str]:
        steps = self.settings.escalation[alert.severity]
        names: list[str] = []
        for step in steps[: alert.escalation_step + 1]:
            names.extend(n for n in step.notifiers if n not in names)
        return names

    def _resolve(self, alert: Alert, now: float) -> list[AlertEvent]:
        alert.ended_at = now
        was_firing = alert.status == "firing"
        alert.status = "resolved"
        self._touch(alert)
        if not was_firing or not alert.notified:
            return []  # a pending alert that never fired, or was silenced throughout
        return self._send(alert, "resolved", list(alert.notified), now, record=False)

    def _send(
        self, alert: Alert, kind: EventKind, notifiers: list[str], now: float, record: bool = True
    ) -> list[AlertEvent]:
        event = self.event(alert, kind)
        for name in notifiers:
            self._notify(name, event)
            if record and name not in alert.notified:
                alert.notified.append(name)
        alert.last_notified_at = now
        self._touch(alert)
        return [event]

    def event(self, alert: Alert, kind: EventKind) -> AlertEvent:
        """The notification for ``alert``."""
        labels = alert_labels(
            self.settings,
            alert.rule,
            alert.severity,
            alert.service,
            alert.objective,
            alert.location,
        )
        return AlertEvent(
            kind=kind,
            alert_id=alert.alert_id,
            fingerprint=alert.fingerprint,
            rule=alert.rule,
            severity=alert.severity,
            service=alert.service,
            objective=alert.objective,
            summary=alert.summary,
            description=alert.description,
            started_at=alert.started_at if alert.started_at is not None else alert.pending_since,
            ended_at=alert.ended_at,
            escalation_step=max(alert.escalation_step, 0),
            value=alert.value,
            labels=labels,
            annotations={"summary": alert.summary, "description": alert.description},
        )

    def acknowledge(self, alert_id: str, by: str, now: float) -> Alert:
        """Stop escalation and repeats of a firing alert; tell who was told.

        Raises:
            KeyError: no pending or firing alert has this id.
        """
        for alert in self._active.values():
            if alert.alert_id == alert_id:
                break
        else:
            raise KeyError(alert_id)
        if alert.acknowledged_at is None:
            alert.acknowledged_at, alert.acknowledged_by = now, by
            self._touch(alert)
            if alert.notified:
                self._send(alert, "acknowledged", list(alert.notified), now, record=False)
        return replace(alert)
