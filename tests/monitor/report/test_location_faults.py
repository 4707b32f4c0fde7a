"""The report's location faults: minutes a location alone saw down, counted per objective
and location from the stored decisions, and shown (only when there are any) in every
language."""

from __future__ import annotations

from monitor.report.charts import draw_charts
from monitor.report.compute import build_report
from monitor.report.model import Month
from monitor.report.render import render_html, render_json, render_markdown
from monitor.results import ServiceMinute
from monitor.store import MemoryStore
from tests.monitor.report import scenario as sc

OCTOBER = Month(2026, 10)


async def test_location_faults_are_counted_per_objective_and_location() -> None:
    store = MemoryStore()
    await store.open()
    await sc.seed(store)
    # Decisions as several locations stored them: a at fault in 7 up minutes, b in 2 (one
    # of them with a too).
    core = [
        m
        for m in await store.minute_states(sc.FIRST, sc.FIRST + 3000, "core")
        if m.states.get("availability") == "up"
    ][:10]
    assert len(core) == 10
    faults: dict[int, list[str]] = {i: ["a"] for i in range(7)}
    faults[6] = ["a", "b"]
    faults[9] = ["b"]
    await store.write_minute_states(
        [
            ServiceMinute("core", core[i].minute, None, core[i].states, {"availability": locs})
            for i, locs in faults.items()
        ]
    )
    report = await build_report(sc.config(), store, OCTOBER, now=sc.NOW)
    by_service = {s.name: s.location_faults for s in report.services}
    assert [(f.objective, f.location, f.minutes) for f in by_service["core"]] == [
        ("availability", "a", 7),
        ("availability", "b", 2),
    ]
    assert by_service["portal"] == []
    assert b'"location_faults"' in render_json(report)
    markdown = render_markdown(report).decode()
    assert "### Location faults" in markdown
    assert "| availability | a | 7 |" in markdown
    charts = draw_charts(report)
    for lang, title in (
        ("en", "Location faults"),
        ("fr", "Défaillances de site"),
        ("nl", "Locatiestoringen"),
    ):
        page = render_html(report, charts=charts, lang=lang).decode()
        assert f"<h3>{title}</h3>" in page
        assert page.count(f"<h3>{title}</h3>") == 1  # core only
