"""A window announced through the API is published on the status page and the feed, and
to its service's subscribers through the outbox; the evidence pack's publications.csv
holds each: channel, when, delivered when, what."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.evidence.pack import write_pack
from monitor.report.model import Month
from tests.monitor.web.test_api import GOOD, T0, Api, _config, _serve, _window


@pytest.fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    async for served in _serve(_config(), monkeypatch):
        yield served


async def test_a_windows_publications_are_in_the_pack(api: Api, tmp_path: Path) -> None:
    daemon = api.daemon
    await daemon.dispatcher.start()
    created = await api.client.post("/api/maintenance", json=_window(), headers=GOOD)
    assert created.status_code == 201, created.text
    window = created.json()["maintenance"]
    assert await daemon.store.notices(0) == []  # held until the next flush
    await daemon._send_notices()  # stored, then sent
    [notice] = await daemon.store.notices(0)
    assert notice.notifier == "users"
    assert f'"alert_id": "maintenance-{window["id"]}"' in notice.body
    await daemon.dispatcher.aclose()  # the log notifier has delivered it
    await daemon._send_notices()  # its mark
    [notice] = await daemon.store.notices(0)
    assert notice.outcome == "sent"

    config = tmp_path / "config.yaml"
    config.write_text("# the test's config\n")
    await write_pack(
        daemon.store, Month(2026, 11), daemon.config.zone, tmp_path / "p", config, None
    )
    with (tmp_path / "p" / "publications.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["window_id"], r["channel"], r["outcome"]) for r in rows] == [
        (window["id"], "status page", "shown"),
        (window["id"], "feed", "shown"),
        (window["id"], "notifier users", "sent"),
    ]
    assert all(float(r["published_at"]) == T0 for r in rows)  # recorded and stored now
    assert float(rows[2]["delivered_at"]) == T0
    assert (
        rows[0]["text"]
        == "database upgrade (2026-11-19T09:00:00+00:00 to 2026-11-19T11:00:00+00:00)"
    )
    assert "database upgrade" in rows[2]["text"]
