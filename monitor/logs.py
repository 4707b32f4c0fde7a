"""Log output: plain text for a terminal, or one JSON object per line (``--log-format
json``) for journald, Loki or Elasticsearch; and the access log of the daemon's server.
The JSON formatter is the standard library's ``logging.Formatter`` with ``json.dumps``:
a dozen lines do not justify a dependency."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Literal

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Libraries whose INFO lines are noise for a CLI user (one per HTTP request).
_QUIET = ("httpx", "httpcore")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, RFC 3339), level, logger, message, and the
    exception text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("method", "path", "status", "duration_ms", "remote"):
            if hasattr(record, key):
                body[key] = getattr(record, key)
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def setup_logging(level: str, fmt: LogFormat) -> None:
    """Configure the root logger once for the process."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level), handlers=[handler], force=True)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


class AccessLogger(AbstractAccessLogger):
    """One line per API request (``sla-monitor.access``): method, path, status, time;
    ``/metrics`` (scraped every few seconds) only when asked for."""

    include_metrics = False

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if request.path == "/metrics" and not self.include_metrics:
            return
        duration_ms = round(time * 1000, 1)
        self.logger.info(
            "%s %s %s %.1f ms",
            request.method,
            request.path,
            response.status,
            duration_ms,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": duration_ms,
                "remote": request.remote,
            },
        )


ACCESS_LOG = logging.getLogger("sla-monitor.access")

__all__ = ["ACCESS_LOG", "AccessLogger", "JsonFormatter", "LogFormat", "setup_logging"]
