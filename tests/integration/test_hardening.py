"""Hostile input against a daemon on a real SQLite file: dates out of any sane range are
refused and change nothing; a bad row written by an older version never takes a page
down; deeply nested JSON is a 400; an empty or short API token stops `run` (exit 2) and
never opens writes; a non-finite timeout is a config error; a threshold at or above the
timeout is a warning naming both keys."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from monitor.app import Daemon
from monitor.config import Config
from tests.fakes import FakeClock
from tests.monitor.test_config import check_config
from tests.support.stack import validate

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "a-token-long-enough-for-writes"
T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Instants no page can show, or beyond the range anyone may write (1970 to 2200 UTC).
OUT_OF_RANGE = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1969-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
]
PAGES = ["/", "/api/status", "/feed.atom", "/api/maintenance?scope=all", "/api/incidents"]


def _document(store: Path, **server: Any) -> dict[str, Any]:
    return {
        "server": {"listen": "127.0.0.1:0", "api_token_env": "HARDENING_TOKEN", **server},
        "storage": {"path": str(store)},
        "reports": {"directory": str(store.parent / "reports")},
        "services": [
            {
                "name": "a",
                "probes": [{"name": "p", "kind": "http", "url": "http://127.0.0.1:9/x"}],
                "objectives": [{"name": "availability", "kind": "availability", "target": 99}],
            }
        ],
    }


@contextlib.asynccontextmanager
async def _serve(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    daemon = Daemon(config, clock=FakeClock(T0))
    await daemon.store.open()
    await daemon.reload_maintenance()
    await daemon.server.start()
    try:
        async with httpx.AsyncClient(base_url=daemon.server.url, timeout=10) as client:
            yield client
    finally:
        await daemon.server.stop()
        await daemon.store.aclose()


@pytest.fixture
async def client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("HARDENING_TOKEN", TOKEN)
    async with _serve(validate(_document(tmp_path / "store.sqlite3"))) as served:
        yield served


async def _state(client: httpx.AsyncClient) -> tuple[Any, Any]:
    maintenance = (await client.get("/api/maintenance?scope=all")).json()
    incidents = (await client.get("/api/incidents")).json()
    return maintenance, incidents


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
async def test_out_of_range_dates_are_refused_and_change_nothing(
    client: httpx.AsyncClient, instant: str
) -> None:
    before = await _state(client)
    window = {"service": "a", "start": instant, "end": "2199-01-01T00:00:00Z", "reason": "x"}
    incident = {"service": "a", "title": "t", "message": "m", "started_at": instant}
    for path, body in (("/api/maintenance", window), ("/api/incidents", incident)):
        response = await client.post(path, json=body, headers=AUTH)
        assert response.status_code == 400, (path, response.text)
        assert "between 1970-01-01 and 2200-01-01" in response.json()["error"]
    assert await _state(client) == before
    for page in PAGES:
        assert (await client.get(page)).status_code == 200, page


async def test_a_bad_row_from_an_older_version_never_takes_a_page_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store.sqlite3"
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(_document(store)))
    monkeypatch.setenv("HARDENING_TOKEN", TOKEN)
    config = validate(_document(store))
    async with _serve(config) as client:  # creates the schema
        assert (await client.get("/")).status_code == 200
    year_one = -62_135_596_800.0 - 14 * 3600  # 0001-01-01T00:00+14:00
    beyond = 253_402_300_799.0 + 14 * 3600  # 9999-12-31T23:59:59-14:00
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute(
            'INSERT INTO maintenance (service, "start", "end", reason, announced_at,'
            " created_by, created_at) VALUES ('a', ?, ?, 'old row', ?, 'api', ?)",
            (year_one, beyond, year_one, T0),
        )
        db.execute(
            "INSERT INTO incidents (service, title, source, objective, started_at, created_by)"
            " VALUES ('a', 'old incident', 'operator', NULL, ?, 'api')",
            (beyond,),
        )
    async with _serve(config) as client:
        for page in PAGES:
            assert (await client.get(page)).status_code == 200, page
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "maintenance",
            "list",
            "--config",
            str(config_path),
            "--all",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HARDENING_TOKEN": TOKEN},
    )
    assert listed.returncode == 0, listed.stderr
    assert "invalid time" in listed.stdout
    assert "Traceback" not in listed.stderr


async def test_deeply_nested_json_is_a_400(client: httpx.AsyncClient) -> None:
    body = b"[" * 16_000
    for path in ("/api/maintenance", "/api/incidents"):
        response = await client.post(
            path, content=body, headers={**AUTH, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert "error" in response.json()


@pytest.mark.parametrize("token", ["", "   ", "short-token"])
def test_an_empty_or_short_token_stops_run_and_check_config(tmp_path: Path, token: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_document(tmp_path / "store.sqlite3")))
    env = {**os.environ, "HARDENING_TOKEN": token}
    for command in (["run", "--config", str(path)], ["check-config", str(path)]):
        done = subprocess.run(
            [sys.executable, "-m", "monitor", *command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        assert done.returncode == 2, (command, done.stderr)
        assert f"{path}: server.api_token_env: environment variable HARDENING_TOKEN" in done.stderr
        assert "at least 16" in done.stderr
        assert not (tmp_path / "store.sqlite3").exists()


async def test_a_server_given_an_empty_token_keeps_writes_shut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARDENING_TOKEN", "")
    async with _serve(validate(_document(tmp_path / "store.sqlite3"))) as client:
        body = {"service": "a", "title": "t", "message": "m"}
        # "Bearer" alone carries an empty token: it matched an empty variable before.
        for headers in ({"Authorization": "Bearer"}, {}):
            response = await client.post("/api/incidents", json=body, headers=headers)
            assert response.status_code == 403, response.text
        assert (await client.get("/api/incidents")).json()["incidents"] == []


def test_a_non_finite_timeout_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "services:\n"
        "  - name: s\n"
        "    probes:\n"
        '      - {name: p, kind: http, url: "http://127.0.0.1:9/", timeout: .inf}\n'
    )
    done = check_config(path)
    assert done.returncode == 2
    assert f"{path}:4: services[0].probes[0].timeout: Input should be a finite number" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


def test_a_threshold_the_timeout_cuts_off_is_a_warning_naming_both_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "services:\n"
        "  - name: s\n"
        "    probes:\n"
        '      - {name: p, kind: http, url: "http://127.0.0.1:9/", timeout: 2s}\n'
        "    objectives:\n"
        "      - {name: slow, kind: latency, threshold: 4s, target: 99}\n"
    )
    done = check_config(path)
    assert done.returncode == 0, done.stderr
    assert (
        f"{path}: warning: services[0].objectives[0].threshold (4 s) is not below "
        "services[0].probes[0].timeout (2 s, probe 'p')"
    ) in done.stderr


GATEWAY = "gateway-token-for-maintenance"


async def test_a_scoped_token_does_only_what_its_scopes_allow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An institution's gateway may announce maintenance, not open incidents nor
    acknowledge alerts; the admin token may do all; an unknown token nothing."""
    monkeypatch.setenv("HARDENING_TOKEN", TOKEN)
    monkeypatch.setenv("GATEWAY_TOKEN", GATEWAY)
    document = _document(tmp_path / "store.sqlite3")
    document["server"]["tokens"] = {"gateway": {"env": "GATEWAY_TOKEN", "scopes": ["maintenance"]}}
    window = {
        "service": "a",
        "start": "2026-11-20T01:00:00Z",
        "end": "2026-11-20T02:00:00Z",
        "reason": "gateway upgrade",
    }
    incident = {"service": "a", "title": "t", "message": "m"}
    gateway = {"Authorization": f"Bearer {GATEWAY}"}
    async with _serve(validate(document)) as client:
        before = await _state(client)
        refused = await client.post("/api/incidents", json=incident, headers=gateway)
        assert refused.status_code == 403
        assert "token 'gateway' may not do incidents" in refused.json()["error"]
        ack = await client.post("/api/alerts/x/ack", headers=gateway)
        assert ack.status_code == 403
        wrong = await client.post(
            "/api/maintenance", json=window, headers={"Authorization": "Bearer not-a-token-at-all"}
        )
        assert wrong.status_code == 401
        assert await _state(client) == before
        assert (
            await client.post("/api/maintenance", json=window, headers=gateway)
        ).status_code == 201
        assert (await client.post("/api/incidents", json=incident, headers=AUTH)).status_code == 201


def test_a_scoped_token_without_its_variable_stops_run(tmp_path: Path) -> None:
    document = _document(tmp_path / "store.sqlite3")
    document["server"]["tokens"] = {"gateway": {"env": "GATEWAY_TOKEN", "scopes": ["maintenance"]}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env, "HARDENING_TOKEN": TOKEN},
    )
    assert done.returncode == 2
    assert (
        f"{path}: server.tokens.gateway.env: environment variable GATEWAY_TOKEN is not set"
        in done.stderr
    )
