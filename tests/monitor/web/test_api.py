"""The status page's JSON API over HTTP: auth, bad input, the OpenAPI document (validated,
and fuzzed with schemathesis), the feed and the language choice."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate as validate_openapi

from monitor.app import Daemon
from monitor.config import Config
from monitor.store import MemoryStore
from monitor.store.records import DayDigest
from tests.fakes import FakeClock
from tests.support.schemathesis import run_schemathesis
from tests.support.stack import validate

TOKEN = "t0ken-for-the-api-tests"
T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
GOOD = {"Authorization": f"Bearer {TOKEN}"}
#: How a window posted with it is recorded: the admin token's name and the peer.
ORIGIN = "api token default from 127.0.0.1"


def _config(**overrides: Any) -> Config:
    document: dict[str, Any] = {
        "server": {"listen": "127.0.0.1:0", "api_token_env": "STATUS_TEST_TOKEN"},
        "services": [
            {
                "name": name,
                "probes": [{"name": "p", "kind": "http", "url": "http://127.0.0.1:9/x"}],
                "objectives": [{"name": "availability", "kind": "availability", "target": 99}],
                "maintenance": [
                    {
                        "start": "2026-11-20T01:00:00Z",
                        "end": "2026-11-20T02:00:00Z",
                        "reason": "from the config",
                    }
                ]
                if name == "a"
                else [],
            }
            for name in ("a", "b")
        ],
        "alerting": {"notifiers": {"log": {"kind": "log"}, "users": {"kind": "log"}}},
        "status": {"subscribers": [{"service": "a", "notifier": "users"}]},
    }
    for key, value in overrides.items():
        document[key] = {**document.get(key, {}), **value}
    return validate(document)


class Api:
    """A daemon's HTTP server alone (no probes) on a free port, with a client."""

    def __init__(self, daemon: Daemon, client: httpx.AsyncClient) -> None:
        self.daemon = daemon
        self.client = client
        self.url = daemon.server.url

    async def state(self) -> tuple[Any, Any]:
        """Everything a write could change, as the API shows it."""
        maintenance = (await self.client.get("/api/maintenance?scope=all")).json()
        incidents = (await self.client.get("/api/incidents")).json()
        return maintenance, incidents


async def _serve(config: Config, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    monkeypatch.setenv("STATUS_TEST_TOKEN", TOKEN)
    daemon = Daemon(config, clock=FakeClock(T0), store=MemoryStore(clock=FakeClock(T0)))
    await daemon.store.open()
    await daemon.reload_maintenance()
    await daemon.server.start()
    try:
        async with httpx.AsyncClient(base_url=daemon.server.url, timeout=10) as client:
            yield Api(daemon, client)
    finally:
        await daemon.server.stop()
        await daemon.store.aclose()


@pytest.fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    async for served in _serve(_config(), monkeypatch):
        yield served


def _window(**changes: Any) -> dict[str, Any]:
    body = {
        "service": "a",
        "start": "2026-11-19T10:00:00+01:00",
        "end": "2026-11-19T12:00:00+01:00",
        "reason": "database upgrade",
    }
    return {**body, **changes}


# --- maintenance ----------------------------------------------------------------------------


async def test_maintenance_lifecycle_and_user_notices(api: Api) -> None:
    created = await api.client.post("/api/maintenance", json=_window(), headers=GOOD)
    assert created.status_code == 201, created.text
    window = created.json()["maintenance"]
    assert window["start"] == "2026-11-19T09:00:00Z"
    assert window["announced_at"] == "2026-11-18T11:06:40Z"  # announced now, by the API
    assert window["status"] == "upcoming"
    # The daemon excludes it at once (no wait for the housekeeping reload).
    assert api.daemon.eligibility.maintenance_at("a", T0 + 86400 - 3600) is not None
    listed = (await api.client.get("/api/maintenance")).json()["maintenance"]
    assert [w["source"] for w in listed] == ["store", "config"]
    # Where each came from, as authenticated: the token's name and the peer, not the body.
    assert [w["origin"] for w in listed] == [ORIGIN, "config file"]
    assert window["origin"] == ORIGIN

    patched = await api.client.patch(
        f"/api/maintenance/{window['id']}", json={"reason": "  bigger   upgrade "}, headers=GOOD
    )
    assert patched.status_code == 200
    assert patched.json()["maintenance"]["reason"] == "bigger upgrade"
    put = await api.client.put(
        f"/api/maintenance/{window['id']}",
        json=_window(end="2026-11-19T13:00:00+01:00"),
        headers=GOOD,
    )
    assert put.status_code == 200
    assert put.json()["maintenance"]["end"] == "2026-11-19T12:00:00Z"
    deleted = await api.client.delete(f"/api/maintenance/{window['id']}", headers=GOOD)
    assert deleted.status_code == 200
    assert [
        w["source"] for w in (await api.client.get("/api/maintenance")).json()["maintenance"]
    ] == ["config"]
    again = await api.client.delete(f"/api/maintenance/{window['id']}", headers=GOOD)
    assert again.status_code == 404
    kinds = [e.kind for e in api.daemon.notices.sent]
    assert kinds == [
        "maintenance_announced",
        "maintenance_updated",
        "maintenance_updated",
        "maintenance_cancelled",
    ]
    event = api.daemon.notices.sent[0].to_alert_event()
    assert event.labels["status_event"] == "maintenance_announced"
    assert event.labels["audience"] == "users"


async def test_config_windows_cannot_be_changed_through_the_api(api: Api) -> None:
    response = await api.client.delete("/api/maintenance/cfg-a-0", headers=GOOD)
    assert response.status_code == 409
    assert "config" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_window(end="2026-11-19T09:00:00+01:00"), "end must be after start"),
        (_window(service="nope"), "unknown service"),
        (_window(start="2026-11-19T10:00:00"), "timezone"),  # naive: refused, not guessed
        (_window(start="2026-11-18T01:00:00Z", end="2026-11-18T02:00:00Z"), "in the future"),
        (_window(reason="   "), "blank"),
        (_window(extra=1), "extra"),
        (_window(start=1795000000), "start"),
        ([_window()], "object"),
    ],
)
async def test_bad_maintenance_is_refused_and_changes_nothing(
    api: Api, body: Any, message: str
) -> None:
    before = await api.state()
    response = await api.client.post("/api/maintenance", json=body, headers=GOOD)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert await api.state() == before
    assert api.daemon.notices.sent == []


@pytest.mark.parametrize("raw", [b"{", b"not json", b"\xff\xfe", b'{"service": "a"', b"", b"null"])
async def test_malformed_json_is_refused(api: Api, raw: bytes) -> None:
    before = await api.state()
    for path in ("/api/maintenance", "/api/incidents"):
        response = await api.client.post(
            path, content=raw, headers={**GOOD, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, (path, raw, response.text)
        assert "error" in response.json()
    assert await api.state() == before


async def test_oversized_body_is_refused(api: Api) -> None:
    before = await api.state()
    body = json.dumps(_window(reason="x" * 20_000)).encode()
    response = await api.client.post(
        "/api/maintenance", content=body, headers={**GOOD, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "error" in response.json()
    assert await api.state() == before


# --- incidents ------------------------------------------------------------------------------


async def test_incident_lifecycle(api: Api) -> None:
    opened = await api.client.post(
        "/api/incidents",
        json={"service": "a", "title": "Slow answers", "message": "We are looking."},
        headers=GOOD,
    )
    assert opened.status_code == 201, opened.text
    incident = opened.json()["incident"]
    assert incident["status"] == "investigating"
    assert incident["source"] == "operator"
    path = f"/api/incidents/{incident['id']}"
    updated = await api.client.post(
        f"{path}/updates", json={"message": "A disk is full.", "status": "identified"}, headers=GOOD
    )
    assert updated.status_code == 201
    assert updated.json()["incident"]["status"] == "identified"
    status = (await api.client.get("/api/status")).json()
    service_a = next(s for s in status["services"] if s["name"] == "a")
    assert service_a["state"] == "degraded"  # an open incident is never "operational"
    resolved = await api.client.post(f"{path}/resolve", headers=GOOD)
    assert resolved.status_code == 200
    body = resolved.json()["incident"]
    assert body["status"] == "resolved"
    assert [u["status"] for u in body["updates"]] == ["investigating", "identified", "resolved"]
    assert (await api.client.post(f"{path}/resolve", headers=GOOD)).status_code == 409
    late = await api.client.post(f"{path}/updates", json={"message": "x"}, headers=GOOD)
    assert late.status_code == 409
    assert (await api.client.get("/api/incidents/999")).status_code == 404
    assert (await api.client.post("/api/incidents/999/resolve", headers=GOOD)).status_code == 404
    kinds = [e.kind for e in api.daemon.notices.sent]
    assert kinds == ["incident_opened", "incident_updated", "incident_resolved"]
    assert (await api.client.get("/api/incidents?status=open")).json()["incidents"] == []


async def test_incident_bad_input(api: Api) -> None:
    before = await api.state()
    for body in (
        {"service": "zz", "title": "t", "message": "m"},
        {"service": "a", "title": "", "message": "m"},
        {"service": "a", "title": "t"},
        {"service": "a", "title": "t", "message": "m", "started_at": "2030-01-01T00:00:00Z"},
    ):
        response = await api.client.post("/api/incidents", json=body, headers=GOOD)
        assert response.status_code == 400, body
    for query in ("status=closed", "limit=0", "limit=x", "service=zz"):
        assert (await api.client.get(f"/api/incidents?{query}")).status_code == 400
    assert await api.state() == before


# --- auth -----------------------------------------------------------------------------------

WRITES = [
    ("POST", "/api/maintenance", _window()),
    ("PUT", "/api/maintenance/1", _window()),
    ("PATCH", "/api/maintenance/1", {"reason": "changed"}),
    ("DELETE", "/api/maintenance/1", None),
    ("POST", "/api/incidents", {"service": "a", "title": "t", "message": "m"}),
    ("POST", "/api/incidents/1/updates", {"message": "m"}),
    ("POST", "/api/incidents/1/resolve", {}),
    ("POST", "/api/alerts/x/ack", {}),
]


async def _seed(api: Api) -> None:
    """One stored window and one open incident for the writes to aim at."""
    assert (await api.client.post("/api/maintenance", json=_window(), headers=GOOD)).is_success
    incident = {"service": "b", "title": "t", "message": "m"}
    assert (await api.client.post("/api/incidents", json=incident, headers=GOOD)).is_success


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "wrong", "basic", "longer", "empty"],
)
async def test_every_write_needs_the_token(api: Api, headers: dict[str, str]) -> None:
    await _seed(api)
    before = await api.state()
    sent = len(api.daemon.notices.sent)
    for method, path, body in WRITES:
        response = await api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "error" in response.json()
    assert await api.state() == before
    assert len(api.daemon.notices.sent) == sent


async def test_writes_are_disabled_without_a_configured_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config(server={"api_token_env": None})
    async for api in _serve(config, monkeypatch):
        before = await api.state()
        for method, path, body in WRITES:
            response = await api.client.request(method, path, json=body, headers=GOOD)
            assert response.status_code == 403, (method, path)
        assert await api.state() == before


async def test_private_reads_need_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    async for api in _serve(_config(server={"public_reads": False}), monkeypatch):
        for path in ("/", "/status", "/api/status", "/api/maintenance", "/feed.atom", "/api/sla"):
            assert (await api.client.get(path)).status_code == 401, path
            assert (await api.client.get(path, headers=GOOD)).status_code == 200, path
        for path in ("/healthz", "/metrics", "/api/openapi.json"):
            assert (await api.client.get(path)).status_code in (200, 503), path
        document = (await api.client.get("/api/openapi.json")).json()
        assert document["paths"]["/api/status"]["get"]["security"] == [{"bearer": []}]


# --- documents ------------------------------------------------------------------------------


async def test_openapi_document_is_valid_and_complete(api: Api) -> None:
    document = (await api.client.get("/api/openapi.json")).json()
    validate_openapi(document)
    assert document["openapi"].startswith("3.1")
    for path in (
        "/api/sla",
        "/api/status",
        "/api/maintenance",
        "/api/maintenance/{id}",
        "/api/incidents",
        "/api/incidents/{id}/updates",
        "/api/incidents/{id}/resolve",
        "/api/alerts",
        "/api/alerts/{alert_id}/ack",
        "/api/evidence",
    ):
        assert path in document["paths"], path
    maintenance = document["paths"]["/api/maintenance/{id}"]
    assert {"put", "patch", "delete"} <= set(maintenance)
    assert maintenance["put"]["security"] == [{"bearer": []}]
    assert document["paths"]["/api/maintenance"]["get"]["security"] == []
    service = document["components"]["schemas"]["MaintenanceIn"]["properties"]["service"]
    assert service["enum"] == ["a", "b"]
    reports = "/api/reports/{month}" in {
        r.resource.canonical for r in api.daemon.server.app.router.routes() if r.resource
    }
    assert ("/api/reports/{month}" in document["paths"]) == reports


async def test_evidence_shows_the_chains_head_and_newest_links_first(api: Api) -> None:
    empty = (await api.client.get("/api/evidence")).json()
    assert empty == {"head": None, "days_digested": 0, "first_day": None, "digests": []}
    links = [
        DayDigest(f"2026-11-{d:02d}", d, f"{d:064x}", f"{d - 1:064x}", f"{d + 100:064x}", T0)
        for d in range(1, 31)
    ]
    for link in links:
        assert await api.daemon.store.write_digest(link)
    shown = (await api.client.get("/api/evidence")).json()
    assert shown["head"] == {"date": "2026-11-30", "chain": f"{130:064x}"}
    assert shown["days_digested"] == 30
    assert shown["first_day"] == "2026-11-01"
    assert [d["date"] for d in shown["digests"]][:2] == ["2026-11-30", "2026-11-29"]
    assert shown["digests"][0]["results_sha256"] == f"{30:064x}"


async def test_feed_lists_incidents_and_maintenance(api: Api) -> None:
    await _seed(api)
    response = await api.client.get("/feed.atom?lang=nl")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(response.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    categories = [e.find("a:category", ns).get("term") for e in root.findall("a:entry", ns)]
    assert sorted(categories) == ["incident", "maintenance", "maintenance"]
    titles = [e.findtext("a:title", namespaces=ns) for e in root.findall("a:entry", ns)]
    assert any("Gepland onderhoud" in t for t in titles if t)


@pytest.mark.parametrize(
    ("query", "header", "cookie", "expected"),
    [
        ("", "fr-BE,fr;q=0.9,en;q=0.8", None, "fr"),
        ("", "de-DE, nl;q=0.5, en;q=0.4", None, "nl"),
        ("", "de", None, "en"),
        ("?lang=nl", "fr", None, "nl"),
        ("", "fr", "nl", "nl"),
        ("?lang=xx", "", None, "en"),
    ],
)
async def test_language_choice(
    api: Api, query: str, header: str, cookie: str | None, expected: str
) -> None:
    headers = {"Accept-Language": header}
    if cookie:
        headers["Cookie"] = f"lang={cookie}"
    response = await api.client.get(f"/status{query}", headers=headers)
    assert response.status_code == 200
    assert f'<html lang="{expected}">' in response.text
    if query == "?lang=nl":
        assert response.cookies.get("lang") == "nl"


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (None, {"en": "Service status", "fr": "État des services", "nl": "Status van de diensten"}),
        ("Crossroads", {"en": "Crossroads", "fr": "Crossroads", "nl": "Crossroads"}),
        (
            {"en": "Crossroads status", "fr": "État de la Banque-Carrefour"},
            {
                "en": "Crossroads status",
                "fr": "État de la Banque-Carrefour",
                "nl": "Crossroads status",
            },
        ),
    ],
)
async def test_the_title_is_in_the_page_s_language(
    configured: Any, expected: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not configured: each language's own; one string: the same everywhere; per language:
    each its own, English where one is missing. The page and its feed alike."""
    status = {} if configured is None else {"title": configured}
    async for served in _serve(_config(status=status), monkeypatch):
        for lang, title in expected.items():
            html = (await served.client.get(f"/status?lang={lang}")).text
            assert f"<title>{title}</title>" in html
            assert f"<h1>{title}</h1>" in html
            feed = ET.fromstring((await served.client.get(f"/feed.atom?lang={lang}")).content)
            assert feed.findtext("{http://www.w3.org/2005/Atom}title") == title


async def test_page_works_without_javascript(api: Api) -> None:
    await _seed(api)
    html = (await api.client.get("/")).text
    assert 'data-service="a"' in html
    assert 'data-service="b"' in html
    assert "database upgrade" in html  # the announced window
    assert 'class="incident"' in html
    assert html.count('class="day ') == 2 * 90
    assert '<noscript><meta http-equiv="refresh"' in html
    assert (await api.client.get("/static/status.js")).status_code == 200


# --- schemathesis ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_schemathesis_finds_no_server_error_nor_schema_violation(
    api: Api, tmp_path: Path
) -> None:
    await _seed(api)
    code, text = await run_schemathesis(
        api.url, TOKEN, examples=25, phases="examples,coverage,fuzzing", workers=1, cwd=tmp_path
    )
    assert code == 0, text[-6000:]
