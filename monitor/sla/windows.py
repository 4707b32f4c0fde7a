"""The window catalogue: every window a figure is computed over, and calendar months.

Config validation, the ledger, the API, the generated Prometheus rules and the dashboards
all name windows from here, so a window exists everywhere or nowhere.
"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

#: Rolling windows, in minutes. The window "1h" at minute m holds minutes (m-60, m].
ROLLING: dict[str, int] = {
    "5m": 5,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "6h": 360,
    "24h": 1440,
    "3d": 4320,
    "7d": 10080,
    "30d": 43200,
}
#: Calendar windows in the config's time zone: this month to date, and the previous month.
CALENDAR: tuple[str, ...] = ("month", "previous_month")
#: Every window the daemon computes figures over, in display order.
WINDOWS: tuple[str, ...] = (*ROLLING, *CALENDAR)

#: Windows the built-in burn-rate alerts can use; "1d" is accepted for "24h".
ALERT_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "24h", "3d")
#: Windows of the SLIs recorded by the generated Prometheus rules: every alert window
#: plus 30 days, in Prometheus's spelling ("24h" is "1d").
SLI_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
#: Windows the overview dashboard shows side by side.
DASHBOARD_WINDOWS: tuple[str, ...] = ("5m", "1h", "24h", "7d", "30d", "month")

#: Minutes in a UTC day.
MINUTES_PER_DAY = 1440


def prometheus_window(window: str) -> str:
    """The Prometheus name of a rolling window ("24h" is recorded as "1d")."""
    name = "1d" if window == "24h" else window
    if name not in SLI_WINDOWS:
        raise ValueError(f"window {window!r} is not recorded (recorded: {SLI_WINDOWS})")
    return name


def describe(timezone: str) -> dict[str, str]:
    """A one-line description of every window, as ``/api/sla`` lists them."""
    return {
        **{name: f"rolling {minutes * 60} s" for name, minutes in ROLLING.items()},
        "month": f"calendar month to date ({timezone})",
        "previous_month": f"previous calendar month ({timezone})",
    }


def window_range(window: str, now: float, zone: ZoneInfo) -> tuple[int, int]:
    """The epoch minutes [first, last] ``window`` covers at ``now`` (epoch seconds)."""
    current = int(now // 60)
    if window in ROLLING:
        return current - ROLLING[window] + 1, current
    month = month_of(current, zone)
    if window == "month":
        return month_bounds(*month, zone)[0], current
    if window == "previous_month":
        first, end = month_bounds(*previous_month(*month), zone)
        return first, end - 1
    raise KeyError(f"unknown window {window!r} (known: {', '.join(WINDOWS)})")


# --- calendar months ----------------------------------------------------------------------


def month_bounds(year: int, month: int, zone: ZoneInfo) -> tuple[int, int]:
    """First epoch minute of a local calendar month and the first one after it."""
    first = dt.datetime(year, month, 1, tzinfo=zone)
    after = dt.datetime(*next_month(year, month), 1, tzinfo=zone)
    # A minute belongs to the month its start lies in; ceil only matters for odd offsets.
    return math.ceil(first.timestamp() / 60), math.ceil(after.timestamp() / 60)


def month_of(minute: int, zone: ZoneInfo) -> tuple[int, int]:
    """The local (year, month) of epoch minute ``minute``."""
    local = dt.datetime.fromtimestamp(minute * 60, zone)
    return local.year, local.month


def previous_month(year: int, month: int) -> tuple[int, int]:
    """The (year, month) before."""
    return (year - 1, 12) if month == 1 else (year, month - 1)


def next_month(year: int, month: int) -> tuple[int, int]:
    """The (year, month) after."""
    return (year + 1, 1) if month == 12 else (year, month + 1)


def day_bounds(date: dt.date, zone: ZoneInfo) -> tuple[int, int]:
    """First epoch minute of a local date and the first one after it (23 or 25 hours
    on the DST days)."""
    first = dt.datetime.combine(date, dt.time(), zone)
    after = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), zone)
    return math.ceil(first.timestamp() / 60), math.ceil(after.timestamp() / 60)
