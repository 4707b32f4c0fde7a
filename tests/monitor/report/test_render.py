"""The report's documents: JSON (schema), CSV, Markdown, HTML with charts, PDF (Chromium;
its text read back with pypdf, its first page rendered with pdftoppm into artifacts/)."""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from monitor.report.model import EvidenceHead, Month, Report
from monitor.report.render import CSV_COLUMNS, render, render_year
from monitor.report.year import year_report
from tests.monitor.report import scenario as sc

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """October's report of the seeded month."""
    path = sc.seed_file(tmp_path_factory.mktemp("render") / "seeded.sqlite3")
    report: Report = sc.report_of(path)
    return report


def _pct(ratio: float | None, digits: int = 3) -> str:
    assert ratio is not None
    return f"{ratio * 100:.{digits}f} %"


def test_json_is_the_model_with_a_documented_schema(report: Report) -> None:
    document = json.loads(render(report, "json"))
    assert document == report.model_dump(mode="json")
    assert list(document) == [
        "schema_version", "kind", "generator", "generated_at", "version", "period", "verdict",
        "counts", "services", "corrections", "method", "contract", "evidence",
    ]  # fmt: skip
    assert (document["schema_version"], document["kind"]) == (2, "sla-monthly-report")
    # docs/report.schema.json documents the keys; a change to the model must update it.
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    assert schema == json.loads(json.dumps(Report.model_json_schema(), sort_keys=True))
    assert Report.model_validate_json(render(report, "json")) == report


def test_csv_has_one_row_per_service_objective_and_day(report: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(render(report, "csv").decode())))
    objectives = sum(len(s.objectives) for s in report.services)  # 3 + 2
    assert len(rows) == objectives * 31 == 155
    assert tuple(rows[0]) == CSV_COLUMNS
    by_key = {(r["service"], r["objective"], r["date"]): r for r in rows}
    for objective in report.objectives():
        for day in objective.days:
            row = by_key[(objective.service, objective.objective, day.date)]
            assert int(row["valid"]) == day.valid
            assert int(row["good"]) == day.good
            assert int(row["minutes"]) == day.minutes
            if day.compliance is not None:
                assert float(row["compliance"]) == day.compliance
    dst = by_key[("core", "availability", "2026-10-25")]
    assert (dst["minutes"], dst["up"], dst["unmonitored"], dst["p99_s"]) == (
        "1500",
        "1380",
        "120",
        "",
    )
    latency = by_key[("core", "online-1s", "2026-10-25")]
    assert latency["up"] == ""
    assert float(latency["p99_s"]) > 0


def _figures(report: Report) -> list[str]:
    """Texts every human-readable format must show (formatted independently here)."""
    texts = ["2026-10", "PASS"]
    for objective in report.objectives():
        texts += [
            _pct(objective.achieved),
            f"{objective.margin * 100:+.3f} pp" if objective.margin is not None else "",
            f"{objective.valid:,}",
            f"{objective.bad:,}",
        ]
        for day in objective.days:
            texts.append(_pct(day.compliance) if day.compliance is not None else "n/a")
    for service in report.services:
        for incident in service.incidents:
            texts += [incident.start[:10] + " " + incident.start[11:16], incident.cause]
        for window in service.maintenance:
            texts.append(window.start[:10] + " " + window.start[11:16])
        for _alert in service.alerts:
            texts.append("alice")
    return texts


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_markdown_and_html_show_the_same_figures(report: Report, fmt: str) -> None:
    text = render(report, fmt).decode()
    if fmt == "html":
        text = html.unescape(text)
    for figure in _figures(report):
        assert figure in text, figure
    assert "LATE" in text  # the maintenance announced after its start
    assert "Method" in text
    assert "monotonic clock" in text


def test_the_appendix_shows_availability_under_each_treatment(report: Report) -> None:
    """Each availability objective's month under the contract's rule and the four other
    treatments of maintenance and unmonitored minutes, in every document and language."""
    markdown = render(report, "md").decode()
    pages = {lang: render(report, "html", lang=lang).decode() for lang in ("en", "fr", "nl")}
    assert "## Appendix: availability under each treatment of excluded time" in markdown
    assert "Annexe : la disponibilité selon le traitement du temps exclu" in pages["fr"]
    assert "Bijlage: de beschikbaarheid per behandeling van uitgesloten tijd" in pages["nl"]
    for service in report.services:
        for objective in service.objectives:
            if objective.kind != "availability":
                continue
            states = objective.minute_states
            assert states is not None
            up, down = states["up"], states["down"]
            maintenance, unmonitored = states["maintenance"], states["unmonitored"]
            by_hand = [
                up / (up + down),
                (up + maintenance) / (up + down + maintenance),
                up / (up + down + maintenance),
                (up + unmonitored) / (up + down + unmonitored),
                up / (up + down + unmonitored),
            ]
            assert by_hand[0] == objective.achieved  # (a) is the verdict's figure
            cells = " | ".join(_pct(r) for r in by_hand[1:])
            row = f"| {service.name} | {objective.objective} | **{_pct(by_hand[0])}** | {cells} |"
            assert row in markdown
            html_row = "".join(f"<td>{_pct(r)}</td>" for r in by_hand[1:])
            for page in pages.values():
                assert f"<td><b>{_pct(by_hand[0])}</b></td>{html_row}" in page


def test_html_embeds_black_and_white_readable_svg_charts(report: Report) -> None:
    page = render(report, "html").decode()
    images = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    # One figure per service: daily compliance, then the percentiles of each probe set.
    assert len(images) == 2
    svg = base64.b64decode(images[0]).decode()
    assert svg.lstrip().startswith("<?xml")
    assert "<svg" in svg
    # Series differ by dash pattern and marker, not only by colour.
    assert len(set(re.findall(r"stroke-dasharray: ([0-9., ]+)", svg))) >= 2
    assert "online-1s (target 99 %)" in svg


def test_provisional_documents_say_so(tmp_path: Path) -> None:
    path = sc.seed_file(tmp_path / "seeded.sqlite3")
    provisional: Report = sc.report_of(path, now=sc.local("2026-10-20T12:00"))
    for fmt in ("md", "html"):
        assert "PROVISIONAL, TO DATE" in render(provisional, fmt).decode()
    rows = list(csv.DictReader(io.StringIO(render(provisional, "csv").decode())))
    assert {r["provisional"] for r in rows} == {"true"}
    assert len(rows) == 5 * 20


def test_pdf_summary_table_and_first_page_image(report: Report) -> None:
    pdf = render(report, "pdf")
    assert pdf.startswith(b"%PDF-")
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "report-2026-10.pdf"
    target.write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 4
    first = reader.pages[0].extract_text()
    assert "SLA report — 2026-10" in first
    assert "Overall verdict" in first
    assert "5 passed, 0 failed" in first
    summary = first[first.index("Summary") :]
    for objective in report.objectives():
        assert objective.objective in summary
        assert _pct(objective.achieved) in summary
        assert f"{objective.valid:,}" in summary
    assert summary.count("PASS") >= 5
    everything = "\n".join(page.extract_text() for page in reader.pages)
    assert "2026-10-14 10:00" in everything  # the outage's incident
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm is not None, "pdftoppm is missing: apt-get install poppler-utils"
    prefix = ARTIFACTS / "report-2026-10-page1"
    subprocess.run(
        [
            pdftoppm,
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(target),
            str(prefix),
        ],
        check=True,
        timeout=60,
    )
    image = prefix.with_suffix(".png")
    assert image.read_bytes().startswith(b"\x89PNG")
    assert image.stat().st_size > 10_000


def test_yearly_summary_side_by_side(report: Report) -> None:
    months = [(Month(2026, m), None, "no data") for m in range(1, 10)]
    summary = year_report(
        sc.config(),
        2026,
        [*months, (Month(2026, 10), report, "final"),
         (Month(2026, 11), None, "no data"), (Month(2026, 12), None, "not started")],
        sc.NOW,
    )  # fmt: skip
    assert [m.status for m in summary.months][9:] == ["final", "no data", "not started"]
    row = next(r for r in summary.rows if r.objective == "online-1s")
    cell = row.months["2026-10"]
    assert cell is not None
    assert cell.achieved == report.objectives()[0].achieved
    assert row.months["2026-09"] is None
    markdown = render_year(summary, "md").decode()
    assert _pct(cell.achieved, 2) + " PASS" in markdown
    rows = list(csv.DictReader(io.StringIO(render_year(summary, "csv").decode())))
    assert len(rows) == 5 * 12
    assert render_year(summary, "pdf").startswith(b"%PDF-")


def test_the_evidence_section_shows_the_chains_link_in_each_language(report: Report) -> None:
    assert report.evidence is None  # the seeded store has no digest: no section
    assert b"daily digests" not in render(report, "md")
    chain = hashlib.sha256(b"the link of October 31").hexdigest()
    linked = report.model_copy(
        update={"evidence": EvidenceHead(date="2026-10-31", chain=chain, days=31)}
    )
    markdown = render(linked, "md").decode()
    assert f"Up to 2026-10-31 (31 of the month's days digested) the chain is `{chain}`" in markdown
    for lang, words in (
        ("en", "Up to 2026-10-31 (31 of the month's days digested)"),
        ("fr", "Jusqu'au 2026-10-31 (31 jours du mois condensés)"),
        ("nl", "Tot 2026-10-31 (31 dagen van de maand gehasht)"),
    ):
        page = render(linked, "html", lang=lang).decode()
        assert words in html.unescape(page), lang
        assert chain in page


def test_a_hash_holding_ff_is_printed_and_copied_as_typed_on_every_page(report: Report) -> None:
    """Chromium ignored "no ligatures" in the page footer: "ff" became one glyph (U+FB00),
    so a hash copied from the PDF did not match (in about one report in five)."""
    sha = "0ff1" * 16
    pdf = render(report, "pdf", figures_sha256=sha)
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]
    assert len(pages) >= 3
    assert all(sha in "".join(text.split()) for text in pages)
    assert "\ufb00" not in "".join(pages)
