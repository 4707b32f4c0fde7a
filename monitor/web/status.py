"""The public status page, its live updates and feed, and the JSON API for maintenance and
incidents.

Routes (registered on the daemon's aiohttp server by ``StatusSite.register``):

- ``GET /`` and ``/status``: the page, rendered on the server (Jinja2), complete without
  JavaScript; ``static/status.js`` swaps in ``/status/fragment`` when ``/api/events``
  (server-sent events) says something changed.
- ``GET /api/status``: what the page shows, as JSON; ``GET /api/events``: the same, pushed.
- ``GET /feed.atom``: incidents and maintenance as an Atom feed.
- ``GET|POST /api/maintenance``, ``PUT|PATCH|DELETE /api/maintenance/{id}``.
- ``GET|POST /api/incidents``, ``GET /api/incidents/{id}``,
  ``POST /api/incidents/{id}/updates``, ``POST /api/incidents/{id}/resolve``.
- ``GET /api/openapi.json`` (monitor.web.openapi).

Reads are open unless ``server.public_reads`` is false; every write needs the bearer token.
Bad input is refused with a 4xx JSON error before anything changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import jinja2
from aiohttp import web
from pydantic import BaseModel, ValidationError

from monitor import __version__
from monitor.clock import Clock
from monitor.config import AvailabilityObjective, Config
from monitor.incidents import (
    DETECTOR,
    UPDATE_STATUSES,
    IncidentBook,
    IncidentDetector,
    StatusEvent,
)
from monitor.maintenance import MaintenanceError, MaintenanceService
from monitor.sla.counts import availability
from monitor.sla.eligibility import Eligibility, MaintenanceWindow
from monitor.sla.figures import ObjectiveFigures
from monitor.sla.minutes import MinuteCode
from monitor.store import Incident, Store
from monitor.timeparse import iso_utc as iso
from monitor.web.openapi import (
    IncidentIn,
    IncidentResolveIn,
    IncidentUpdateIn,
    MaintenanceIn,
    MaintenancePatch,
    openapi_document,
)

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates" / "status"
STATIC_DIR = PACKAGE_DIR / "static"
LANGUAGES = ("en", "fr", "nl")
#: Service states, best first; the page's overall state is the worst of its services.
STATES = ("operational", "maintenance", "degraded", "down")
#: Resolved incidents listed on the page (older ones are in the API and the feed).
RECENT_DAYS = 14
#: Daily availability below this is drawn as bad (between it and the target: warning).
BAD_DAY_RATIO = 0.95
_AUTH_FREE = frozenset({"/api/openapi.json"})

Authorize = Callable[[web.Request], web.Response | None]
_Model = TypeVar("_Model", bound=BaseModel)
#: (up, down) minutes per (service, local day).
_Counts = dict[tuple[str, dt.date], tuple[int, int]]


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


class _BadRequest(Exception):
    """A request refused with a 4xx JSON error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _parse(request: web.Request, model: type[_Model], *, optional: bool = False) -> _Model:
    """The request's JSON body as ``model``; _BadRequest when it is not."""
    raw = await request.read()  # over client_max_size: 413 from aiohttp
    if not raw.strip() and optional:
        raw = b"{}"
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest(400, "the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise _BadRequest(400, "the body must be a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise _BadRequest(400, f"invalid {model.__name__}: {details}") from None


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
    window: MaintenanceWindow, now: float, created_by: str | None = None
) -> dict[str, Any]:
    """A maintenance window as the API shows it."""
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
    }


@dataclass(frozen=True, slots=True)
class _Day:
    date: dt.date
    up: int
    down: int

    @property
    def ratio(self) -> float | None:
        return availability(self.up, self.down)


class Translator:
    """Messages in English, French and Dutch from ``templates/status/messages.json``."""

    def __init__(self, path: Path = TEMPLATES_DIR / "messages.json") -> None:
        self.messages: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))

    def __call__(self, lang: str, key: str, **values: object) -> str:
        """The message ``key`` in ``lang`` (English when missing), formatted."""
        table = self.messages.get(lang, {})
        text = table.get(key) or self.messages["en"].get(key, key)
        return text.format(**values) if values else text


def pick_language(request: web.Request) -> str:
    """``?lang=``, then the ``lang`` cookie, then Accept-Language, then English."""
    asked = request.query.get("lang", "").lower()
    if asked in LANGUAGES:
        return asked
    cookie = request.cookies.get("lang", "")
    if cookie in LANGUAGES:
        return cookie
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(request.headers.get("Accept-Language", "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, index, primary))
    return min(choices)[2] if choices else "en"


def format_ratio(value: float | None, lang: str) -> str:
    """A ratio as a percentage with three decimals, in the language's style."""
    if value is None:
        return "\u2013"
    text = f"{value * 100:.3f}"
    if lang == "en":
        return f"{text}%"
    text = text.replace(".", ",")
    return f"{text}\u202f%" if lang == "fr" else f"{text}%"


class StatusSite:
    """Builds what the page and the API show, and serves them.

    Args:
        source: the daemon (config, clock, store, eligibility, incidents, figures).
    """

    def __init__(self, source: StatusSource) -> None:
        self._source = source
        self.config = source.config
        self._zone = source.config.zone
        self.translate = Translator()
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._past: tuple[dt.date, _Counts] | None = None
        self._today: tuple[int, _Counts] | None = None
        #: The availability objective whose minutes make each service's daily bar.
        self._objective_of = {
            s.name: next(o.name for o in s.objectives if isinstance(o, AvailabilityObjective))
            for s in self.config.services
            if any(isinstance(o, AvailabilityObjective) for o in s.objectives)
        }
        self._closing = asyncio.Event()
        self._authorized: Authorize = lambda request: _error(403, "writes are disabled")

    # --- wiring ----------------------------------------------------------------------------

    def register(self, app: web.Application, authorized: Authorize) -> None:
        """Add the routes (and, unless reads are public, a guard on them) to ``app``."""
        self._authorized = authorized
        if not self.config.server.public_reads:
            app.middlewares.append(self._guard_reads)
        app.on_shutdown.append(self._on_shutdown)
        router = app.router
        router.add_get("/", self.page)
        router.add_get("/status", self.page)
        router.add_get("/status/fragment", self.fragment)
        router.add_get("/feed.atom", self.feed)
        router.add_get("/api/status", self.api_status)
        router.add_get("/api/events", self.events)
        router.add_get("/api/openapi.json", self.openapi)
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
        router.add_static("/static/", STATIC_DIR, name="static")

    @web.middleware
    async def _guard_reads(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """With ``public_reads: false``, reads of the page, feed and API need the token."""
        guarded = request.method in ("GET", "HEAD") and (
            request.path in ("/", "/status", "/status/fragment", "/feed.atom")
            or (request.path.startswith("/api/") and request.path not in _AUTH_FREE)
        )
        if guarded:
            refused = self._authorized(request)
            if refused is not None:
                return refused
        return await handler(request)

    async def _on_shutdown(self, app: web.Application) -> None:
        self._closing.set()  # ends the event streams, so the server stops at once

    # --- the model -------------------------------------------------------------------------

    def history_changed(self) -> None:
        """Sealed minutes were re-decided: read the past days' bars again."""
        self._past = None

    async def snapshot(self, *, history: bool = True) -> dict[str, Any]:
        """Everything the page shows, JSON-ready."""
        source, config = self._source, self.config
        now = source.clock.now()
        figures = source.figures_at(now)
        incidents = await source.incidents.find(since=now - config.status.history_days * 86400)
        open_services = {i.service for i in incidents if i.is_open}
        down = source.incident_detector.down_services()
        days = await self._daily(now) if history else {}
        windows = [w for w in source.eligibility.windows() if w.end > now]
        services = []
        for service in config.services:
            objectives = [f for f in figures if f.service == service.name]
            state = "operational"
            if source.eligibility.maintenance_at(service.name, now) is not None:
                state = "maintenance"
            elif service.name in down:
                state = "down"
            elif service.name in open_services or any(
                (f.windows[w].burn_rate or 0.0) > 1.0 for f in objectives for w in ("1h", "24h")
            ):
                state = "degraded"
            entry: dict[str, Any] = {
                "name": service.name,
                "description": service.description,
                "state": state,
                "objectives": [
                    {
                        "name": f.objective,
                        "kind": f.kind,
                        "target": f.target_ratio,
                        "threshold_s": f.threshold_s,
                        "month": f.windows["month"].compliance,
                        "met": f.windows["month"].met,
                        "burn_rate_1h": f.windows["1h"].burn_rate,
                        "burn_rate_24h": f.windows["24h"].burn_rate,
                    }
                    for f in objectives
                ],
                "maintenance": [
                    maintenance_dict(w, now) for w in windows if w.service == service.name
                ],
            }
            if history:
                entry["history"] = self._history_of(service.name, days, incidents, now)
            services.append(entry)
        overall = max((s["state"] for s in services), key=STATES.index, default="operational")
        shown = [
            i for i in incidents if i.is_open or (i.resolved_at or 0) >= now - RECENT_DAYS * 86400
        ]
        return {
            "generated_at": iso(now),
            "title": config.status.title,
            "timezone": config.timezone,
            "overall": overall,
            "services": services,
            "maintenance": [maintenance_dict(w, now) for w in windows],
            "incidents": [incident_dict(i) for i in shown],
        }

    async def _daily(self, now: float) -> dict[str, list[_Day]]:
        """Per service, up and down minutes of its first availability objective per local
        day, oldest first. Past days are read once a day (sealed history does not change);
        today at most once a minute."""
        days_shown = self.config.status.history_days
        today = dt.datetime.fromtimestamp(now, self._zone).date()
        first_day = today - dt.timedelta(days=days_shown - 1)
        midnight = int(dt.datetime.combine(today, dt.time(), self._zone).timestamp() // 60)
        if self._past is None or self._past[0] != today:
            first = dt.datetime.combine(first_day, dt.time(), self._zone).timestamp()
            self._past = (today, await self._counts(int(first // 60), midnight))
        minute = int(now // 60)
        if self._today is None or self._today[0] != minute:
            self._today = (minute, await self._counts(midnight, minute + 1))
        counts = {**self._past[1], **self._today[1]}
        return {
            service: [
                _Day(day, *counts.get((service, day), (0, 0)))
                for day in (first_day + dt.timedelta(days=n) for n in range(days_shown))
            ]
            for service in self._objective_of
        }

    async def _counts(self, first: int, end: int) -> _Counts:
        """(up, down) minutes per (service, local day) over epoch minutes [first, end)."""
        counts: _Counts = {}
        # 15-minute buckets never straddle a local midnight (offsets are whole quarters).
        for (
            service,
            bucket,
            objective,
            state,
            minutes,
        ) in await self._source.store.minute_state_counts(first, end, 15):
            if self._objective_of.get(service) != objective or state not in ("up", "down"):
                continue
            day = dt.datetime.fromtimestamp(bucket * 60, self._zone).date()
            up, down = counts.get((service, day), (0, 0))
            if state == MinuteCode.UP.label:
                counts[(service, day)] = (up + minutes, down)
            else:
                counts[(service, day)] = (up, down + minutes)
        return counts

    def _history_of(
        self,
        service: str,
        days: dict[str, list[_Day]],
        incidents: list[Incident],
        now: float,
    ) -> list[dict[str, Any]]:
        if service not in days:
            return []
        target = next(
            o.target_ratio
            for o in self.config.service(service).objectives
            if isinstance(o, AvailabilityObjective)
        )
        out = []
        for day in days[service]:
            start = dt.datetime.combine(day.date, dt.time(), self._zone).timestamp()
            end = start + 86400
            ids = [
                i.id
                for i in incidents
                if i.service == service
                and i.started_at < end
                and (i.resolved_at is None or i.resolved_at >= start)
                and i.started_at <= now
            ]
            ratio = day.ratio
            level = (
                "none"
                if ratio is None
                else "ok"
                if ratio >= target
                else "warn"
                if ratio >= BAD_DAY_RATIO
                else "bad"
            )
            out.append(
                {
                    "date": day.date.isoformat(),
                    "availability": ratio,
                    "up_minutes": day.up,
                    "down_minutes": day.down,
                    "level": level,
                    "incidents": ids,
                }
            )
        return out

    # --- pages -----------------------------------------------------------------------------

    def _context(self, snapshot: dict[str, Any], lang: str) -> dict[str, Any]:
        zone = self._zone
        translate = self.translate

        def t(key: str, **values: object) -> str:
            return translate(lang, key, **values)

        def when(text: str | None) -> str:
            if text is None:
                return "\u2013"
            moment = dt.datetime.fromisoformat(text).astimezone(zone)
            return moment.strftime("%Y-%m-%d %H:%M %Z")

        def incident_title(incident: dict[str, Any]) -> str:
            if incident["source"] == "detected":
                return t("auto_title", service=incident["service"])
            return str(incident["title"])

        def update_message(incident: dict[str, Any], update: dict[str, Any]) -> str:
            if update["author"] == DETECTOR:
                key = "auto_resolved" if update["status"] == "resolved" else "auto_opened"
                return t(key, service=incident["service"])
            return str(update["message"])

        def incident_titles(ids: list[str]) -> str:
            known = context["incidents_by_id"]
            return ", ".join(incident_title(known[i]) for i in ids if i in known)

        context: dict[str, Any] = {
            "lang": lang,
            "languages": LANGUAGES,
            "incident_titles": incident_titles,
            "t": t,
            "s": snapshot,
            "pct": lambda value: format_ratio(value, lang),
            "when": when,
            "incident_title": incident_title,
            "update_message": update_message,
            "incidents_by_id": {i["id"]: i for i in snapshot["incidents"]},
            "version": __version__,
            "refresh_s": self.config.status.refresh_interval,
            "history_days": self.config.status.history_days,
            "recent_days": RECENT_DAYS,
        }
        return context

    async def _all_incidents_by_id(self, snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
        now = self._source.clock.now()
        since = now - self.config.status.history_days * 86400
        return {
            i.id: incident_dict(i)
            for i in await self._source.incidents.find(since=since, limit=1000)
        }

    async def _render(self, request: web.Request, template: str) -> web.Response:
        lang = pick_language(request)
        snapshot = await self.snapshot()
        context = self._context(snapshot, lang)
        context["incidents_by_id"] = await self._all_incidents_by_id(snapshot)
        html = self._env.get_template(template).render(context)
        response = web.Response(text=html, content_type="text/html", charset="utf-8")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Language"] = lang
        response.headers["Vary"] = "Accept-Language, Cookie"
        if request.query.get("lang", "").lower() in LANGUAGES:
            response.set_cookie("lang", lang, max_age=365 * 86400, path="/", samesite="Lax")
        return response

    async def page(self, request: web.Request) -> web.Response:
        """The status page."""
        return await self._render(request, "page.html")

    async def fragment(self, request: web.Request) -> web.Response:
        """The page's main content alone, for the live refresh."""
        return await self._render(request, "main.html")

    async def api_status(self, request: web.Request) -> web.Response:
        """What the page shows, as JSON."""
        return web.json_response(await self.snapshot())

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: ``status`` (the snapshot without history) when it changes."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        interval = float(self.config.status.refresh_interval)
        last = ""
        try:
            await response.write(f"retry: {int(interval * 1000)}\n\n".encode())
            while not self._closing.is_set():
                body = json.dumps(await self.snapshot(history=False), separators=(",", ":"))
                digest = hashlib.sha256(body.encode()).hexdigest()
                if digest != last:
                    last = digest
                    await response.write(
                        f"event: status\nid: {digest[:16]}\ndata: {body}\n\n".encode()
                    )
                else:
                    await response.write(b": still here\n\n")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), interval)
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away
        return response

    async def feed(self, request: web.Request) -> web.Response:
        """Incidents and maintenance windows as an Atom feed (newest first)."""
        lang = pick_language(request)
        t = self.translate
        now = self._source.clock.now()
        base = str(request.url.origin())
        ns = "http://www.w3.org/2005/Atom"
        ET.register_namespace("", ns)
        root = ET.Element(f"{{{ns}}}feed", {"xml:lang": lang})

        def add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
            element = ET.SubElement(parent, f"{{{ns}}}{tag}", attrs)
            if text is not None:
                element.text = text
            return element

        add(root, "id", f"{base}/feed.atom")
        add(root, "title", self.config.status.title)
        add(root, "link", href=f"{base}/status?lang={lang}", rel="alternate")
        add(root, "link", href=f"{base}/feed.atom", rel="self")
        add(root, "generator", "sla-monitor", version=__version__)
        entries: list[tuple[float, ET.Element]] = []
        since = now - self.config.status.history_days * 86400
        for incident in await self._source.incidents.find(since=since, limit=200):
            entry = ET.Element(f"{{{ns}}}entry")
            title = (
                t(lang, "auto_title", service=incident.service)
                if incident.source == "detected"
                else incident.title
            )
            state = t(lang, f"update_{incident.status}")
            add(entry, "id", f"{base}/api/incidents/{incident.id}")
            add(entry, "title", f"[{incident.service}] {title} ({state})")
            updated = max([incident.started_at, *(u.at for u in incident.updates)])
            add(entry, "updated", iso(updated))
            add(entry, "published", iso(incident.started_at))
            add(entry, "link", href=f"{base}/status?lang={lang}#incident-{incident.id}")
            add(entry, "category", term="incident")
            lines = [
                f"{iso(u.at)} {t(lang, 'update_' + u.status)}: "
                + (
                    t(
                        lang,
                        "auto_resolved" if u.status == "resolved" else "auto_opened",
                        service=incident.service,
                    )
                    if u.author == DETECTOR
                    else u.message
                )
                for u in reversed(incident.updates)
            ]
            add(entry, "content", "\n".join(lines), type="text")
            entries.append((updated, entry))
        records = await self._source.store.maintenance_records()
        config_windows = [w for w in self._source.eligibility.windows() if w.source == "config"]
        for window in [*(r.window for r in records), *config_windows]:
            # When users were told (the daemon's clock); a config window without date: start.
            created = window.announced_at if math.isfinite(window.announced_at) else window.start
            if window.end < since:
                continue
            entry = ET.Element(f"{{{ns}}}entry")
            add(entry, "id", f"{base}/api/maintenance/{window.id}")
            add(
                entry,
                "title",
                f"[{window.service}] {t(lang, 'maintenance_entry')}: {window.reason}",
            )
            add(entry, "updated", iso(created) or iso(now))
            add(entry, "link", href=f"{base}/status?lang={lang}#maintenance-{window.id}")
            add(entry, "category", term="maintenance")
            add(
                entry,
                "content",
                f"{iso(window.start)} / {iso(window.end)}: {window.reason}",
                type="text",
            )
            entries.append((created, entry))
        entries.sort(key=lambda pair: -pair[0])
        add(root, "updated", iso(max([e[0] for e in entries], default=now)))
        add(root, "author").append(_named(ns, self.config.status.title))
        for _, entry in entries[:200]:
            root.append(entry)
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")

    async def openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 description of the JSON API."""
        paths = {r.resource.canonical for r in request.app.router.routes() if r.resource}
        return web.json_response(openapi_document(self.config, paths))

    # --- maintenance -------------------------------------------------------------------------

    def _known_service(self, name: str) -> None:
        if name not in {s.name for s in self.config.services}:
            raise _BadRequest(400, f"unknown service {name!r}")

    async def list_maintenance(self, request: web.Request) -> web.Response:
        """Maintenance windows: current ones (``?scope=all`` adds the past ones)."""
        scope = request.query.get("scope", "current")
        service = request.query.get("service")
        if scope not in ("current", "all"):
            return _error(400, "scope must be 'current' or 'all'")
        if service is not None:
            try:
                self._known_service(service)
            except _BadRequest as exc:
                return _error(exc.status, str(exc))
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
                    maintenance_dict(w, now, r.created_by if (r := records.get(w.id)) else None)
                    for w in windows
                ]
            }
        )

    async def _write(
        self, request: web.Request, action: Callable[[], Awaitable[web.Response]]
    ) -> web.Response:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        try:
            return await action()
        except _BadRequest as exc:
            return _error(exc.status, str(exc))
        except MaintenanceError as exc:
            return _error(exc.status, str(exc))

    async def create_maintenance(self, request: web.Request) -> web.Response:
        """Announce a maintenance window (announced now) and tell the subscribers."""

        async def action() -> web.Response:
            body = await _parse(request, MaintenanceIn)
            window = await self._source.maintenance.add(
                body.service, body.start.timestamp(), body.end.timestamp(), body.reason, body.by
            )
            now = self._source.clock.now()
            return web.json_response(
                {"maintenance": maintenance_dict(window, now, body.by)}, status=201
            )

        return await self._write(request, action)

    async def replace_maintenance(self, request: web.Request) -> web.Response:
        """Replace a stored window's times and reason (its service cannot change)."""

        async def action() -> web.Response:
            window = await self._source.maintenance.stored(request.match_info["id"])
            body = await _parse(request, MaintenanceIn)
            if body.service != window.service:
                raise _BadRequest(400, "the service of a window cannot change")
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
            body = await _parse(request, MaintenancePatch)
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
            return _error(400, "status must be 'open' or 'all'")
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _error(400, "limit must be an integer")
        if not 1 <= limit <= 1000:
            return _error(400, "limit must be between 1 and 1000")
        service = request.query.get("service")
        if service is not None and service not in {s.name for s in self.config.services}:
            return _error(400, f"unknown service {service!r}")
        found = await self._source.incidents.find(open_only=status == "open", limit=10_000)
        chosen = [i for i in found if service is None or i.service == service][:limit]
        return web.json_response({"incidents": [incident_dict(i) for i in chosen]})

    async def get_incident(self, request: web.Request) -> web.Response:
        """One incident with its timeline."""
        incident = await self._source.incidents.get(request.match_info["id"])
        if incident is None:
            return _error(404, "no such incident")
        return web.json_response({"incident": incident_dict(incident)})

    async def create_incident(self, request: web.Request) -> web.Response:
        """Open an incident by hand (a problem the probes cannot see)."""

        async def action() -> web.Response:
            body = await _parse(request, IncidentIn)
            self._known_service(body.service)
            now = self._source.clock.now()
            started = body.started_at.timestamp() if body.started_at else now
            if started > now + 60:
                raise _BadRequest(400, "started_at must not be in the future")
            incident = await self._source.incidents.open(
                body.service, body.title, body.message.strip(), body.by, started_at=started
            )
            return web.json_response({"incident": incident_dict(incident)}, status=201)

        return await self._write(request, action)

    async def _open_incident(self, incident_id: str) -> Incident:
        incident = await self._source.incidents.get(incident_id)
        if incident is None:
            raise _BadRequest(404, "no such incident")
        if not incident.is_open:
            raise _BadRequest(409, "the incident is already resolved")
        return incident

    async def update_incident(self, request: web.Request) -> web.Response:
        """Add a human message (and optionally a new status) to an open incident."""

        async def action() -> web.Response:
            incident = await self._open_incident(request.match_info["id"])
            body = await _parse(request, IncidentUpdateIn)
            status = body.status or incident.status
            if status not in UPDATE_STATUSES:  # pragma: no cover - open means not resolved
                status = "investigating"
            changed = await self._source.incidents.post_update(
                incident.id, status, body.message.strip(), body.by
            )
            if changed is None:
                raise _BadRequest(409, "the incident is already resolved")
            return web.json_response({"incident": incident_dict(changed)}, status=201)

        return await self._write(request, action)

    async def resolve_incident(self, request: web.Request) -> web.Response:
        """Resolve an open incident with a closing message."""

        async def action() -> web.Response:
            incident = await self._open_incident(request.match_info["id"])
            body = await _parse(request, IncidentResolveIn, optional=True)
            changed = await self._source.incidents.resolve(
                incident.id, body.message.strip(), body.by
            )
            if changed is None:
                raise _BadRequest(409, "the incident is already resolved")
            return web.json_response({"incident": incident_dict(changed)})

        return await self._write(request, action)


def _named(ns: str, name: str) -> ET.Element:
    element = ET.Element(f"{{{ns}}}name")
    element.text = name
    return element
