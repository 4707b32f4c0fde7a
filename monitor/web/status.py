"""The public status page, its live updates and feed; it registers the write API
(``monitor.web.api``) beside it.

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
from typing import Any

import jinja2
from aiohttp import web

from monitor import __version__
from monitor.config import AvailabilityObjective
from monitor.incidents import (
    DETECTOR,
)
from monitor.sla.counts import availability
from monitor.sla.minutes import MinuteCode
from monitor.store import Incident
from monitor.timeparse import iso_utc as iso
from monitor.web.api import WriteApi
from monitor.web.i18n import LANGUAGES, TEMPLATES_DIR, Translator, format_ratio, pick_language
from monitor.web.openapi import (
    openapi_document,
)
from monitor.web.views import (
    Authorize,
    StatusSource,
    error_response,
    incident_dict,
    maintenance_dict,
)

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
STATIC_DIR = PACKAGE_DIR / "static"
#: Service states, best first; the page's overall state is the worst of its services.
STATES = ("operational", "maintenance", "degraded", "down")
#: Resolved incidents listed on the page (older ones are in the API and the feed).
RECENT_DAYS = 14
#: Daily availability below this is drawn as bad (between it and the target: warning).
BAD_DAY_RATIO = 0.95
_AUTH_FREE = frozenset({"/api/openapi.json"})

#: (up, down) minutes per (service, local day).
_Counts = dict[tuple[str, dt.date], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class _Day:
    date: dt.date
    up: int
    down: int

    @property
    def ratio(self) -> float | None:
        return availability(self.up, self.down)


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
        self._authorized: Authorize = lambda request, scope: error_response(
            403, "writes are disabled"
        )

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
        WriteApi(self._source, authorized).register(router)
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
            refused = self._authorized(request, "read")
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
                        "verdict": f.windows["month"].verdict.value,
                        "coverage": f.windows["month"].coverage,
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
            "title": config.status.title_in("en") or "Service status",
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
            "title": self.config.status.title_in(lang) or t("page_title"),
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
        add(root, "title", self.config.status.title_in(lang) or t(lang, "page_title"))
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
        title = self.config.status.title_in(lang) or t(lang, "page_title")
        add(root, "author").append(_named(ns, title))
        for _, entry in entries[:200]:
            root.append(entry)
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")

    async def openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 description of the JSON API."""
        paths = {r.resource.canonical for r in request.app.router.routes() if r.resource}
        return web.json_response(openapi_document(self.config, paths))

    # --- maintenance -------------------------------------------------------------------------


def _named(ns: str, name: str) -> ET.Element:
    element = ET.Element(f"{{{ns}}}name")
    element.text = name
    return element
