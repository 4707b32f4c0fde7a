"""The status page end to end in headless Chromium (Debian's, driven by Python playwright):
a daemon and a simulator on free ports, with a clock 30 times faster than real time, so the
test lives through an outage and its recovery in about 20 seconds.

The page is loaded once; everything after that (a maintenance window announced through the
API, an incident opened when the simulator fails a route, its resolution) must reach it
without a reload. Screenshots go to ``artifacts/`` (gitignored).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import playwright.async_api as playwright_api
import pytest

from monitor.app import Daemon
from simulator.network import Simulator
from simulator.settings import SimulatorSettings
from tests.fakes import FakeClock
from tests.support.stack import daemon_config, validate

# A missing browser is a failure, never a skip: `make test` installs Debian's chromium.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CHROMIUM = "/usr/bin/chromium"
assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make test` (it installs it)"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TOKEN = "browser-test-token"
SPEED = 30.0  # a virtual minute every two real seconds
T0 = 1_795_000_000.0 - 1_795_000_000.0 % 60 + 60 * 60 * 24 * 3
OUTAGE_START = T0 + 4 * 60
OUTAGE_MINUTES = 3


def _simulator() -> SimulatorSettings:
    steady = {"latency": {"distribution": "constant", "median": 0.002}}
    flaky = {
        **steady,
        "outages": [
            {
                "every": 1e9,
                "duration": OUTAGE_MINUTES * 60,
                "offset": OUTAGE_START,
                "mode": "error",
            }
        ],
    }
    return SimulatorSettings.model_validate(
        {
            "seed": 3,
            "profiles": {"steady": steady, "flaky": flaky},
            "http": {
                "listen": "127.0.0.1:0",
                "routes": [
                    {"path": "/steady", "profile": "steady"},
                    {"path": "/flaky", "profile": "flaky"},
                ],
            },
        }
    )


def _service(name: str, port: int, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "probes": [
            {
                "name": f"p{i}",
                "kind": "http",
                "url": f"http://127.0.0.1:{port}/{name}",
                "interval": 2,
                "timeout": 0.5,
            }
            for i in range(2)
        ],
        "objectives": [
            {"name": "fast-1s", "kind": "latency", "threshold": 1, "target": 99},
            {"name": "availability", "kind": "availability", "target": 99},
        ],
    }


class Stack:
    """A running simulator and daemon."""

    def __init__(self, daemon: Daemon, clock: FakeClock) -> None:
        self.daemon = daemon
        self.clock = clock
        self.url = daemon.server.url


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("STATUS_PAGE_TOKEN", TOKEN)
    clock = FakeClock(start=T0 + 1, speed=SPEED)
    async with Simulator(_simulator(), {}, wall_clock=clock.now) as sim:
        assert sim.http_port is not None
        document = daemon_config(
            store=tmp_path / "status.sqlite3",
            services=[
                _service("steady", sim.http_port, "Online messages between institutions"),
                _service("flaky", sim.http_port, "Integrated service calling providers"),
            ],
        )
        document["server"]["api_token_env"] = "STATUS_PAGE_TOKEN"
        document["status"] = {
            "title": "Crossroads network status",
            "refresh_interval": 0.5,
            "resolve_after_minutes": 2,
        }
        daemon = Daemon(validate(document), clock=clock)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        await asyncio.wait_for(daemon.ready.wait(), 20)
        try:
            yield Stack(daemon, clock)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


_COLOURS_JS = """
(selector) => Array.from(document.querySelectorAll(selector)).map((el) => {
  const style = getComputedStyle(el);
  const rgb = (text) => text.match(/\\d+/g).slice(0, 3).map(Number);
  let bg = style.backgroundColor, node = el;
  while (bg === "rgba(0, 0, 0, 0)" && node.parentElement) {
    node = node.parentElement; bg = getComputedStyle(node).backgroundColor;
  }
  return {text: el.textContent.trim(), fg: rgb(style.color), bg: rgb(bg)};
})
"""


async def _assert_contrast(page: Any) -> None:
    """WCAG AA: every badge, banner, table cell and note has >= 4.5:1 text contrast."""
    selectors = (
        ".badge, .overall, .desc, .verdict, .coverage, .kind, td, th, .reason, .generated, a"
    )
    checked = await page.evaluate(_COLOURS_JS, selectors)
    assert checked
    for item in checked:
        ratio = _contrast(tuple(item["fg"]), tuple(item["bg"]))
        assert ratio >= 4.5, f"{item['text']!r}: contrast {ratio:.2f}"


async def test_status_page_in_a_browser(stack: Stack) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            await _walk_through(browser, stack)
        finally:
            await browser.close()


async def _walk_through(browser: Any, stack: Stack) -> None:
    context = await browser.new_context(
        viewport={"width": 1100, "height": 1400}, locale="en-GB", extra_http_headers={}
    )
    page = await context.new_page()
    await page.goto(f"{stack.url}/")
    # --- services and their states, in English by default ---------------------------------
    assert await page.title() == "Crossroads network status"
    for name in ("steady", "flaky"):
        service = page.locator(f'article.service[data-service="{name}"]')
        await service.wait_for()
        assert await service.get_attribute("data-state") == "operational"
        assert (await service.locator(".badge").inner_text()) == "Operational"
        assert await service.locator("tr[data-objective]").count() == 2
        assert await service.locator("ol.bars li.day").count() == 90
        # Started on the 21st of the month: whatever its figure, the month has no verdict,
        # and the page says how much of it was seen.
        verdicts = await service.locator("tr[data-objective] .verdict").all_inner_texts()
        assert verdicts == ["insufficient data"] * 2
        seen = await service.locator("tr[data-objective] .coverage").all_inner_texts()
        assert len(seen) == 2
        assert all(t.startswith("monitored ") and t.endswith("% of the time") for t in seen)
    assert "All services are operating normally." in await page.locator(".overall").inner_text()
    await _assert_contrast(page)

    # --- the language switch --------------------------------------------------------------
    await page.get_by_role("link", name="FR", exact=True).click()
    await page.wait_for_url("**/?lang=fr")
    assert await page.locator("html").get_attribute("lang") == "fr"
    badge = page.locator('article.service[data-service="steady"] .badge')
    assert await badge.inner_text() == "Opérationnel"
    assert "Maintenance planifiée" in await page.locator("#maintenance-title").inner_text()
    # From here on, a reload would lose this marker: updates must arrive without one.
    await page.evaluate("window.__noReload = true")

    # --- a maintenance window announced through the API appears ---------------------------
    now = stack.clock.now()
    async with httpx.AsyncClient(base_url=stack.url) as client:
        response = await client.post(
            "/api/maintenance",
            json={
                "service": "steady",
                "start": _iso(now + 3600),
                "end": _iso(now + 7200),
                "reason": "Mise à jour de la base de données",
            },
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 201, response.text
    window_id = response.json()["maintenance"]["id"]
    window = page.locator(f"#maintenance-{window_id}")
    await window.wait_for(timeout=15_000)
    assert "Mise à jour de la base de données" in await window.inner_text()
    assert await window.get_attribute("data-status") == "upcoming"

    # --- the simulator fails "flaky": the page shows it down, with an incident ------------
    flaky = page.locator('article.service[data-service="flaky"]')
    incident = page.locator('article.incident[data-service="flaky"]')
    await page.locator('article.service[data-service="flaky"][data-state="down"]').wait_for(
        timeout=60_000
    )
    await incident.wait_for(timeout=30_000)
    assert await incident.get_attribute("data-status") == "investigating"
    assert "flaky indisponible" in await incident.locator("h3").inner_text()
    assert (await flaky.locator(".badge").inner_text()) == "Indisponible"
    steady = page.locator('article.service[data-service="steady"]')
    assert await steady.get_attribute("data-state") == "operational"
    await page.screenshot(path=str(ARTIFACTS / "status-page-incident.png"), full_page=True)

    # --- it comes back: the incident is resolved, the service no longer down --------------
    await page.locator('article.incident[data-service="flaky"][data-status="resolved"]').wait_for(
        timeout=60_000
    )
    state = await flaky.get_attribute("data-state")
    # Three down minutes in the last hour burn the 1 % budget far faster than allowed.
    assert state == "degraded"
    assert await page.evaluate("window.__noReload === true")
    timeline = await incident.locator("ol.updates li").all_inner_texts()
    assert len(timeline) == 2
    assert "Résolu" in timeline[0]
    # The day's bar of "flaky" now counts down minutes; its figure is in its label.
    today = flaky.locator("ol.bars li.day").last
    label = await today.get_attribute("aria-label") or ""
    assert "min d'indisponibilité" in label
    assert "flaky indisponible" in label
    await today.focus()  # keyboard (and tap) users see the same figure
    assert await today.locator(".tip").is_visible()
    await page.screenshot(path=str(ARTIFACTS / "status-page-resolved.png"), full_page=True)
    await _assert_contrast(page)
    await context.close()

    # --- on a phone, in Dutch, without JavaScript: still complete, nothing overflows -------
    phone = await browser.new_context(
        viewport={"width": 375, "height": 800},
        java_script_enabled=False,
        extra_http_headers={"Accept-Language": "nl-BE,nl;q=0.9"},
    )
    page = await phone.new_page()
    await page.goto(f"{stack.url}/status")
    assert await page.locator("html").get_attribute("lang") == "nl"
    assert await page.locator("article.service").count() == 2
    assert "onvoldoende gegevens" in await page.locator(".verdict").first.inner_text()
    assert await page.locator(f"#maintenance-{window_id}").count() == 1
    assert await page.locator('article.incident[data-status="resolved"]').count() == 1
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page overflows a phone screen ({width}px)"
    await page.screenshot(path=str(ARTIFACTS / "status-page-phone-nl.png"), full_page=True)
    await phone.close()
    assert (ARTIFACTS / "status-page-incident.png").stat().st_size > 10_000
