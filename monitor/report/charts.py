"""The monthly report's charts: one matplotlib figure per service, as an SVG data URI that
the HTML embeds and Chromium prints into the PDF as vectors.

Drawing is the report's biggest CPU cost (~0.1 s per figure), so a month's charts are
drawn once for every document and, for more than a handful of services, in a pool of
worker processes, one per core. They stay readable in black and white: every series has
its own line style and marker, not only its own grey.
"""

from __future__ import annotations

import base64
import io
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from monitor.report.model import ObjectiveReport, Report
from monitor.sla.figures import QUANTILES

#: (line style, marker, grey) per series: distinct without colour.
_STYLES = [
    ("-", "o", "#000000"),
    ("--", "s", "#444444"),
    (":", "^", "#222222"),
    ("-.", "D", "#666666"),
    ((0, (5, 1, 1, 1, 1, 1)), "v", "#333333"),
    ((0, (1, 1)), "x", "#555555"),
]
#: Below this many charts a worker pool costs more (spawning, importing matplotlib) than
#: it saves.
POOL_MIN_CHARTS = 8
#: Title distance from the axes (points). A fixed title position: matplotlib otherwise
#: measures every tick label to place it, a quarter of the drawing time.
_TITLE_PAD = 6.0


def latency_groups(objectives: Sequence[ObjectiveReport]) -> list[dict[str, Any]]:
    """Latency objectives grouped by probe set: objectives over the same probes share
    their percentiles, so each set gets one table and one chart."""
    groups: dict[tuple[str, ...], list[ObjectiveReport]] = {}
    for objective in objectives:
        if objective.kind == "latency":
            groups.setdefault(tuple(objective.probes), []).append(objective)
    return [
        {"probes": list(probes), "objectives": members, "first": members[0]}
        for probes, members in groups.items()
    ]


@contextmanager
def _chart_style() -> Iterator[None]:
    import matplotlib

    settings: dict[str, Any] = {
        "figure.dpi": 100,
        "svg.fonttype": "none",  # text stays text: smaller files, selectable in the PDF
        "svg.hashsalt": "sla-monitor",  # same figures, same bytes
        "font.family": "DejaVu Sans",
        "font.size": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#cccccc",
        "grid.linewidth": 0.5,
    }
    with matplotlib.rc_context(settings):  # type: ignore[arg-type]
        yield


def _nan(value: float | None, scale: float = 1.0) -> float:
    return math.nan if value is None else value * scale


def _title(axes: Any, text: str) -> None:
    axes.set_title(text, loc="left", fontsize=8, y=1.0, pad=_TITLE_PAD)


def _compliance_axes(axes: Any, objectives: Sequence[ObjectiveReport]) -> None:
    """Daily compliance of each objective, with its target as a thin line of its style."""
    lowest = 100.0
    for index, objective in enumerate(objectives):
        style, marker, grey = _STYLES[index % len(_STYLES)]
        days = [int(d.date[8:]) for d in objective.days]
        values = [_nan(d.compliance, 100) for d in objective.days]
        axes.plot(
            days, values, linestyle=style, marker=marker, color=grey, markersize=3.5,
            linewidth=1.2, label=f"{objective.objective} (target {objective.target * 100:g} %)",
        )  # fmt: skip
        axes.axhline(objective.target * 100, linestyle=style, color="#888888", linewidth=0.7)
        lowest = min([lowest, objective.target * 100, *(v for v in values if v == v)])
    span = max(100.0 - lowest, 0.5)
    axes.set_ylim(max(0.0, lowest - 0.15 * span), 100.0 + 0.05 * span)
    axes.set_ylabel("compliance (%)")
    _title(axes, "Daily compliance (thin lines: targets)")
    axes.legend(loc="lower left", fontsize=7, frameon=True, framealpha=0.9)


def _latency_axes(axes: Any, group: dict[str, Any], thresholds: Sequence[float]) -> None:
    """Daily p50, p99 and p99.5 (log scale) with the latency thresholds."""
    objective: ObjectiveReport = group["first"]
    days = [int(d.date[8:]) for d in objective.days]
    for index, (key, q) in enumerate(QUANTILES):
        style, marker, grey = _STYLES[index]
        values = [_nan((d.quantiles_s or {}).get(key), 1000) for d in objective.days]
        axes.plot(
            days, values, linestyle=style, marker=marker, color=grey, markersize=3.5,
            linewidth=1.2, label=f"p{q * 100:g}",
        )  # fmt: skip
    for value in thresholds:
        axes.axhline(value * 1000, color="#888888", linewidth=0.8, linestyle=(0, (4, 2)))
        axes.annotate(
            f"{value:g} s", (1.0, value * 1000), xycoords=("axes fraction", "data"),
            fontsize=7, ha="right", va="bottom",
        )  # fmt: skip
    from matplotlib.ticker import FuncFormatter, LogFormatter

    # Plain numbers (300, not 3 x 10^2); minor ticks labelled only when decades are few.
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))
    axes.set_ylabel("latency (ms, log)")
    _title(axes, f"Daily latency percentiles (probes {', '.join(group['probes'])})")
    axes.legend(loc="upper left", fontsize=7, frameon=True, framealpha=0.9)


#: Figures kept for reuse, by number of panels: a new figure costs its ~50 tick objects
#: (a third of the drawing time); a reused one only gets new lines, texts and legends.
_FIGURES: dict[int, tuple[Any, list[Any]]] = {}


def _canvas(panels: int) -> tuple[Any, list[Any]]:
    """A figure of ``panels`` stacked axes sharing x, emptied of any earlier service."""
    cached = _FIGURES.get(panels)
    if cached is not None:
        figure, axes_list = cached
        for axes in axes_list:
            for artist in [*axes.lines, *axes.texts]:
                artist.remove()
            legend = axes.get_legend()
            if legend is not None:
                legend.remove()
            axes.relim()  # empty data limits, as a new axes has: only new lines count
        return cached
    from matplotlib.figure import Figure

    height = 2.3 * panels
    figure = Figure(figsize=(7.0, height))
    # Fixed margins (in inches): a "tight" bounding box would draw everything twice.
    figure.subplots_adjust(
        left=0.1, right=0.97, top=1 - 0.3 / height, bottom=0.45 / height, hspace=0.9 / 2.3
    )
    grid = figure.subplots(panels, 1, sharex=True, squeeze=False)
    axes_list = [row[0] for row in grid]
    for axes in axes_list[1:]:
        axes.set_yscale("log")
    axes_list[-1].set_xlabel("day of the month")
    _FIGURES[panels] = (figure, axes_list)
    return figure, axes_list


def service_chart(objectives: Sequence[ObjectiveReport]) -> str:
    """One figure per service: daily compliance of every objective with its target, then
    the daily latency percentiles of each probe set; an SVG data URI."""
    groups = latency_groups(objectives)
    thresholds = sorted({o.threshold_s for o in objectives if o.threshold_s is not None})
    with _chart_style():
        figure, axes_list = _canvas(1 + len(groups))
        _compliance_axes(axes_list[0], objectives)
        for axes, group in zip(axes_list[1:], groups, strict=True):
            _latency_axes(axes, group, thresholds)
        last_day = max((int(o.days[-1].date[8:]) for o in objectives if o.days), default=31)
        axes_list[-1].set_xlim(0.5, last_day + 0.5)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _workers(charts: int) -> int:
    if charts < POOL_MIN_CHARTS:
        return 0
    return min(len(os.sched_getaffinity(0)), charts)


def draw_charts(
    report: Report, progress: Callable[[str, int, int], None] | None = None
) -> dict[str, str | None]:
    """Every service's chart (None for a service without objectives), by service name."""
    todo = [s for s in report.services if s.objectives]
    charts: dict[str, str | None] = {s.name: None for s in report.services}
    workers = _workers(len(todo))
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress("charts", done, len(todo))

    if workers <= 1:
        for service in todo:
            charts[service.name] = service_chart(service.objectives)
            tick()
        return charts
    # "spawn": the caller may hold threads (aiosqlite, the event loop's executor) that a
    # fork would copy mid-state.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        drawn = pool.map(service_chart, [s.objectives for s in todo], chunksize=4)
        for service, chart in zip(todo, drawn, strict=True):
            charts[service.name] = chart
            tick()
    return charts
