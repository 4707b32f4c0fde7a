"""Renderers of the monthly report and the yearly summary: JSON, CSV, Markdown, HTML, PDF.

They only format ``monitor.report`` models; every figure comes from the model. Charts are
drawn with matplotlib as SVG and embedded in the HTML (and so in the PDF, which WeasyPrint
renders from the HTML). They stay readable in black and white: every series has its own
line style and marker, not only its own grey.
"""

from __future__ import annotations

import base64
import csv
import io
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, get_args

import jinja2

from monitor.report import MINUTE_STATES, QUANTILES, ObjectiveReport, Report, YearReport

Format = Literal["html", "pdf", "md", "json", "csv"]
FORMATS: tuple[Format, ...] = get_args(Format)
#: File suffix and HTTP content type of each format.
SUFFIX: dict[str, str] = {"html": "html", "pdf": "pdf", "md": "md", "json": "json", "csv": "csv"}
CONTENT_TYPE: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}

#: (line style, marker, grey) per series: distinct without colour.
_STYLES = [
    ("-", "o", "#000000"),
    ("--", "s", "#444444"),
    (":", "^", "#222222"),
    ("-.", "D", "#666666"),
    ((0, (5, 1, 1, 1, 1, 1)), "v", "#333333"),
    ((0, (1, 1)), "x", "#555555"),
]


# --- formatting, shared by the templates ----------------------------------------------------


def pct(ratio: float | None, digits: int = 3) -> str:
    """0.99512 -> ``99.512 %``; None -> ``n/a``."""
    return "n/a" if ratio is None else f"{ratio * 100:.{digits}f} %"


def points(margin: float | None) -> str:
    """A margin in percentage points, signed: ``+0.512 pp``."""
    return "n/a" if margin is None else f"{margin * 100:+.3f} pp"


def millis(seconds: float | None) -> str:
    """Seconds as milliseconds: ``123.4 ms``."""
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def number(value: float | None, digits: int = 0) -> str:
    """Thousands separated: ``12,345``; None -> ``n/a``."""
    return "n/a" if value is None else f"{value:,.{digits}f}"


def when(iso: str | None) -> str:
    """``2026-10-25T02:30:00+01:00`` -> ``2026-10-25 02:30 +01:00``."""
    if not iso:
        return ""
    return f"{iso[:10]} {iso[11:16]} {iso[19:]}".rstrip()


def markdown_cell(text: object) -> str:
    """Free text made safe inside a Markdown table cell (pipes, line breaks, markup)."""
    value = " ".join(str(text or "").split())
    for char in "\\|*_`<>[]":
        value = value.replace(char, "\\" + char)
    return value


def threshold(objective: ObjectiveReport) -> str:
    """What the objective promises, in words."""
    if objective.threshold_s is None:
        return "available"
    seconds = objective.threshold_s
    value = f"{seconds:g} s" if seconds >= 1 else f"{seconds * 1000:g} ms"
    return f"within {value}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("monitor", "templates"),
        # HTML templates escape; Markdown ones escape table cells with the `cell` filter.
        autoescape=lambda name: name is not None and name.endswith(".html.j2"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        pct=pct,
        points=points,
        ms=millis,
        number=number,
        when=when,
        threshold=threshold,
        cell=markdown_cell,
    )
    env.globals.update(MINUTE_STATES=MINUTE_STATES, QUANTILES=QUANTILES)
    return env


_ENV: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    """The Jinja2 environment over ``monitor/templates`` (built once)."""
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV


# --- charts ---------------------------------------------------------------------------------


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


def _data_uri(figure: Any, chart_format: str) -> str:
    """The figure as a data URI (an <img> source that HTML and WeasyPrint both take)."""
    buffer = io.BytesIO()
    if chart_format == "svg":
        figure.savefig(buffer, format="svg", metadata={"Date": None})
        mime = "image/svg+xml"
    else:  # PNG for the PDF: WeasyPrint embeds it as it is instead of drawing each path
        figure.savefig(buffer, format="png", dpi=150, metadata={"Software": None})
        mime = "image/png"
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _nan(value: float | None, scale: float = 1.0) -> float:
    return math.nan if value is None else value * scale


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
    axes.set_title("Daily compliance (thin lines: targets)", loc="left", fontsize=8)
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

    axes.set_yscale("log")
    # Plain numbers (300, not 3 x 10^2); minor ticks labelled only when decades are few.
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))
    axes.set_ylabel("latency (ms, log)")
    probes = ", ".join(group["probes"])
    axes.set_title(f"Daily latency percentiles (probes {probes})", loc="left", fontsize=8)
    axes.legend(loc="upper left", fontsize=7, frameon=True, framealpha=0.9)


def service_chart(objectives: Sequence[ObjectiveReport], chart_format: str = "svg") -> str:
    """One figure per service: daily compliance of every objective with its target, then
    the daily latency percentiles of each probe set; a data URI (SVG or PNG)."""
    from matplotlib.figure import Figure

    groups = _latency_groups(objectives)
    thresholds = sorted({o.threshold_s for o in objectives if o.threshold_s is not None})
    panels = 1 + len(groups)
    height = 2.3 * panels
    with _chart_style():
        figure = Figure(figsize=(7.0, height))
        # Fixed margins (in inches): a "tight" bounding box would draw everything twice.
        figure.subplots_adjust(
            left=0.1, right=0.97, top=1 - 0.3 / height, bottom=0.45 / height,
            hspace=0.9 / 2.3,
        )  # fmt: skip
        grid = figure.subplots(panels, 1, sharex=True, squeeze=False)
        _compliance_axes(grid[0][0], objectives)
        for axes, group in zip((row[0] for row in grid[1:]), groups, strict=True):
            _latency_axes(axes, group, thresholds)
        last_day = max((int(o.days[-1].date[8:]) for o in objectives if o.days), default=31)
        grid[-1][0].set_xlim(0.5, last_day + 0.5)
        grid[-1][0].set_xlabel("day of the month")
        return _data_uri(figure, chart_format)


def _latency_groups(objectives: Sequence[ObjectiveReport]) -> list[dict[str, Any]]:
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


# --- renderers ------------------------------------------------------------------------------


def render_json(report: Report | YearReport) -> bytes:
    """The model as JSON: stable key order, 2-space indent, UTF-8."""
    return (report.model_dump_json(indent=2) + "\n").encode()


#: Columns of the CSV, in order (one row per service x objective x day).
CSV_COLUMNS = (
    "month", "version", "provisional", "service", "objective", "kind", "date", "minutes",
    "target", "threshold_s", "valid", "good", "bad", "compliance", "met",
    *(f"{key}_s" for key, _ in QUANTILES), *MINUTE_STATES, "coverage",
)  # fmt: skip


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def render_csv(report: Report) -> bytes:
    """One row per service x objective x day; ratios as ratios, empty when not applicable."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for objective in report.objectives():
        for day in objective.days:
            quantiles = day.quantiles_s or {}
            states = day.minute_states or {}
            row = [
                report.period.month, report.version, report.period.provisional,
                objective.service, objective.objective, objective.kind, day.date, day.minutes,
                objective.target, objective.threshold_s, day.valid, day.good, day.bad,
                day.compliance, day.met,
                *(quantiles.get(key) for key, _ in QUANTILES),
                *(states.get(state) if day.minute_states is not None else None
                  for state in MINUTE_STATES),
                day.coverage,
            ]  # fmt: skip
            writer.writerow([_cell(v) for v in row])
    return buffer.getvalue().encode()


def render_year_csv(report: YearReport) -> bytes:
    """One row per service x objective x month."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("year", "month", "status", "service", "objective", "kind", "target",
                     "valid", "achieved", "verdict"))  # fmt: skip
    status = {m.month: m.status for m in report.months}
    for row in report.rows:
        for month, cell in row.months.items():
            writer.writerow(
                [_cell(v) for v in (
                    report.year, month, status[month], row.service, row.objective, row.kind,
                    row.target, cell.valid if cell else None, cell.achieved if cell else None,
                    cell.verdict if cell else "NO DATA",
                )]
            )  # fmt: skip
    return buffer.getvalue().encode()


def render_markdown(report: Report, figures_sha256: str | None = None) -> bytes:
    """The report as Markdown (no charts; every figure of the HTML)."""
    template = environment().get_template("report.md.j2")
    return template.render(r=report, sha256=figures_sha256, groups=_latency_groups).encode()


#: Above this many services the PDF leaves the daily tables out (they stay in the HTML,
#: CSV and JSON): a document management reads, not 3,000 rows of figures.
PRINT_DAILY_MAX_SERVICES = 10


def render_html(
    report: Report,
    figures_sha256: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    chart_format: str = "svg",
) -> bytes:
    """The report as one self-contained HTML page with its charts embedded."""
    charts: dict[str, str | None] = {}
    for index, service in enumerate(report.services):
        charts[service.name] = (
            service_chart(service.objectives, chart_format) if service.objectives else None
        )
        if progress is not None:
            progress("charts", index + 1, len(report.services))
    template = environment().get_template("report.html.j2")
    return template.render(
        r=report,
        sha256=figures_sha256,
        charts=charts,
        groups=_latency_groups,
        print_daily=len(report.services) <= PRINT_DAILY_MAX_SERVICES,
    ).encode()


def render_year_markdown(report: YearReport) -> bytes:
    """The yearly summary as Markdown."""
    return environment().get_template("year.md.j2").render(y=report).encode()


def render_year_html(report: YearReport) -> bytes:
    """The yearly summary as HTML."""
    return environment().get_template("year.html.j2").render(y=report).encode()


def html_to_pdf(html: bytes) -> bytes:
    """Render HTML to PDF with WeasyPrint (needs Pango; see the README's set-up)."""
    import weasyprint

    document = weasyprint.HTML(string=html.decode(), base_url=".")
    pdf: bytes = document.write_pdf()
    return pdf


def render(
    report: Report,
    fmt: str,
    figures_sha256: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> bytes:
    """The report in ``fmt`` (one of FORMATS)."""
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "md":
        return render_markdown(report, figures_sha256)
    if fmt == "html":
        return render_html(report, figures_sha256, progress)
    if fmt == "pdf":
        html = render_html(report, figures_sha256, progress, chart_format="png")
        if progress is not None:
            progress("pdf", 0, 1)
        pdf = html_to_pdf(html)
        if progress is not None:
            progress("pdf", 1, 1)
        return pdf
    raise ValueError(f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")


def render_year(report: YearReport, fmt: str) -> bytes:
    """The yearly summary in ``fmt`` (one of FORMATS)."""
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_year_csv(report)
    if fmt == "md":
        return render_year_markdown(report)
    if fmt == "html":
        return render_year_html(report)
    if fmt == "pdf":
        return html_to_pdf(render_year_html(report))
    raise ValueError(f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")
