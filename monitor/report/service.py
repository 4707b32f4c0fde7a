"""The report inside the daemon: the previous month written automatically after it ends,
and ``GET /api/reports/YYYY-MM?format=json|html|md|csv|pdf[&service=NAME]``.

Computing and rendering a report is CPU work of seconds to minutes (matplotlib,
Chromium, a month of rollups). Done in the daemon's process it would hold the GIL and
delay the probes' event loop, whose timing *is* the measurement. So it runs in a child
process (``python -m monitor.report.service``, at a lower CPU priority) that reads the same
SQLite file and writes the same archive; the daemon only waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from monitor.clock import Clock
from monitor.config import Config
from monitor.contract import LANGUAGES
from monitor.report.model import BadMonthError, Month, NoDataError, ReportError
from monitor.report.pdf import PdfError, chromium_binary
from monitor.report.render import CONTENT_TYPE, FORMATS
from monitor.sla.eligibility import CorrectedSpan
from monitor.sla.windows import month_of, previous_month
from monitor.store.locate import is_database
from monitor.web.views import Authorize

log = logging.getLogger(__name__)

#: How often the daemon checks whether a month ended and needs its report.
CHECK_INTERVAL_S = 300.0
#: After a failed attempt, the next one waits this long.
RETRY_AFTER_S = 3600.0


class ReportJobError(ReportError):
    """The report child process failed."""


async def run_job(job: dict[str, Any], module: str = "monitor.report.service") -> dict[str, Any]:
    """Run one job in a child process (``python -m module``: this one, or another child
    that reads the store, such as the daily digest) and return its answer (a JSON object).

    Cancelling the caller kills the child, so a stopping daemon never waits for a report.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await process.communicate(json.dumps(job).encode())
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    try:
        answer: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        detail = stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise ReportJobError(
            f"report process exited {process.returncode}: {' | '.join(detail)}"
        ) from None
    return answer


def _job(config: Config, store: str, directory: Path, **fields: Any) -> dict[str, Any]:
    return {
        "config": config.model_dump(mode="json"),
        "store": store,
        "directory": str(directory),
        **fields,
    }


def read_corrections(
    directory: Path, months: Sequence[Month], database: str | None = None
) -> list[CorrectedSpan]:
    """The periods the latest archived version of each month declares unmonitored (a
    report correction: the monitor itself was faulty then). Runs in a thread: the archive
    module imports the renderers (and reads the shared archive in ``database``)."""
    from monitor.report.archive import ReportArchive

    archive = ReportArchive(directory, database)
    spans: list[CorrectedSpan] = []
    for month in months:
        latest = archive.latest(month)
        if latest is None:
            continue
        for correction in archive.report(latest).corrections:
            spans += [(s.service, s.start, s.end) for s in correction.unmonitored]
    return spans


class ReportsService:
    """The daemon's report work: the monthly writer task and the API route.

    Args:
        config: the daemon's config (its ``reports`` section).
        store: where the child finds the store (the SQLite file or the database URL);
            None when the daemon's store is in memory (tests): then nothing is written
            and the route answers 503.
        clock: wall time.
        base_dir: folder a relative ``reports.directory`` is resolved against.
        steady: whether the wall clock keeps pace (archiving waits while it does not).
    """

    def __init__(
        self,
        config: Config,
        store: str | None,
        clock: Clock,
        base_dir: Path | None = None,
        steady: Callable[[], bool] = lambda: True,
    ) -> None:
        #: Why PDF reports cannot be made here (None: they can): said once at start and in
        #: /healthz, and the months are archived in the other formats meanwhile.
        self.pdf_problem: str | None = None
        try:
            chromium_binary()
        except PdfError as exc:
            self.pdf_problem = str(exc)
            if "pdf" in config.reports.formats:
                formats = [f for f in config.reports.formats if f != "pdf"] or ["json"]
                reports = config.reports.model_copy(update={"formats": formats})
                config = config.model_copy(update={"reports": reports})
                if config.reports.enabled and store is not None:
                    log.warning("monthly reports are archived without a PDF: %s", exc)
        self.config = config
        #: Archiving freezes a month: only while the wall clock keeps pace (ClockWatch).
        self._steady = steady
        self.store = store
        self.clock = clock
        directory = Path(config.reports.directory)
        if not directory.is_absolute() and base_dir is not None:
            directory = base_dir / directory
        self.directory = directory.resolve()
        self._done: set[str] = set()  # months written (or without data) by this process
        self._retry_at: dict[str, float] = {}
        self._one_at_a_time = asyncio.Lock()
        self._waiting = 0  # API requests waiting for the lock or being served

    async def corrections(self, now: float) -> list[CorrectedSpan]:
        """The unmonitored periods of the corrected reports of the two months before
        ``now``'s (the ledger reaches that far back; only closed months are corrected)."""
        current = month_of(int(now // 60), self.config.zone)
        previous = previous_month(*current)
        months = [Month(*previous), Month(*previous_month(*previous))]
        database = self.store if self.store is not None and is_database(self.store) else None
        if database is None and not self.directory.is_dir():
            return []
        return await asyncio.to_thread(read_corrections, self.directory, months, database)

    # --- the monthly writer -----------------------------------------------------------

    async def run(self) -> None:
        """Check every few minutes whether the previous month needs its report."""
        if not self.config.reports.enabled or self.store is None:
            return
        while True:
            await self.check()
            await asyncio.sleep(CHECK_INTERVAL_S)

    def due_month(self, now: float) -> Month | None:
        """The month whose report is due at ``now``: the previous one, once its end plus
        ``reports.delay`` has passed."""
        zone = self.config.zone
        current = Month(*month_of(int(now // 60), zone))
        target = Month(*previous_month(current.year, current.month))
        _, after = target.bounds(zone)
        if now < after * 60 + self.config.reports.delay:
            return None
        return target

    async def check(self) -> dict[str, Any] | None:
        """Write the due month's report if it is not archived yet; returns the child's
        answer (None when nothing was due)."""
        now = self.clock.now()
        month = self.due_month(now)
        if month is None or str(month) in self._done or self.store is None:
            return None
        if not self._steady():
            return None  # a stepped clock may call a month over that is not
        if now < self._retry_at.get(str(month), 0.0):
            return None
        job = _job(
            self.config,
            self.store,
            self.directory,
            action="archive",
            month=str(month),
            now=now,
            created_by="daemon",
        )
        try:
            async with self._one_at_a_time:
                answer = await run_job(job)
        except (OSError, ReportJobError) as exc:
            log.error("monthly report %s failed (retry in 1 h): %s", month, exc)
            self._retry_at[str(month)] = now + RETRY_AFTER_S
            return None
        status = answer.get("status")
        if status == "ok":
            self._done.add(str(month))
            if answer.get("created"):
                log.info(
                    "monthly report %s written: version %s in %s (%s)",
                    month,
                    answer.get("version"),
                    answer.get("path"),
                    ", ".join(answer.get("documents", [])),
                )
            else:
                log.info("monthly report %s already archived in %s", month, answer.get("path"))
        elif status == "no-data":
            self._done.add(str(month))
            log.info("monthly report %s not written: %s", month, answer.get("message"))
        else:
            log.error("monthly report %s failed (retry in 1 h): %s", month, answer.get("message"))
            self._retry_at[str(month)] = now + RETRY_AFTER_S
        return answer

    # --- the API ----------------------------------------------------------------------

    def register(self, app: web.Application, authorized: Authorize) -> None:
        """Add ``GET /api/reports/{month}``."""
        self._authorized = authorized
        app.router.add_get("/api/reports/{month}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The month's report in ``?format=`` (default json), as the CLI would give it."""
        if not self.config.reports.public:
            refused = self._authorized(request, "read")
            if refused is not None:
                return refused
        try:
            month = Month.parse(request.match_info["month"])
        except BadMonthError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        fmt = request.query.get("format", "json")
        if fmt not in FORMATS:
            return web.json_response(
                {"error": f"format must be one of {', '.join(FORMATS)}"}, status=400
            )
        lang = request.query.get("lang")
        if lang is not None and lang not in LANGUAGES:
            return web.json_response(
                {"error": f"lang must be one of {', '.join(LANGUAGES)}"}, status=400
            )
        if fmt == "pdf" and self.pdf_problem is not None:
            return web.json_response({"error": self.pdf_problem}, status=503)
        service = request.query.get("service")
        names = [s.name for s in self.config.services]
        if service is not None and service not in names:
            return web.json_response({"error": f"unknown service {service!r}"}, status=404)
        if self.store is None:
            return web.json_response({"error": "reports need a stored history"}, status=503)
        if self._waiting > self.config.reports.max_waiting:
            return web.json_response(
                {"error": "too many report requests in progress: try again shortly"},
                status=429,
                headers={"Retry-After": "10"},
            )
        self._waiting += 1
        try:
            return await self._render(month, fmt, service, lang)
        finally:
            self._waiting -= 1

    async def _render(
        self, month: Month, fmt: str, service: str | None, lang: str | None
    ) -> web.Response:
        assert self.store is not None  # checked by the caller
        handle, out = tempfile.mkstemp(prefix="sla-report-", suffix=f".{fmt}")
        os.close(handle)
        try:
            job = _job(
                self.config,
                self.store,
                self.directory,
                action="render",
                month=str(month),
                now=self.clock.now(),
                created_by="api",
                format=fmt,
                service=service,
                lang=lang,
                out=out,
            )
            async with self._one_at_a_time:
                answer = await run_job(job)
            if answer.get("status") == "no-data":
                return web.json_response({"error": answer.get("message")}, status=404)
            if answer.get("status") != "ok":
                log.error("report %s failed: %s", month, answer.get("message"))
                return web.json_response({"error": "the report could not be made"}, status=500)
            body = await asyncio.to_thread(Path(out).read_bytes)
        finally:
            await asyncio.to_thread(Path(out).unlink, missing_ok=True)
        headers = {"Content-Type": CONTENT_TYPE[fmt]}
        if answer.get("provisional"):
            headers["X-Report-Provisional"] = "true"
        if answer.get("version") is not None:
            headers["X-Report-Version"] = str(answer["version"])
            headers["X-Report-Figures-SHA256"] = str(answer.get("figures_sha256", ""))
        if fmt == "pdf":
            headers["Content-Disposition"] = f'inline; filename="sla-report-{month}.pdf"'
        return web.Response(body=body, headers=headers)


# --- the child process ------------------------------------------------------------------


async def _child(job: dict[str, Any], location: str) -> tuple[dict[str, Any], bytes | None]:
    """Produce (and archive when closed) the job's month; the rendered bytes for a
    ``render`` job."""
    from monitor.report.archive import ReportArchive, output, produce
    from monitor.store import store_at

    config = Config.model_validate(job["config"])
    month = Month.parse(job["month"])
    archive = ReportArchive(job["directory"], location if is_database(location) else None)
    store = store_at(location)
    await store.open()
    try:
        produced = await produce(
            config, store, archive, month, now=float(job["now"]), created_by=job["created_by"]
        )
    finally:
        await store.aclose()
    data = None
    if job["action"] == "render":
        data = output(produced, archive, job["format"], job.get("service"), lang=job.get("lang"))
    version = produced.version
    answer = {
        "status": "ok",
        "month": str(month),
        "verdict": produced.report.verdict,
        "provisional": produced.report.period.provisional,
        "created": produced.created,
        "version": version.number if version else None,
        "path": str(version.path) if version else None,
        "figures_sha256": version.figures_sha256 if version else None,
        "documents": sorted(version.documents) if version else [],
    }
    return answer, data


def main() -> None:
    """Child entry point: one JSON job on stdin, one JSON answer line on stdout."""
    with contextlib.suppress(OSError):
        os.nice(10)  # below the daemon: its probes' timing comes first
    logging.basicConfig(level=logging.WARNING)
    job = json.loads(sys.stdin.read())
    location = str(job["store"])
    try:
        if not is_database(location) and not Path(location).exists():
            raise NoDataError(f"no data: the store {location} does not exist")
        answer, data = asyncio.run(_child(job, location))
        if data is not None:
            Path(job["out"]).write_bytes(data)
    except NoDataError as exc:
        answer = {"status": "no-data", "message": str(exc)}
    except Exception as exc:  # reported to the daemon, which logs it and retries
        answer = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
