"""schemathesis (a dev dependency) run against a live API, as its CLI runs."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

#: What must hold for every generated request.
CHECKS = (
    "not_a_server_error,response_schema_conformance,status_code_conformance,"
    "content_type_conformance"
)


async def run_schemathesis(
    base_url: str, token: str, *, examples: int, phases: str, workers: int, cwd: Path
) -> tuple[int, str]:
    """``st run`` against ``base_url``'s OpenAPI document, authenticated with ``token``;
    its exit code and output."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is a dev dependency"
    process = await asyncio.create_subprocess_exec(
        st,
        "run",
        f"{base_url}/api/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--phases",
        phases,
        "--generation-deterministic",
        "--workers",
        str(workers),
        "--request-timeout",
        "10",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")
