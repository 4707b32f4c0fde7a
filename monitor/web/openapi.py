"""The JSON API's contract: request bodies (pydantic models, which also validate them) and
the OpenAPI 3.1 description served at ``/api/openapi.json``.

Request schemas are generated from the models, so the document cannot drift from what the
server accepts; response schemas are written here, next to them. One module (~740 lines)
on purpose: the models, the response schemas and the paths are one document, each part
naming the others; split, every path would import across the cut.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from monitor import __version__
from monitor.config import Config
from monitor.ingest.events import event_schema
from monitor.timeparse import RANGE_TEXT, in_range

# --- request bodies -----------------------------------------------------------------------


def _one_line(value: str | None) -> str | None:
    """Whitespace collapsed (a reason or title is one line); blank is refused."""
    if value is None:
        return None
    text = " ".join(value.split())
    if not text:
        raise ValueError("must not be blank")
    return text


def _not_blank(value: str) -> str:
    """Surrounding whitespace removed; blank is refused."""
    text = value.strip()
    if not text:
        raise ValueError("must not be blank")
    return text


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("reason", "title", "by", check_fields=False)
    @classmethod
    def _line(cls, value: str | None) -> str | None:
        return _one_line(value)

    @field_validator("message", check_fields=False)
    @classmethod
    def _text(cls, value: str) -> str:
        return _not_blank(value)


def _sane(moment: AwareDatetime) -> AwareDatetime:
    try:
        epoch = moment.timestamp()
    except (OverflowError, OSError, ValueError):
        epoch = -1.0
    if not in_range(epoch):
        raise ValueError(f"must lie between {RANGE_TEXT}")
    return moment


#: A time with its offset, within the range anyone may write (monitor.timeparse).
Instant = Annotated[AwareDatetime, AfterValidator(_sane)]


class MaintenanceIn(_Body):
    """A maintenance window to announce (``POST``) or replace (``PUT``)."""

    service: str = Field(min_length=1, max_length=200)
    start: Instant
    end: Instant
    reason: str = Field(min_length=1, max_length=500, description="Shown to users.")
    by: str = Field(default="api", min_length=1, max_length=100, description="Who announces.")


class MaintenancePatch(_Body):
    """Fields of a maintenance window to change (``PATCH``)."""

    start: Instant | None = None
    end: Instant | None = None
    reason: str | None = Field(default=None, min_length=1, max_length=500)


class IncidentIn(_Body):
    """An incident an operator opens."""

    service: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=200)
    message: str = Field(min_length=1, max_length=5000, description="The first update.")
    started_at: Instant | None = Field(default=None, description="Default: now.")
    by: str = Field(default="api", min_length=1, max_length=100)


class IncidentUpdateIn(_Body):
    """A human message added to an open incident's timeline."""

    message: str = Field(min_length=1, max_length=5000)
    status: Literal["investigating", "identified", "monitoring"] | None = Field(
        default=None, description="Default: the incident's current status."
    )
    by: str = Field(default="api", min_length=1, max_length=100)


class IncidentResolveIn(_Body):
    """How an incident is closed."""

    message: str = Field(default="Resolved.", min_length=1, max_length=5000)
    by: str = Field(default="api", min_length=1, max_length=100)


_BODIES: tuple[type[BaseModel], ...] = (
    MaintenanceIn,
    MaintenancePatch,
    IncidentIn,
    IncidentUpdateIn,
    IncidentResolveIn,
)

_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_STRING_OR_NULL = {"type": ["string", "null"]}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_VERDICT = {
    "enum": ["met", "missed", "insufficient_data", "no_data"],
    "description": "insufficient_data: coverage below the objective's floor (no verdict).",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: Iterable[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
    }


_RESPONSE_SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": {"type": "string"}}),
    "Maintenance": _object(
        {
            "id": {"type": "string", "description": "A number, or cfg-... for config windows."},
            "service": {"type": "string"},
            "start": _TIME,
            "end": _TIME,
            "reason": {"type": "string"},
            "announced_at": {
                **_TIME_OR_NULL,
                "description": "Null: announced long before (a config window without date).",
            },
            "status": {"enum": ["upcoming", "ongoing", "past"]},
            "source": {"enum": ["config", "store"]},
            "created_by": {**_STRING_OR_NULL, "description": "The name the announcer gave."},
            "origin": {
                **_STRING_OR_NULL,
                "description": (
                    "Where it was announced from, as authenticated: `api token NAME from "
                    "ADDRESS`, `cli USER@HOST`, `config file`; null before schema v4."
                ),
            },
        }
    ),
    "IncidentUpdate": _object(
        {
            "id": {"type": "string"},
            "at": _TIME,
            "status": {"enum": ["investigating", "identified", "monitoring", "resolved"]},
            "message": {"type": "string"},
            "author": {"type": "string"},
        }
    ),
    "Incident": _object(
        {
            "id": {"type": "string"},
            "service": {"type": "string"},
            "title": {"type": "string"},
            "status": {"enum": ["investigating", "identified", "monitoring", "resolved"]},
            "source": {"enum": ["detected", "operator"]},
            "objective": _STRING_OR_NULL,
            "started_at": _TIME,
            "resolved_at": _TIME_OR_NULL,
            "created_by": {"type": "string"},
            "updates": {"type": "array", "items": _ref("IncidentUpdate")},
        }
    ),
    "ServiceStatus": _object(
        {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "state": {"enum": ["operational", "degraded", "down", "maintenance"]},
            "objectives": {
                "type": "array",
                "items": _object(
                    {
                        "name": {"type": "string"},
                        "kind": {"enum": ["latency", "availability", "batch"]},
                        "target": {"type": "number"},
                        "threshold_s": _NUMBER_OR_NULL,
                        "month": {
                            **_NUMBER_OR_NULL,
                            "description": "Compliance this calendar month to date.",
                        },
                        "met": {
                            "type": ["boolean", "null"],
                            "description": "null: no data, or coverage below the floor.",
                        },
                        "verdict": _VERDICT,
                        "coverage": {
                            **_NUMBER_OR_NULL,
                            "description": "Share of this month to date the monitor saw.",
                        },
                        "burn_rate_1h": _NUMBER_OR_NULL,
                        "burn_rate_24h": _NUMBER_OR_NULL,
                    }
                ),
            },
            "maintenance": {"type": "array", "items": _ref("Maintenance")},
            "history": {
                "type": "array",
                "description": "Daily availability, oldest first (local days).",
                "items": _object(
                    {
                        "date": {"type": "string", "format": "date"},
                        "availability": _NUMBER_OR_NULL,
                        "up_minutes": {"type": "integer"},
                        "down_minutes": {"type": "integer"},
                        "level": {"enum": ["ok", "warn", "bad", "none"]},
                        "incidents": {"type": "array", "items": {"type": "string"}},
                    }
                ),
            },
        },
        required=["name", "description", "state", "objectives", "maintenance"],
    ),
    "Status": _object(
        {
            "generated_at": _TIME,
            "title": {"type": "string"},
            "timezone": {"type": "string"},
            "overall": {"enum": ["operational", "degraded", "down", "maintenance"]},
            "services": {"type": "array", "items": _ref("ServiceStatus")},
            "maintenance": {"type": "array", "items": _ref("Maintenance")},
            "incidents": {"type": "array", "items": _ref("Incident")},
        }
    ),
    "Cluster": _object(
        {
            "self": _object({"name": {"type": "string"}, "location": {"type": "string"}}),
            "locations": {"type": "array", "items": {"type": "string"}},
            "leader": {
                "type": ["string", "null"],
                "description": "the instance that leads (null: none holds the lease now)",
            },
            "instances": {
                "type": "array",
                "description": "every daemon that writes to the store, by location then name",
                "items": _object(
                    {
                        "name": {"type": "string"},
                        "location": {"type": "string"},
                        "version": {"type": "string"},
                        "started_at": {"type": "number"},
                        "seen_at": {"type": "number"},
                        "last_result_at": {"type": ["number", "null"]},
                        "seen_ago_s": {"type": "number"},
                        "result_lag_s": {"type": ["number", "null"]},
                        "state": {"enum": ["up", "stale"]},
                    }
                ),
            },
        }
    ),
    "Evidence": _object(
        {
            "head": {
                "description": "the newest link (null: no day digested yet)",
                "anyOf": [
                    _object({"date": {"type": "string"}, "chain": {"type": "string"}}),
                    {"type": "null"},
                ],
            },
            "days_digested": {"type": "integer"},
            "first_day": {"type": ["string", "null"]},
            "digests": {
                "type": "array",
                "description": "newest first; columns as in an evidence pack's digests.csv",
                "items": _object(
                    {
                        "date": {"type": "string"},
                        "results": {"type": "integer"},
                        "results_sha256": {"type": "string"},
                        "previous": {"type": "string"},
                        "chain": {"type": "string"},
                        "made_at": {"type": "number"},
                    }
                ),
            },
        }
    ),
    "Sla": _object(
        {
            "generated_at": _TIME,
            "version": {"type": "string"},
            "timezone": {"type": "string"},
            "windows": {"type": "object", "additionalProperties": {"type": "string"}},
            "services": {
                "type": "array",
                "items": _object(
                    {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "objectives": {"type": "array", "items": _ref("ObjectiveFigures")},
                    }
                ),
            },
            "locations": {
                "oneOf": [_ref("Locations"), {"type": "null"}],
                "description": "The locations deciding minutes together (null when the "
                "daemon was built without them).",
            },
        }
    ),
    "Locations": _object(
        {
            "names": {"type": "array", "items": {"type": "string"}},
            "self": {"type": "string"},
            "quorum": {
                "type": "integer",
                "description": "A minute is down only when at least this many locations "
                "saw it down, and unmonitored when fewer measured it.",
            },
            "decided_through": {
                "oneOf": [_TIME, {"type": "null"}],
                "description": "End of the last minute decided (figures include it).",
            },
            "faults": {
                "type": "array",
                "description": "Location faults in the last hour: a location that alone saw "
                "an objective down (its own path), never counted against the service.",
                "items": _object(
                    {
                        "service": {"type": "string"},
                        "objective": {"type": "string"},
                        "location": {"type": "string"},
                        "minutes_last_hour": {"type": "integer"},
                        "in_last_minute": {"type": "boolean"},
                    }
                ),
            },
        }
    ),
    "ObjectiveFigures": _object(
        {
            "service": {"type": "string"},
            "objective": {"type": "string"},
            "kind": {"enum": ["latency", "availability", "batch"]},
            "target": {"type": "number"},
            "threshold_s": _NUMBER_OR_NULL,
            "source": {
                "enum": ["probes", "traffic", "both", "batch"],
                "description": "Where its results come from: the service's probes, events "
                "of its real traffic (POST /api/ingest), or both; batch: events of batch "
                "processing (a batch objective).",
            },
            "probes": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The probes and traffic feeds it counts.",
            },
            "windows": {"type": "object", "additionalProperties": _ref("WindowFigures")},
        },
    ),
    "WindowFigures": _object(
        {
            "compliance": _NUMBER_OR_NULL,
            "valid": {"type": "integer"},
            "good": {"type": "integer"},
            "bad": {"type": "integer"},
            "met": {
                "type": ["boolean", "null"],
                "description": "null: no data, or coverage below the floor.",
            },
            "verdict": _VERDICT,
            "coverage": {
                **_NUMBER_OR_NULL,
                "description": "Availability: monitored / (monitored + unmonitored) minutes; "
                "latency: results / expected probe runs in the eligible sealed minutes.",
            },
            "coverage_floor": {"type": "number"},
            "error_budget": {"type": "object"},
            "burn_rate": _NUMBER_OR_NULL,
        },
    ),
    "Alert": {"type": "object", "required": ["alert_id"]},
    "IngestAnswer": _object(
        {
            "stored": {"type": "integer", "description": "New events, committed and counted."},
            "duplicate": {"type": "integer", "description": "Ids stored before: not recounted."},
            "invalid": {"type": "integer"},
            "late": {"type": "integer", "description": "Older than ingest.max_age: refused."},
            "errors": {
                "type": "array",
                "items": _object(
                    {
                        "line": {"type": "integer"},
                        "reason": {"enum": ["invalid", "late"]},
                        "error": {"type": "string"},
                    }
                ),
            },
        }
    ),
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    meaning = {
        400: "Bad input (malformed JSON, unknown service, end before start...).",
        401: "Missing or wrong bearer token.",
        403: "Writes are disabled (no token configured), or the token lacks the scope.",
        404: "Not found.",
        409: "Conflict (already resolved, or a window defined in the config file).",
        413: "Body larger than 16 KiB.",
        429: "Too many report requests in progress: try again after Retry-After seconds.",
        503: "The store cannot be read right now.",
    }
    return {str(code): _json(_ref("Error"), meaning[code]) for code in codes}


def _body(model: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(model)}}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_WRITE = (400, 401, 403, 413)


def openapi_document(config: Config, routes: Iterable[str] = ()) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API served with ``config``.

    Args:
        config: the daemon's config (services become an enum; reads may need the token).
        routes: the server's route paths; optional endpoints (reports) are described only
            when present.
    """
    services = {"type": "string", "enum": [s.name for s in config.services]}
    public = config.server.public_reads
    read_security: list[dict[str, list[str]]] = [] if public else [{"bearer": []}]
    read_errors = () if public else (401, 403)
    write: dict[str, Any] = {"security": [{"bearer": []}]}

    def read(summary: str, schema: dict[str, Any], *errors: int, **extra: Any) -> dict[str, Any]:
        responses = {"200": _json(schema, "OK"), **_errors(*sorted({*errors, *read_errors}))}
        return {"summary": summary, "security": read_security, "responses": responses, **extra}

    def wrapped(key: str, schema: dict[str, Any]) -> dict[str, Any]:
        return _object({key: schema})

    maintenance_list = wrapped("maintenance", {"type": "array", "items": _ref("Maintenance")})
    one_window = wrapped("maintenance", _ref("Maintenance"))
    one_incident = wrapped("incident", _ref("Incident"))
    paths: dict[str, Any] = {
        "/api/status": {
            "get": read(
                "What the status page shows: states, figures, maintenance, incidents.",
                _ref("Status"),
            )
        },
        "/api/sla": {
            "get": read(
                "Every service and objective: target, compliance per window, budgets.",
                _ref("Sla"),
                404,
                parameters=[_query("service", {"type": "string"}, "Only this service.")],
            )
        },
        "/api/maintenance": {
            "get": read(
                "Maintenance windows (config and announced), ordered by start.",
                maintenance_list,
                400,
                parameters=[
                    _query("scope", {"enum": ["current", "all"]}, "current: not ended yet."),
                    _query("service", {"type": "string"}, "Only this service."),
                ],
            ),
            "post": {
                "summary": "Announce a maintenance window (announced now; users are told).",
                **write,
                "requestBody": _body("MaintenanceIn"),
                "responses": {"201": _json(one_window, "Created"), **_errors(*_WRITE)},
            },
        },
        "/api/maintenance/{id}": {
            "parameters": [_path("id")],
            "put": {
                "summary": "Replace a stored window's times and reason.",
                **write,
                "requestBody": _body("MaintenanceIn"),
                "responses": {"200": _json(one_window, "Changed"), **_errors(*_WRITE, 404, 409)},
            },
            "patch": {
                "summary": "Change some of a stored window's start, end and reason.",
                **write,
                "requestBody": _body("MaintenancePatch"),
                "responses": {"200": _json(one_window, "Changed"), **_errors(*_WRITE, 404, 409)},
            },
            "delete": {
                "summary": "Cancel a stored window (kept for the audit trail).",
                **write,
                "parameters": [_query("by", {"type": "string"}, "Who cancels it.")],
                "responses": {
                    "200": _json(wrapped("removed", _ref("Maintenance")), "Cancelled"),
                    **_errors(401, 403, 404, 409),
                },
            },
        },
        "/api/incidents": {
            "get": read(
                "Incidents, newest first.",
                wrapped("incidents", {"type": "array", "items": _ref("Incident")}),
                400,
                parameters=[
                    _query("status", {"enum": ["open", "all"]}, "Default: all."),
                    _query("service", {"type": "string"}, "Only this service."),
                    _query(
                        "limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Default 100."
                    ),
                ],
            ),
            "post": {
                "summary": "Open an incident by hand; users are told.",
                **write,
                "requestBody": _body("IncidentIn"),
                "responses": {"201": _json(one_incident, "Opened"), **_errors(*_WRITE)},
            },
        },
        "/api/incidents/{id}": {
            "parameters": [_path("id")],
            "get": read("One incident with its timeline.", one_incident, 404),
        },
        "/api/incidents/{id}/updates": {
            "parameters": [_path("id")],
            "post": {
                "summary": "Add a human message to an open incident (detected ones too).",
                **write,
                "requestBody": _body("IncidentUpdateIn"),
                "responses": {"201": _json(one_incident, "Added"), **_errors(*_WRITE, 404, 409)},
            },
        },
        "/api/incidents/{id}/resolve": {
            "parameters": [_path("id")],
            "post": {
                "summary": "Resolve an open incident; users are told.",
                **write,
                "requestBody": _body("IncidentResolveIn", required=False),
                "responses": {
                    "200": _json(one_incident, "Resolved"),
                    **_errors(*_WRITE, 404, 409),
                },
            },
        },
        "/api/ingest": {
            "post": {
                "summary": "Events of real traffic (docs/events.md): each line checked on its "
                "own; answered once the good ones are committed. A repeated event id is "
                "counted once, so a sender retries a request that got no answer.",
                **write,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"type": "array", "items": _ref("Event")}},
                        "application/x-ndjson": {
                            "schema": {
                                "type": "string",
                                "description": "One Event JSON object per line.",
                            }
                        },
                    },
                },
                "responses": {
                    "200": _json(_ref("IngestAnswer"), "Some events taken (see errors)"),
                    "422": _json(_ref("IngestAnswer"), "No event taken: nothing changed"),
                    **_errors(400, 401, 403),
                    "413": _json(_ref("Error"), "Over ingest.max_body_bytes or max_events."),
                    "503": _json(_ref("Error"), "Not stored (store failing, stopping): retry."),
                },
            }
        },
        "/api/alerts": {
            "get": read(
                "Active alerts (default) or the history.",
                wrapped("alerts", {"type": "array", "items": _ref("Alert")}),
                400,
                404,
                parameters=[
                    _query("status", {"enum": ["active", "all"]}, "Default: active."),
                    _query(
                        "limit", {"type": "integer", "minimum": 1, "maximum": 10000}, "Default 100."
                    ),
                ],
            )
        },
        "/api/alerts/{alert_id}/ack": {
            "parameters": [_path("alert_id")],
            "post": {
                "summary": "Acknowledge a firing alert: escalation and repeats stop.",
                **write,
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"by": {"type": "string", "maxLength": 200}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(wrapped("alert", _ref("Alert")), "Acknowledged"),
                    **_errors(*_WRITE, 404),
                },
            },
        },
        "/feed.atom": {
            "get": {
                "summary": "Incidents and maintenance as an Atom feed.",
                "security": read_security,
                "parameters": [_query("lang", {"enum": ["en", "fr", "nl"]}, "Language.")],
                "responses": {
                    "200": {
                        "description": "Atom 1.0",
                        "content": {"application/atom+xml": {"schema": {"type": "string"}}},
                    },
                    **_errors(*read_errors),
                },
            }
        },
    }
    if "/api/cluster" in set(routes):
        paths["/api/cluster"] = {
            "get": read(
                "The daemons sharing the store: where each probes from and when it was seen.",
                _ref("Cluster"),
                503,
            )
        }
    if "/api/evidence" in set(routes):
        paths["/api/evidence"] = {
            "get": read(
                "The daily digests' hash chain: its head and newest links.", _ref("Evidence")
            )
        }
    if "/api/reports/{month}" in set(routes):
        report = read(
            "The monthly SLA report of a calendar month.",
            {"type": "object"},
            400,
            404,
            429,
            parameters=[
                _query("service", {"type": "string"}, "Only this service."),
                _query(
                    "lang",
                    {"enum": ["en", "fr", "nl"]},
                    "HTML and PDF in this language, rendered from the archived figures.",
                ),
            ],
        )
        if not config.reports.public:  # its own switch: each request may start a renderer
            report["security"] = [{"bearer": []}]
            report["responses"].update(_errors(401, 403))
        paths["/api/reports/{month}"] = {
            "parameters": [
                {
                    "name": "month",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}$"},
                    "description": "YYYY-MM",
                }
            ],
            "get": report,
        }
    schemas: dict[str, Any] = dict(_RESPONSE_SCHEMAS)
    for model in _BODIES:
        schemas[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    event = event_schema("#/components/schemas/{model}")
    schemas.update(event.pop("$defs", {}))  # ExchangeEvent, BatchEvent, Outcome
    schemas["Event"] = event
    for name in ("MaintenanceIn", "IncidentIn"):
        schemas[name]["properties"]["service"] = {**services}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sla-monitor API",
            "version": __version__,
            "description": (
                "Status, SLA figures, planned maintenance, incidents and alerts of the "
                "monitored network services. Times are RFC 3339; writes need "
                "`Authorization: Bearer <token>` (the token is read from the environment "
                'variable named by server.api_token_env). Errors are `{"error": "..."}`.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
