"""Request helpers and JSON views shared by the status page and the write API: one error
shape (``{\"error\": ...}``), body parsing with pydantic, and the JSON form of incidents
and maintenance windows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from monitor.clock import Clock
from monitor.config import Config, Scope
from monitor.incidents import (
    IncidentBook,
    IncidentDetector,
    StatusEvent,
)
from monitor.maintenance import MaintenanceService
from monitor.sla.eligibility import Eligibility, MaintenanceWindow
from monitor.sla.figures import ObjectiveFigures
from monitor.store import Incident, Store
from monitor.timeparse import iso_utc as iso

#: Checks a request's bearer token for a scope: None when allowed, else the answer.
Authorize = Callable[[web.Request, Scope], web.Response | None]
#: The name of the token an allowed request carried (set by the Authorize check).
TOKEN_KEY = web.RequestKey("token", str)
_Model = TypeVar("_Model", bound=BaseModel)


class StatusSource(Protocol):
    """What the status site needs from the daemon."""

    config: Config
    clock: Clock
    store: Store
    eligibility: Eligibility
    maintenance: MaintenanceService
    incidents: IncidentBook
    incident_detector: IncidentDetector

    def figures_at(self, now: float) -> list[ObjectiveFigures]:
        """SLA figures as of ``now``."""
        ...

    async def reload_maintenance(self) -> bool:
        """Re-read the stored maintenance windows."""
        ...

    def publish(self, event: StatusEvent) -> None:
        """Tell the subscribers of the event's service."""
        ...


class BadRequest(Exception):
    """A request refused with a 4xx JSON error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def parse_body(
    request: web.Request, model: type[_Model], *, optional: bool = False
) -> _Model:
    """The request's JSON body as ``model``; BadRequest when it is not."""
    raw = await request.read()  # over client_max_size: 413 from aiohttp
    if not raw.strip() and optional:
        raw = b"{}"
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, "the body is not valid JSON") from None
    except RecursionError:
        raise BadRequest(400, "the body nests too deeply") from None
    if not isinstance(document, dict):
        raise BadRequest(400, "the body must be a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise BadRequest(400, f"invalid {model.__name__}: {details}") from None


# --- views --------------------------------------------------------------------------------


def incident_dict(incident: Incident) -> dict[str, Any]:
    """An incident as the API shows it."""
    return {
        "id": incident.id,
        "service": incident.service,
        "title": incident.title,
        "status": incident.status,
        "source": incident.source,
        "objective": incident.objective,
        "started_at": iso(incident.started_at),
        "resolved_at": iso(incident.resolved_at),
        "created_by": incident.created_by,
        "updates": [
            {
                "id": u.id,
                "at": iso(u.at),
                "status": u.status,
                "message": u.message,
                "author": u.author,
            }
            for u in incident.updates
        ],
    }


def _window_status(window: MaintenanceWindow, now: float) -> str:
    if now < window.start:
        return "upcoming"
    return "ongoing" if now < window.end else "past"


def maintenance_dict(
    window: MaintenanceWindow,
    now: float,
    created_by: str | None = None,
    origin: str | None = None,
) -> dict[str, Any]:
    """A maintenance window as the API shows it (``origin``: where it was announced
    from, as authenticated; a config window's is the config file)."""
    return {
        "id": window.id,
        "service": window.service,
        "start": iso(window.start),
        "end": iso(window.end),
        "reason": window.reason,
        "announced_at": iso(window.announced_at),
        "status": _window_status(window, now),
        "source": window.source,
        "created_by": created_by,
        "origin": "config file" if window.source == "config" else origin,
    }
