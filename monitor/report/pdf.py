"""PDF from the report's HTML, printed by headless Chromium (Debian's ``chromium``).

Chromium lays a 100-service month out in ~5 s where WeasyPrint took ~15 s, prints the
SVG charts as vectors, and supports the CSS paged media the report uses (page size,
margins, "page N of M" footers). The page is our own HTML: every value is escaped by the
templates, images are data URIs, and its Content-Security-Policy forbids scripts and
every fetch, so Chromium never touches the network. Chromium's sandbox needs user
namespaces that containers and root rarely have; it is off for the same reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from monitor.report.model import ReportError

#: Overrides the Chromium binary (else the first of CANDIDATES on PATH).
CHROMIUM_ENV = "SLA_MONITOR_CHROMIUM"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
#: A month of 100 services prints in ~5 s; far beyond this Chromium is stuck.
TIMEOUT_S = 300.0


class PdfError(ReportError):
    """Chromium is missing or could not print the document."""


def chromium_binary() -> str:
    """The Chromium to print with; PdfError naming the fix when there is none."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise PdfError(f"{CHROMIUM_ENV}={configured!r} is not an executable")
        return found
    for name in CANDIDATES:
        found = shutil.which(name)
        if found is not None:
            return found
    raise PdfError(
        "a PDF needs Chromium: install Debian's package (apt-get install chromium)"
        f" or set {CHROMIUM_ENV} to its path"
    )


def html_to_pdf(html: bytes, timeout_s: float = TIMEOUT_S) -> bytes:
    """Print ``html`` (a self-contained page) to PDF with headless Chromium."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="sla-report-") as tmp:
        folder = Path(tmp)
        page = folder / "report.html"
        page.write_bytes(html)
        out = folder / "report.pdf"
        command = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB
            "--disable-extensions",
            "--disable-background-networking",
            "--no-first-run",
            "--no-pdf-header-footer",  # the page's own @page footer instead
            f"--user-data-dir={folder / 'profile'}",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        # Its own session: on a timeout the whole process tree (renderer, GPU, zygote) goes.
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            try:
                process.communicate(timeout=10)  # reaps it and closes the pipe
            except subprocess.TimeoutExpired:  # a process outside the group holds the pipe
                if process.stderr is not None:
                    process.stderr.close()
                process.wait()
            raise PdfError(f"Chromium did not print the PDF within {timeout_s:g} s") from None
        if process.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            detail = " | ".join(stderr.decode(errors="replace").strip().splitlines()[-3:])
            code = process.returncode
            raise PdfError(f"Chromium could not print the PDF (exit {code}): {detail}")
        return out.read_bytes()
