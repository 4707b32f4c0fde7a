"""The PDF printed by Debian's Chromium, and the charts drawn once, in a process pool when
there are many: what a month of many services looks like on paper, and how printing fails
(no Chromium, Chromium failing, Chromium stuck) with a clear error instead of a hang."""

from __future__ import annotations

import io
import os
import re
import stat
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

from monitor.report import charts as report_charts
from monitor.report import render as report_render
from monitor.report.charts import POOL_MIN_CHARTS, draw_charts, service_chart
from monitor.report.model import Report
from monitor.report.pdf import CHROMIUM_ENV, PdfError, html_to_pdf
from monitor.report.render import PRINT_DAILY_MAX_SERVICES, render_many
from tests.monitor.report import scenario as sc

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """October's report of the seeded month (2 services)."""
    path = sc.seed_file(tmp_path_factory.mktemp("pdf") / "seeded.sqlite3")
    seeded: Report = sc.report_of(path)
    return seeded


@pytest.fixture(scope="module")
def wide(report: Report) -> Report:
    """The same month as if it had 12 services (copies of the seeded two, renamed)."""
    services = [
        service.model_copy(update={"name": f"{service.name}-{copy:02d}"})
        for copy in range(6)
        for service in report.services
    ]
    assert len(services) > max(PRINT_DAILY_MAX_SERVICES, POOL_MIN_CHARTS)
    return report.model_copy(update={"services": services})


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_pool_draws_the_same_charts_as_one_process(wide: Report) -> None:
    drawn = draw_charts(wide)  # >= POOL_MIN_CHARTS: worker processes
    assert list(drawn) == [s.name for s in wide.services]
    for service in wide.services[:2]:
        assert drawn[service.name] == service_chart(service.objectives)


def test_a_reused_figure_draws_what_a_new_one_draws(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The two seeded services differ in objectives, thresholds and latency range: nothing
    # of one may linger in the other's chart when the figure is reused.
    core, portal = report.services
    new = {}
    for service in (core, portal):
        monkeypatch.setattr(report_charts, "_FIGURES", {})
        new[service.name] = service_chart(service.objectives)
    assert new["core"] != new["portal"]
    monkeypatch.setattr(report_charts, "_FIGURES", {})
    for service in (core, portal, core, portal):
        assert service_chart(service.objectives) == new[service.name], service.name
    assert len(report_charts._FIGURES) == 1  # both have two panels: one figure served both


def test_html_and_pdf_share_one_drawing_of_the_charts(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def counting(report: Report, progress: object = None) -> dict[str, str | None]:
        calls.append(report.period.month)
        return draw_charts(report)

    monkeypatch.setattr(report_render, "draw_charts", counting)
    documents = render_many(report, ["html", "pdf", "md"])
    assert list(documents) == ["html", "pdf", "md"]
    assert calls == ["2026-10"]
    # The charts are vectors in the PDF: their legend is text on the page.
    assert "online-1s (target 99 %)" in _text(documents["pdf"])


def test_many_services_print_without_daily_tables_but_the_html_keeps_them(
    wide: Report,
) -> None:
    documents = render_many(wide, ["html", "pdf"])
    page = documents["html"].decode()
    assert page.count('<div class="daily noprint">') == len(wide.services)
    assert "Content-Security-Policy" in page
    assert "default-src 'none'" in page
    text = _text(documents["pdf"])
    assert "Daily figures: see the HTML, CSV or JSON version" in text
    assert "Daily figures\n" not in text
    # The first page lists every service, wrapped inside the page (not cut off).
    first = PdfReader(io.BytesIO(documents["pdf"])).pages[0].extract_text()
    assert wide.services[-1].name in first
    pages = [int(n) for n in re.findall(r"page (\d+) of \d+", text)]
    assert pages == list(range(1, len(pages) + 1))


def test_no_chromium_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHROMIUM_ENV, "/nonexistent/chromium")
    with pytest.raises(PdfError, match=rf"{CHROMIUM_ENV}='/nonexistent/chromium' is not"):
        html_to_pdf(b"<p>x</p>")
    monkeypatch.delenv(CHROMIUM_ENV)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PdfError, match=r"apt-get install chromium"):
        html_to_pdf(b"<p>x</p>")


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_failing_chromium_is_reported_with_its_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        CHROMIUM_ENV, _script(tmp_path / "chromium", "echo 'no display' >&2\nexit 3\n")
    )
    with pytest.raises(PdfError, match=r"exit 3\): no display"):
        html_to_pdf(b"<p>x</p>")


def test_a_stuck_chromium_is_killed_with_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "child.pid"
    body = f"sleep 120 &\necho $! > {pid_file}\nwait\n"
    monkeypatch.setenv(CHROMIUM_ENV, _script(tmp_path / "chromium", body))
    started = time.monotonic()
    with pytest.raises(PdfError, match="did not print the PDF within 1 s"):
        html_to_pdf(b"<p>x</p>", timeout_s=1.0)
    assert time.monotonic() - started < 30
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the stuck Chromium's child process was left running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by init) is gone for our purpose.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
