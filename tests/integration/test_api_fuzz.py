"""schemathesis against a daemon on a real SQLite file: every operation of the OpenAPI
document with 1,000 generated examples (plus the examples, coverage and stateful phases),
authenticated: no 5xx, no answer outside the document."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_hardening import AUTH, TOKEN, _document, _serve
from tests.support.schemathesis import run_schemathesis
from tests.support.stack import validate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

EXAMPLES = 1000


async def test_schemathesis_on_sqlite_finds_no_server_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARDENING_TOKEN", TOKEN)
    async with _serve(validate(_document(tmp_path / "store.sqlite3"))) as client:
        window = {
            "service": "a",
            "start": "2026-11-20T01:00:00Z",
            "end": "2026-11-20T02:00:00Z",
            "reason": "seed",
        }
        assert (await client.post("/api/maintenance", json=window, headers=AUTH)).is_success
        incident = {"service": "a", "title": "t", "message": "m"}
        assert (await client.post("/api/incidents", json=incident, headers=AUTH)).is_success
        code, text = await run_schemathesis(
            str(client.base_url),
            TOKEN,
            examples=EXAMPLES,
            phases="examples,coverage,fuzzing,stateful",
            # One worker: with two, hypothesis's lambda descriptions (read from source
            # while building strategies) crashed schemathesis 4.32 in CI.
            workers=1,
            cwd=tmp_path,
        )
    assert code == 0, text[-6000:]
