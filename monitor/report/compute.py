"""The monthly report computed from the store: every figure is counted with
``monitor.sla`` from the same minute rollups and the same persisted minute decisions the
daemon uses, so the report cannot disagree with the daemon's ``previous_month`` window
(DESIGN decisions 1-3):

- a latency objective sums the rollups of its probes over the minutes the service counted
  (neither outside its hours nor in announced maintenance);
- an availability objective counts each minute as the daemon decided it when it sealed the
  minute (``minute_states``). A minute with no stored decision is decided now the way a
  restart of the daemon decides it: from its rollups when it has some, else *unmonitored*
  (the monitor was down) unless service hours or maintenance exclude it.

Two things may change a closed month's figures, and both are explicit: a maintenance
window registered after the fact (stored with an announcement time before its start, by
agreement) excludes the minutes it covers that had counted; a correction marks a period
in which the monitor itself was faulty as unmonitored. Both produce a new numbered version
of the archived report (``monitor.report.archive``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from monitor.config import AvailabilityObjective, Config, LatencyObjective
from monitor.report.history import _Builder, _ObjectiveAcc
from monitor.report.model import (
    CAUSES,
    REPORT_VERDICT,
    AlertEntry,
    BatchDayReport,
    BatchObjectiveReport,
    Budget,
    Correction,
    EvidenceHead,
    Incident,
    LocationFaultEntry,
    MaintenanceEntry,
    MethodItem,
    Month,
    NoDataError,
    ObjectiveReport,
    Period,
    Progress,
    Report,
    ReportError,
    ServiceReport,
    overall_verdict,
    verdict_counts,
)
from monitor.sla.batch import BatchBook, batch_days
from monitor.sla.eligibility import Eligibility
from monitor.sla.figures import (
    CoverageBasis,
    WindowFigures,
    availability_window,
    batch_window,
    counts_by_label,
    latency_coverage,
    latency_window,
)
from monitor.sla.objectives import coverage_floor, grace_minutes, runs_per_minute
from monitor.sla.windows import day_bounds
from monitor.store import MaintenanceRecord, Store
from monitor.store.records import Alert
from monitor.timeparse import iso_local


def _budget(figures: WindowFigures) -> Budget:
    consumed = figures.bad
    allowed = figures.budget_allowed
    return Budget(
        allowed=allowed,
        consumed=consumed,
        consumed_ratio=consumed / allowed if allowed else None,
        remaining=figures.budget_remaining,
    )


def _objective_report(
    config: Config,
    service: str,
    objective: LatencyObjective | AvailabilityObjective,
    probes: list[str],
    acc: _ObjectiveAcc,
) -> ObjectiveReport:
    target = objective.target_ratio
    floor = coverage_floor(config, objective)
    extra: dict[str, Any]
    if isinstance(objective, LatencyObjective):
        runs = runs_per_minute(config, service, probes)
        share = latency_coverage(CoverageBasis(acc.total.attempts, acc.eligible_minutes), runs)
        figures = latency_window("month", acc.total, objective.threshold, target, share, floor)
        extra = {"quantiles_s": figures.quantiles}
        threshold: float | None = objective.threshold
    else:
        figures = availability_window("month", counts_by_label(acc.states), target, floor)
        extra = {"minute_states": figures.minutes}
        threshold = None
    achieved = figures.compliance
    return ObjectiveReport(
        service=service,
        objective=objective.name,
        kind=objective.kind,
        target=target,
        threshold_s=threshold,
        source=objective.source,
        location=getattr(objective, "location", None),
        probes=probes,
        valid=figures.valid,
        good=figures.good,
        bad=figures.bad,
        achieved=achieved,
        margin=None if achieved is None else achieved - target,
        verdict=REPORT_VERDICT[figures.verdict],
        coverage=figures.coverage,
        coverage_floor=floor,
        wording=config.contract.wording_of(service, objective.name) if config.contract else None,
        budget=_budget(figures),
        days=acc.days,
        **extra,
    )


async def _batch_reports(
    config: Config, store: Store, service: str, month: Month, now: float
) -> list[BatchObjectiveReport]:
    """The service's batch objectives over the month's submission days, from its batch
    events (the same arithmetic as the daemon's, monitor.sla.batch)."""
    zone = config.zone
    first, after = month.bounds(zone)
    settings = config.service(service)
    book = BatchBook()
    book.add(e for e in await store.batch_events(first * 60.0) if e.service == service)
    start = dt.datetime.fromtimestamp(first * 60, zone).date()
    end = dt.datetime.fromtimestamp(after * 60, zone).date()
    reports = []
    for objective in settings.batch_objectives:
        days = batch_days(book.of(service), objective.deadline, objective.measure, zone, now)
        window = batch_window("month", days, objective.target_ratio, start, end)
        pending = [d for d in window.days if not d.final]
        achieved = window.compliance
        reports.append(
            BatchObjectiveReport(
                service=service,
                objective=objective.name,
                target=objective.target_ratio,
                deadline_s=objective.deadline,
                measure=objective.measure,
                valid=window.valid,
                good=window.good,
                bad=window.bad,
                achieved=achieved,
                margin=None if achieved is None else achieved - objective.target_ratio,
                verdict=REPORT_VERDICT[window.verdict],
                pending_days=len(pending),
                pending_submitted=sum(d.submitted for d in pending),
                wording=config.contract.wording_of(service, objective.name)
                if config.contract
                else None,
                days=[
                    BatchDayReport(
                        date=d.date.isoformat(),
                        state="final" if d.final else "pending",
                        submitted=d.submitted,
                        in_time=d.in_time,
                        unprocessed=d.unprocessed,
                        compliance=d.compliance,
                    )
                    for d in window.days
                ],
            )
        )
    return reports


def _cause(failures: dict[str, int]) -> str:
    total = sum(failures.values())
    if not total:
        return "unknown (no failed result recorded)"
    outcome, count = max(failures.items(), key=lambda kv: (kv[1], kv[0]))
    words = CAUSES.get(outcome, outcome)
    return f"{outcome}: {words} ({count} of {total} failed results)"


def _incidents(objective: str, acc: _ObjectiveAcc, zone: ZoneInfo) -> list[Incident]:
    """Runs of consecutive down minutes."""
    incidents: list[Incident] = []
    runs: list[list[int]] = []
    for minute in acc.down_minutes:
        if runs and minute == runs[-1][-1] + 1:
            runs[-1].append(minute)
        else:
            runs.append([minute])
    for run in runs:
        failures: Counter[str] = Counter()
        for minute in run:
            failures.update(acc.failures.get(minute, {}))
        incidents.append(
            Incident(
                objective=objective,
                start=iso_local(run[0] * 60, zone),
                end=iso_local((run[-1] + 1) * 60, zone),
                duration_minutes=len(run),
                failures=dict(sorted(failures.items())),
                cause=_cause(dict(failures)),
            )
        )
    return incidents


def _maintenance_entries(
    service: str,
    eligibility: Eligibility,
    records: Sequence[MaintenanceRecord],
    excluded: set[int],
    lead_time_s: float,
    first: int,
    after: int,
    zone: ZoneInfo,
) -> list[MaintenanceEntry]:
    by_id = {r.window.id: r for r in records}
    windows = list(eligibility.windows(service))
    windows += [r.window for r in records if r.removed and r.window.service == service]
    entries = []
    for window in sorted(windows, key=lambda w: (w.start, w.id)):
        lo, hi = math.ceil(window.start / 60), math.ceil(window.end / 60)
        if hi <= first or lo >= after:
            continue
        record = by_id.get(window.id) if window.source == "store" else None
        known = math.isfinite(window.announced_at)
        effective = math.ceil(window.effective_start(lead_time_s) / 60)
        removed = record is not None and record.removed
        minutes = (
            0
            if removed
            else sum(1 for m in range(max(lo, effective, first), min(hi, after)) if m in excluded)
        )
        entries.append(
            MaintenanceEntry(
                id=window.id,
                source="config" if window.source == "config" else "store",
                start=iso_local(window.start, zone),
                end=iso_local(window.end, zone),
                reason=window.reason,
                announced_at=iso_local(window.announced_at, zone) if known else None,
                announced_late=known and window.announced_at + lead_time_s > window.start,
                minutes_excluded=minutes,
                created_by=record.created_by if record else None,
                created_at=iso_local(record.created_at, zone) if record else None,
                removed_at=(
                    iso_local(record.removed_at, zone)
                    if record is not None and record.removed_at is not None
                    else None
                ),
                removed_by=record.removed_by if record else None,
                correction=record.correction if record else None,
                origin="config file"
                if window.source == "config"
                else (record.origin if record else None),
            )
        )
    return entries


def _alert_entries(
    service: str, alerts: Sequence[Alert], start: float, end: float, zone: ZoneInfo
) -> list[AlertEntry]:
    def when(value: float | None) -> str | None:
        return None if value is None else iso_local(value, zone)

    def minutes(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round((b - a) / 60, 1)

    entries = []
    for alert in sorted(alerts, key=lambda a: (a.pending_since, a.alert_id)):
        if alert.service != service:
            continue
        began, ended = alert.pending_since, alert.ended_at
        if began >= end or (ended is not None and ended < start):
            continue
        fired = alert.started_at
        entries.append(
            AlertEntry(
                alert_id=alert.alert_id,
                rule=alert.rule,
                severity=alert.severity,
                objective=alert.objective,
                status=alert.status,
                summary=alert.summary,
                pending_since=iso_local(began, zone),
                started_at=when(fired),
                acknowledged_at=when(alert.acknowledged_at),
                acknowledged_by=alert.acknowledged_by,
                resolved_at=when(ended),
                minutes_to_acknowledge=minutes(fired, alert.acknowledged_at),
                minutes_to_resolve=minutes(fired, ended),
            )
        )
    return entries


def method(config: Config) -> list[MethodItem]:
    """The method section: how each figure is computed, in plain words."""
    zone = config.timezone
    lead = float(config.maintenance_lead_time)
    items = [
        (
            "Period",
            f"The calendar month in the {zone} time zone, from local midnight on the first "
            "day to local midnight on the first day of the next month; days follow local "
            "midnight, so the day clocks go forward has 23 hours and the day they go back "
            "has 25. A month that is not over is marked provisional: its figures run to "
            "the last minute the monitor has decided.",
        ),
        (
            "Latency objectives",
            "Counted, never estimated: every probe attempt is a valid event; it is good "
            "when the exchange succeeded within the threshold. Failures and time-outs are "
            "bad. Achieved = good / valid. A result counts in the minute its exchange "
            "started. Latency is measured with a monotonic clock around the exchange only.",
        ),
        (
            "Availability objectives",
            "Each minute is decided once, when the monitor seals it: outside the service's "
            "hours or on a public holiday -> outside hours; inside planned maintenance "
            "announced in advance -> maintenance; no result at all -> unmonitored; a "
            "provider service down or in maintenance -> provider unavailable; more than the "
            "objective's down ratio of the results failed -> down; else up. Achieved = up / "
            "(up + down). Excluded and unmonitored minutes count as neither.",
        ),
        (
            "Which minutes count",
            "Minutes outside service hours and in announced maintenance are excluded from "
            "the latency objectives too: their results are stored, not counted. Maintenance "
            f"excludes minutes from its announcement (plus a lead time of {lead:g} s) to its "
            "end, so a window announced late excludes nothing before its announcement.",
        ),
        (
            "Monitoring coverage",
            "A minute in which the monitor itself produced no result (it was stopped or "
            "faulty) is unmonitored: it is never counted as available or unavailable, and "
            "lowers the coverage = monitored / (monitored + unmonitored) minutes. Minutes "
            "the monitor never decided are decided for the report the way the daemon "
            "decides them on a restart. A latency objective's coverage is the share of the "
            "probe runs its probes' intervals call for in the counted minutes that produced "
            "a result. Below an objective's coverage floor "
            f"(default {config.coverage_floor:g} %) its verdict is INSUFFICIENT DATA, "
            "whatever its figure: too little of the period was measured to judge it.",
        ),
        (
            "Error budget",
            "Allowed = (1 - target) x valid events (or monitored minutes); consumed = bad "
            "events (or down minutes); consumed ratio = consumed / allowed (over 100 %: the "
            "budget is overspent). PASS when achieved >= target, computed from the counts, "
            "never from rounded figures.",
        ),
        (
            "Percentiles",
            "p50, p99 and p99.5 of successful exchanges are nearest-rank quantiles "
            "estimated from log-spaced buckets (relative error <= 1 %). They are shown "
            "beside the contract's thresholds; the verdict never depends on them.",
        ),
        (
            "Incidents",
            "An incident is a run of consecutive down minutes of an availability objective; "
            "its cause is the most frequent failure class the probes reported in it.",
        ),
        (
            "Archive and corrections",
            "A closed month is archived when first reported: its figures (the JSON document) "
            "and rendered documents, each with a SHA-256 hash. A correction (a maintenance "
            "window registered late by agreement, a period in which the monitor was faulty) "
            "is recorded with who, when and why, and produces a new numbered version; "
            "earlier versions are kept unchanged.",
        ),
    ]
    return [MethodItem(topic=topic, text=text) for topic, text in items]


async def build_report(
    config: Config,
    store: Store,
    month: Month,
    *,
    now: float,
    service: str | None = None,
    corrections: Sequence[Correction] = (),
    version: int | None = None,
    progress: Progress | None = None,
) -> Report:
    """Compute the report of ``month`` (to date when it is not over at ``now``).

    Args:
        config: the validated config (services, objectives, time zone).
        store: where the rollups, minute decisions, maintenance and alerts are.
        month: the calendar month.
        now: UTC epoch seconds; decides whether the month is over.
        service: only this service (its providers are read for decisions, not reported).
        corrections: recorded corrections of the month, applied in order.
        version: the archive version this report will be, if any.
        progress: called after each day.

    Raises:
        NoDataError: the period holds neither rollups nor minute decisions.
    """
    zone = config.zone
    names = [s.name for s in config.services]
    if service is not None:
        if service not in names:
            raise ReportError(f"unknown service {service!r} (the config has: {', '.join(names)})")
        names = [service]
    first, after = month.bounds(zone)
    sealed_after = int(now // 60) - grace_minutes(config)  # minutes before it are sealed
    provisional = sealed_after < after
    end = min(after, sealed_after)
    if end <= first:
        raise NoDataError(f"no data for {month}: the month has not started yet")
    eligibility = Eligibility(config)
    eligibility.replace_stored_maintenance(await store.list_maintenance())
    builder = _Builder(config, store, eligibility, names, corrections)
    days = [d for d in month.days() if day_bounds(d, zone)[0] < end]
    for index, date in enumerate(days):
        lo, hi = day_bounds(date, zone)
        await builder.day(date, lo, min(hi, end))
        if progress is not None:
            progress("days", index + 1, len(days))
    batch_reports = {
        name: await _batch_reports(config, store, name, month, now)
        for name in names
        if config.service(name).batch_objectives
    }
    if not builder.has_data and not any(b.days for r in batch_reports.values() for b in r):
        scope = f" of service {service}" if service else ""
        raise NoDataError(
            f"no data for {month}{scope}: the store holds no measured result for it (minutes"
            " sealed as unmonitored are not data; rollups are kept 400 days; was the monitor"
            " running?)"
        )
    records = await store.maintenance_records(include_removed=True)
    alerts = await store.load_alerts(limit=1_000_000)
    faults: dict[str, list[LocationFaultEntry]] = {}
    for name, objective, location, minutes in await store.location_faults(first, end):
        entry = LocationFaultEntry(objective=objective, location=location, minutes=minutes)
        faults.setdefault(name, []).append(entry)

    def measured_from(minute: int | None) -> str | None:
        """When measuring began, if after the period's start."""
        return iso_local(minute * 60, zone) if minute is not None and minute > first else None

    services = []
    for name in names:
        service_config = config.service(name)
        objectives = [
            _objective_report(
                config, name, o, service_config.series_of(o), builder.acc[(name, o.name)]
            )
            for o in service_config.objectives
        ]
        incidents = [
            incident
            for o in service_config.objectives
            if o.kind == "availability"
            for incident in _incidents(o.name, builder.acc[(name, o.name)], zone)
        ]
        incidents.sort(key=lambda i: (i.start, i.objective))
        batches = batch_reports.get(name, [])
        verdicts_here = [o.verdict for o in objectives] + [b.verdict for b in batches]
        services.append(
            ServiceReport(
                name=name,
                description=service_config.description,
                verdict=overall_verdict(verdicts_here),
                measured_from=measured_from(builder.first_data_minute.get(name)),
                objectives=objectives,
                batches=batches,
                incidents=incidents,
                maintenance=_maintenance_entries(
                    name,
                    eligibility,
                    records,
                    builder.maintenance_minutes[name],
                    float(config.maintenance_lead_time),
                    first,
                    end,
                    zone,
                ),
                alerts=_alert_entries(name, alerts, first * 60.0, end * 60.0, zone),
                location_faults=faults.get(name, []),
            )
        )
    verdicts = [v for s in services for v in s.verdicts()]
    return Report(
        generated_at=iso_local(now, zone),
        version=version,
        period=Period(
            month=str(month),
            timezone=config.timezone,
            start=iso_local(first * 60, zone),
            end=iso_local(end * 60, zone),
            month_end=iso_local(after * 60, zone),
            provisional=provisional,
            days=len(days),
            minutes=end - first,
            measured_from=measured_from(min(builder.first_data_minute.values(), default=None)),
        ),
        verdict=overall_verdict(verdicts),
        counts=verdict_counts(verdicts),
        services=services,
        corrections=list(corrections),
        method=method(config),
        contract=config.contract,
        evidence=await _evidence(store, month),
    )


async def _evidence(store: Store, month: Month) -> EvidenceHead | None:
    """The chain's link of the month's last digested day (dates compare as text)."""
    dates = month.days()
    start, last = dates[0].isoformat(), dates[-1].isoformat()
    digests = [d for d in await store.digests() if d.date <= last]
    if not digests:
        return None
    days = sum(1 for d in digests if d.date >= start)
    return EvidenceHead(date=digests[-1].date, chain=digests[-1].chain, days=days)


__all__ = ["build_report", "method"]
