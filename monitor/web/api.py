"""The write API for maintenance and incidents (and their reads): every write needs the
bearer token, bad input gets a 4xx JSON error and changes nothing. Maintenance goes through
the one maintenance service (``monitor.maintenance``), as the CLI's does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from monitor.config import Scope
from monitor.incidents import (
    UPDATE_STATUSES,
)
from monitor.maintenance import MaintenanceError
from monitor.store import Incident
from monitor.web.openapi import (
    IncidentIn,
    IncidentResolveIn,
    IncidentUpdateIn,
    MaintenanceIn,
    MaintenancePatch,
)
from monitor.web.views import (
    TOKEN_KEY,
    Authorize,
    BadRequest,
    StatusSource,
    error_response,
    incident_dict,
    maintenance_dict,
    parse_body,
)


class WriteApi:
    """``/api/maintenance`` and ``/api/incidents``."""

    def __init__(self, source: StatusSource, authorized: Authorize) -> None:
        self._source = source
        self.config = source.config
        self._authorized = authorized

    def register(self, router: web.UrlDispatcher) -> None:
        """Add the routes."""
        router.add_get("/api/maintenance", self.list_maintenance)
        router.add_post("/api/maintenance", self.create_maintenance)
        router.add_put("/api/maintenance/{id}", self.replace_maintenance)
        router.add_patch("/api/maintenance/{id}", self.patch_maintenance)
        router.add_delete("/api/maintenance/{id}", self.delete_maintenance)
        router.add_get("/api/incidents", self.list_incidents)
        router.add_post("/api/incidents", self.create_incident)
        router.add_get("/api/incidents/{id}", self.get_incident)
        router.add_post("/api/incidents/{id}/updates", self.update_incident)
        router.add_post("/api/incidents/{id}/resolve", self.resolve_incident)

    def _known_service(self, name: str) -> None:
        if name not in {s.name for s in self.config.services}:
            raise BadRequest(400, f"unknown service {name!r}")

    async def list_maintenance(self, request: web.Request) -> web.Response:
        """Maintenance windows: current ones (``?scope=all`` adds the past ones)."""
        scope = request.query.get("scope", "current")
        service = request.query.get("service")
        if scope not in ("current", "all"):
            return error_response(400, "scope must be 'current' or 'all'")
        if service is not None:
            try:
                self._known_service(service)
            except BadRequest as exc:
                return error_response(exc.status, str(exc))
        now = self._source.clock.now()
        records = {r.window.id: r for r in await self._source.store.maintenance_records()}
        windows = [
            w
            for w in self._source.eligibility.windows()
            if (scope == "all" or w.end > now) and (service is None or w.service == service)
        ]
        # Stored windows the daemon has not reloaded yet (added by the CLI this second).
        seen = {w.id for w in windows}
        windows += [
            r.window
            for r in records.values()
            if r.window.id not in seen
            and (scope == "all" or r.window.end > now)
            and (service is None or r.window.service == service)
        ]
        windows.sort(key=lambda w: (w.start, w.end, w.id))
        return web.json_response(
            {
                "maintenance": [
                    maintenance_dict(
                        w,
                        now,
                        r.created_by if (r := records.get(w.id)) else None,
                        r.origin if r else None,
                    )
                    for w in windows
                ]
            }
        )

    async def _write(
        self,
        request: web.Request,
        action: Callable[[], Awaitable[web.Response]],
        scope: Scope = "maintenance",
    ) -> web.Response:
        refused = self._authorized(request, scope)
        if refused is not None:
            return refused
        try:
            return await action()
        except BadRequest as exc:
            return error_response(exc.status, str(exc))
        except MaintenanceError as exc:
            return error_response(exc.status, str(exc))

    async def create_maintenance(self, request: web.Request) -> web.Response:
        """Announce a maintenance window (announced now) and tell the subscribers."""

        async def action() -> web.Response:
            body = await parse_body(request, MaintenanceIn)
            origin = f"api token {request.get(TOKEN_KEY, '?')} from {request.remote}"
            window = await self._source.maintenance.add(
                body.service,
                body.start.timestamp(),
                body.end.timestamp(),
                body.reason,
                body.by,
                origin=origin,
            )
            now = self._source.clock.now()
            return web.json_response(
                {"maintenance": maintenance_dict(window, now, body.by, origin)}, status=201
            )

        return await self._write(request, action)

    async def replace_maintenance(self, request: web.Request) -> web.Response:
        """Replace a stored window's times and reason (its service cannot change)."""

        async def action() -> web.Response:
            window = await self._source.maintenance.stored(request.match_info["id"])
            body = await parse_body(request, MaintenanceIn)
            if body.service != window.service:
                raise BadRequest(400, "the service of a window cannot change")
            changed = await self._source.maintenance.change(
                window.id,
                start=body.start.timestamp(),
                end=body.end.timestamp(),
                reason=body.reason,
            )
            return web.json_response(
                {"maintenance": maintenance_dict(changed, self._source.clock.now())}
            )

        return await self._write(request, action)

    async def patch_maintenance(self, request: web.Request) -> web.Response:
        """Change some of a stored window's start, end and reason."""

        async def action() -> web.Response:
            window = await self._source.maintenance.stored(request.match_info["id"])
            body = await parse_body(request, MaintenancePatch)
            changed = await self._source.maintenance.change(
                window.id,
                start=body.start.timestamp() if body.start else None,
                end=body.end.timestamp() if body.end else None,
                reason=body.reason or None,
            )
            return web.json_response(
                {"maintenance": maintenance_dict(changed, self._source.clock.now())}
            )

        return await self._write(request, action)

    async def delete_maintenance(self, request: web.Request) -> web.Response:
        """Cancel (soft-delete) a stored window."""

        async def action() -> web.Response:
            by = request.query.get("by", "api")[:100] or "api"
            window = await self._source.maintenance.remove(request.match_info["id"], by)
            return web.json_response(
                {"removed": maintenance_dict(window, self._source.clock.now())}
            )

        return await self._write(request, action)

    # --- incidents ---------------------------------------------------------------------------

    async def list_incidents(self, request: web.Request) -> web.Response:
        """Incidents newest first: ``?status=open|all`` (default all), ``?limit=``."""
        status = request.query.get("status", "all")
        if status not in ("open", "all"):
            return error_response(400, "status must be 'open' or 'all'")
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return error_response(400, "limit must be an integer")
        if not 1 <= limit <= 1000:
            return error_response(400, "limit must be between 1 and 1000")
        service = request.query.get("service")
        if service is not None and service not in {s.name for s in self.config.services}:
            return error_response(400, f"unknown service {service!r}")
        found = await self._source.incidents.find(open_only=status == "open", limit=10_000)
        chosen = [i for i in found if service is None or i.service == service][:limit]
        return web.json_response({"incidents": [incident_dict(i) for i in chosen]})

    async def get_incident(self, request: web.Request) -> web.Response:
        """One incident with its timeline."""
        incident = await self._source.incidents.get(request.match_info["id"])
        if incident is None:
            return error_response(404, "no such incident")
        return web.json_response({"incident": incident_dict(incident)})

    async def create_incident(self, request: web.Request) -> web.Response:
        """Open an incident by hand (a problem the probes cannot see)."""

        async def action() -> web.Response:
            body = await parse_body(request, IncidentIn)
            self._known_service(body.service)
            now = self._source.clock.now()
            started = body.started_at.timestamp() if body.started_at else now
            if started > now + 60:
                raise BadRequest(400, "started_at must not be in the future")
            incident = await self._source.incidents.open(
                body.service, body.title, body.message.strip(), body.by, started_at=started
            )
            return web.json_response({"incident": incident_dict(incident)}, status=201)

        return await self._write(request, action, "incidents")

    async def _open_incident(self, incident_id: str) -> Incident:
        incident = await self._source.incidents.get(incident_id)
        if incident is None:
            raise BadRequest(404, "no such incident")
        if not incident.is_open:
            raise BadRequest(409, "the incident is already resolved")
        return incident

    async def update_incident(self, request: web.Request) -> web.Response:
        """Add a human message (and optionally a new status) to an open incident."""

        async def action() -> web.Response:
            incident = await self._open_incident(request.match_info["id"])
            body = await parse_body(request, IncidentUpdateIn)
            status = body.status or incident.status
            if status not in UPDATE_STATUSES:  # pragma: no cover - open means not resolved
                status = "investigating"
            changed = await self._source.incidents.post_update(
                incident.id, status, body.message.strip(), body.by
            )
            if changed is None:
                raise BadRequest(409, "the incident is already resolved")
            return web.json_response({"incident": incident_dict(changed)}, status=201)

        return await self._write(request, action, "incidents")

    async def resolve_incident(self, request: web.Request) -> web.Response:
        """Resolve an open incident with a closing message."""

        async def action() -> web.Response:
            incident = await self._open_incident(request.match_info["id"])
            body = await parse_body(request, IncidentResolveIn, optional=True)
            changed = await self._source.incidents.resolve(
                incident.id, body.message.strip(), body.by
            )
            if changed is None:
                raise BadRequest(409, "the incident is already resolved")
            return web.json_response({"incident": incident_dict(changed)})

        return await self._write(request, action, "incidents")
