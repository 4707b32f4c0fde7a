"""schemathesis against a daemon on a real SQLite file: every operation of the OpenAPI
document with 1,000 generated examples (plus the examples, coverage and stateful phases),
authenticated: no 5xx, no answer outside the document."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from tests.integration.test_hardening import AUTH, TOKEN, _document, _serve
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
        st = shutil.which("st", path=str(Path(sys.executable).parent))
        assert st is not None, "schemathesis is a dev dependency"
        process = await asyncio.create_subprocess_exec(
            st,
            "run",
            f"{client.base_url}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,"
            "content_type_conformance",
            "--max-examples",
            str(EXAMPLES),
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--generation-deterministic",
            "--workers",
            "2",
            "--request-timeout",
            "10",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
