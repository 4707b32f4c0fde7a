"""Renderers of the monthly report and the yearly summary: JSON, CSV, Markdown, HTML, PDF.

They only format ``monitor.report.model`` models; every figure comes from the model. The charts
(``monitor.report.charts``) are drawn once and embedded in the HTML; the PDF is that HTML
printed by Chromium (``monitor.report.pdf``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Collection
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args

import jinja2

from monitor.contract import LANGUAGES, Wording, text_in
from monitor.report.charts import draw_charts, latency_groups
from monitor.report.model import MINUTE_STATES, ObjectiveReport, Report, YearReport
from monitor.report.pdf import html_to_pdf
from monitor.sla.figures import QUANTILES
from monitor.sla.treatments import treatments

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

# --- formatting, shared by the templates ----------------------------------------------------


def pct(ratio: float | None, digits: int = 3) -> str:
    """0.99512 -> ``99.512 %``; None -> ``n/a``."""
    return "n/a" if ratio is None else f"{ratio * 100:.{digits}f} %"


def share(ratio: float | None) -> str:
    """A coverage: one decimal, three below 1 % (so 0.002 % does not read as 0.0 %)."""
    return pct(ratio, 1 if ratio is None or ratio >= 0.01 else 3)


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
    return _Words("en").promise(objective)


@cache
def messages() -> dict[str, dict[str, str]]:
    """The report's fixed texts per language (``templates/report_messages.json``)."""
    text = resources.files("monitor").joinpath("templates/report_messages.json").read_text()
    loaded: dict[str, dict[str, str]] = json.loads(text)
    return loaded


class _Words:
    """The texts of one language for the templates: ``t(key, **values)``, the contract's
    wording in that language, and what an objective promises."""

    def __init__(self, lang: str) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r} (use one of {', '.join(LANGUAGES)})")
        self.lang = lang
        self._texts = messages()[lang]

    def t(self, key: str, **values: object) -> str:
        """The text of ``key``, its ``{placeholders}`` filled."""
        return self._texts[key].format(**values) if values else self._texts[key]

    def text(self, wording: Wording | None) -> str | None:
        """A configured text (one, or per language) in this language."""
        return text_in(wording, self.lang)

    def promise(self, objective: ObjectiveReport) -> str:
        """What the objective promises, in words: ``within 1 s`` or ``available``."""
        if objective.threshold_s is None:
            words = self.t("available")
        else:
            seconds = objective.threshold_s
            value = f"{seconds:g} s" if seconds >= 1 else f"{seconds * 1000:g} ms"
            words = self.t("within", value=value)
        if objective.source != "probes":  # measured on the real traffic: say so
            words += ", " + self.t(f"source_{objective.source}")
        return words

    def context(self) -> dict[str, Any]:
        """What the templates call."""
        return {"lang": self.lang, "t": self.t, "text": self.text, "promise": self.promise}


def availability_objectives(report: Report) -> list[tuple[str, ObjectiveReport]]:
    """(service, objective) of every availability objective with minute counts."""
    return [
        (s.name, o)
        for s in report.services
        for o in s.objectives
        if o.kind == "availability" and o.minute_states is not None
    ]


def floors(report: Report) -> str:
    """The coverage floors of the report's objectives, in words (``90 %``, or a range)."""
    values = sorted({o.coverage_floor for o in report.objectives() if o.coverage_floor is not None})
    if not values:
        return "n/a"
    shown = [pct(v, 0) for v in values]
    return shown[0] if len(shown) == 1 else f"{shown[0]} to {shown[-1]}"


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
        share=share,
        points=points,
        ms=millis,
        number=number,
        when=when,
        threshold=threshold,
        cell=markdown_cell,
    )
    env.globals.update(
        MINUTE_STATES=MINUTE_STATES,
        QUANTILES=QUANTILES,
        floors=floors,
        treatments=treatments,
        available=availability_objectives,
    )
    return env


_ENV: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    """The Jinja2 environment over ``monitor/templates`` (built once)."""
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV


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
    """The report as Markdown (no charts; every figure of the HTML; in English)."""
    template = environment().get_template("report.md.j2")
    return template.render(
        r=report, sha256=figures_sha256, groups=latency_groups, **_Words("en").context()
    ).encode()


#: Above this many services the PDF leaves the daily tables out (they stay in the HTML,
#: CSV and JSON): a document management reads, not 3,000 rows of figures.
PRINT_DAILY_MAX_SERVICES = 10


Charts = dict[str, str | None]
Progress = Callable[[str, int, int], None]


def render_html(
    report: Report,
    figures_sha256: str | None = None,
    progress: Progress | None = None,
    charts: Charts | None = None,
    *,
    for_print: bool = False,
    lang: str = "en",
) -> bytes:
    """The report as one self-contained HTML page with its charts embedded (drawn here
    unless given), in ``lang`` (en, fr, nl). ``for_print``: the page Chromium prints,
    without the daily tables when there are more than PRINT_DAILY_MAX_SERVICES services."""
    if charts is None:
        charts = draw_charts(report, progress)
    print_daily = len(report.services) <= PRINT_DAILY_MAX_SERVICES
    template = environment().get_template("report.html.j2")
    return template.render(
        r=report,
        sha256=figures_sha256,
        charts=charts,
        groups=latency_groups,
        # Above the limit the daily tables stay on screen but not on paper; the printed
        # page leaves them out altogether (Chromium would lay them out only to hide them).
        print_daily=print_daily,
        daily_tables=print_daily or not for_print,
        **_Words(lang).context(),
    ).encode()


def render_year_markdown(report: YearReport) -> bytes:
    """The yearly summary as Markdown."""
    return environment().get_template("year.md.j2").render(y=report).encode()


def render_year_html(report: YearReport) -> bytes:
    """The yearly summary as HTML."""
    return (
        environment().get_template("year.html.j2").render(y=report, **_Words("en").context())
    ).encode()


def render_many(
    report: Report,
    formats: Collection[str],
    figures_sha256: str | None = None,
    progress: Progress | None = None,
    lang: str = "en",
) -> dict[str, bytes]:
    """The report in each of ``formats``; the charts are drawn once for HTML and PDF, which
    are in ``lang`` (JSON, CSV and Markdown do not depend on it)."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r} (use one of {', '.join(FORMATS)})")
    documents: dict[str, bytes] = {}
    if "json" in formats:
        documents["json"] = render_json(report)
    if "csv" in formats:
        documents["csv"] = render_csv(report)
    if "md" in formats:
        documents["md"] = render_markdown(report, figures_sha256)
    if "html" in formats or "pdf" in formats:
        charts = draw_charts(report, progress)
        if "html" in formats:
            documents["html"] = render_html(report, figures_sha256, charts=charts, lang=lang)
        if "pdf" in formats:
            page = render_html(report, figures_sha256, charts=charts, for_print=True, lang=lang)
            if progress is not None:
                progress("pdf", 0, 1)
            documents["pdf"] = html_to_pdf(page)
            if progress is not None:
                progress("pdf", 1, 1)
    return {fmt: documents[fmt] for fmt in formats}


def render(
    report: Report,
    fmt: str,
    figures_sha256: str | None = None,
    progress: Progress | None = None,
    lang: str = "en",
) -> bytes:
    """The report in ``fmt`` (one of FORMATS); HTML and PDF in ``lang``."""
    return render_many(report, [fmt], figures_sha256, progress, lang)[fmt]


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
