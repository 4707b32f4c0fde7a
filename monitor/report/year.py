"""A year of monthly reports side by side (``report --year``)."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.config import Config
from monitor.report.model import (
    Month,
    MonthStatus,
    Report,
    YearCell,
    YearMonth,
    YearReport,
    YearRow,
)
from monitor.timeparse import iso_local


def year_report(
    config: Config,
    year: int,
    months: Sequence[tuple[Month, Report | None, MonthStatus]],
    now: float,
) -> YearReport:
    """Assemble a yearly summary from the months' reports (None: no data or not started;
    the string is that month's status)."""
    rows: dict[tuple[str, str], YearRow] = {}
    for service in config.services:
        for objective in service.objectives:
            rows[(service.name, objective.name)] = YearRow(
                service=service.name,
                objective=objective.name,
                kind=objective.kind,
                target=objective.target_ratio,
                months={},
            )
    entries = []
    for month, report, status in months:
        entries.append(
            YearMonth(
                month=str(month),
                status=status,
                version=report.version if report is not None else None,
                verdict=report.verdict if report is not None else None,
            )
        )
        for empty in rows.values():
            empty.months[str(month)] = None
        for figures in report.objectives() if report is not None else []:
            row = rows.get((figures.service, figures.objective))
            if row is not None:
                row.months[str(month)] = YearCell(
                    achieved=figures.achieved, verdict=figures.verdict, valid=figures.valid
                )
    return YearReport(
        generated_at=iso_local(now, config.zone),
        year=year,
        timezone=config.timezone,
        months=entries,
        rows=list(rows.values()),
    )


__all__ = ["year_report"]
