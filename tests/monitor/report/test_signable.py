"""The report as a document to sign: the contract it is signed against, each objective in
the contract's words, coverage beside each verdict, the exclusions and corrections, an
approval block, and on every page its version and the SHA-256 of the archived figures;
in the contract's language, and in another on request.

Read back from the archived PDF with pypdf (text) and pdftoppm (page 1 compared with a
reference image kept in ``tests/testdata``, within a tolerance for anti-aliasing).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat
from pypdf import PdfReader

from monitor.config import Config
from monitor.report.archive import ReportArchive, output, produce
from monitor.report.model import Month
from monitor.store import SqliteStore
from tests.monitor.report import scenario as sc

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "tests" / "testdata" / "report-front-fr.png"
ARTIFACTS = ROOT / "artifacts"

CONTRACT: dict[str, Any] = {
    "title": {
        "fr": "Accord de niveau de service du réseau de la sécurité sociale",
        "nl": "Dienstverleningsovereenkomst van het netwerk van de sociale zekerheid",
        "en": "Service level agreement of the social security network",
    },
    "reference": "SLA-BCSS-2026-01",
    "parties": [
        {"name": "Banque Carrefour", "role": {"fr": "Prestataire", "en": "Provider"}},
        {"name": "Institution X", "role": {"fr": "Client", "en": "Customer"}},
    ],
    "period": {"start": "2026-01-01"},
    "languages": ["fr", "nl", "en"],
    "objectives": [
        {
            "service": "core",
            "objective": "online-1s",
            "wording": {
                "fr": "Un message en ligne est traité en 1 s dans 99 % des cas",
                "nl": "Een online bericht wordt in 99 % van de gevallen binnen 1 s verwerkt",
                "en": "An online message is processed within 1 s in 99 % of cases",
            },
        }
    ],
    "approval": {"prepared_by": "Alice Martin", "approved_by": "Bruno Peeters"},
}


def _archive(tmp_path: Path) -> tuple[Config, ReportArchive, Any]:
    path = sc.seed_file(tmp_path / "seeded.sqlite3")
    cfg = sc.config(contract=CONTRACT)
    archive = ReportArchive(tmp_path / "reports")

    async def build() -> Any:
        store = SqliteStore(path)
        await store.open()
        try:
            return await produce(
                cfg,
                store,
                archive,
                Month(2026, 10),
                now=sc.NOW,
                created_by="test",
                archive_formats=["json", "pdf", "md"],
            )
        finally:
            await store.aclose()

    return cfg, archive, asyncio.run(build())


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, ReportArchive, Any]:
    return _archive(tmp_path_factory.mktemp("signable"))


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def test_the_archived_pdf_names_the_contract_and_carries_its_hash_on_every_page(
    archived: tuple[Config, ReportArchive, Any],
) -> None:
    _, archive, produced = archived
    version = produced.version
    figures = (version.path / "report.json").read_bytes()
    digest = hashlib.sha256(figures).hexdigest()  # computed here, from the file itself
    assert json.loads(figures)["contract"]["reference"] == "SLA-BCSS-2026-01"
    pdf = archive.document(version, "pdf")
    assert pdf is not None
    pages = _pages(pdf)
    assert len(pages) >= 4
    for number, text in enumerate(pages, 1):
        flat = "".join(text.split())  # the footer may wrap the hash
        assert digest in flat, f"page {number} lacks the figures' SHA-256"
        assert "v1" in text, f"page {number} lacks the version"
    front = pages[0]
    # In the contract's first language, French.
    assert "Rapport SLA — 2026-10" in front
    assert CONTRACT["title"]["fr"] in " ".join(front.split())
    for text in ("SLA-BCSS-2026-01", "Prestataire", "Banque Carrefour", "Client",
                 "Institution X", "2026-01-01", "jusqu'à nouvel ordre"):  # fmt: skip
        assert text in front, text
    assert "Un message en ligne est traité en 1 s dans 99 % des cas" in " ".join(front.split())
    # Coverage beside each verdict, exclusions, approval block with its names and lines.
    for text in ("Couverture", "CONFORME", "Exclusions et corrections", "Maintenance",
                 "Non surveillé", "Approbation", "Préparé par", "Vérifié par", "Approuvé par",
                 "Alice Martin", "Bruno Peeters", "Signature"):  # fmt: skip
        assert text in front, text
    report = produced.report
    for objective in report.objectives():
        assert objective.coverage is not None
        assert f"{objective.coverage * 100:.1f} %".replace(".", ",") in front or (
            f"{objective.coverage * 100:.1f} %" in front
        )
    # The Markdown twin names the same contract (in English).
    markdown = archive.document(version, "md")
    assert markdown is not None
    assert "SLA-BCSS-2026-01" in markdown.decode()
    assert "An online message is processed within 1 s in 99 % of cases" in markdown.decode()


def test_another_language_is_rendered_from_the_archived_figures(
    archived: tuple[Config, ReportArchive, Any],
) -> None:
    _, archive, produced = archived
    digest = produced.version.figures_sha256
    for lang, words in {
        "en": ("SLA report — 2026-10", "Approval", "Prepared by", "Contract wording", "PASS"),
        "nl": ("SLA-rapport — 2026-10", "Goedkeuring", "Opgesteld door", "VOLDAAN"),
    }.items():
        pdf = output(produced, archive, "pdf", lang=lang)
        pages = _pages(pdf)
        for word in words:
            assert word in pages[0], (lang, word)
        assert all(digest in "".join(p.split()) for p in pages), lang
    # Without a language, the archived document itself (its hash checks).
    assert output(produced, archive, "pdf") == archive.document(produced.version, "pdf")


def test_the_front_page_looks_as_reviewed(archived: tuple[Config, ReportArchive, Any]) -> None:
    """Page 1 at 50 dpi against the reviewed reference: the same size, and on average
    within 0.75 of 255 per pixel. Two runs differ by ~0.15 (the seeded store's record
    times change the figures' hash printed on the page); blanking a block the size of the
    approval table differs by ~1.8."""
    _, archive, produced = archived
    pdf = archive.document(produced.version, "pdf")
    assert pdf is not None
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm is not None, "pdftoppm is missing: apt-get install poppler-utils"
    ARTIFACTS.mkdir(exist_ok=True)
    source = ARTIFACTS / "report-signable.pdf"
    source.write_bytes(pdf)
    prefix = ARTIFACTS / "report-front-fr"
    command = [pdftoppm, "-png", "-gray", "-r", "50", "-f", "1", "-l", "1", "-singlefile"]
    subprocess.run([*command, str(source), str(prefix)], check=True, timeout=60)
    page = Image.open(prefix.with_suffix(".png")).convert("L")
    reference = Image.open(REFERENCE).convert("L")
    assert page.size == reference.size
    difference = ImageStat.Stat(ImageChops.difference(page, reference)).mean[0]
    assert difference < 0.75, f"page 1 differs from the reference by {difference:.2f} on average"
