"""Which config each daemon ran with: recorded at each start, and in the evidence pack as
config_history.csv with each text in configs/, which ``verify`` checks by hash."""

from __future__ import annotations

import asyncio
import csv
import hashlib
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.app import Daemon
from monitor.evidence.pack import write_pack
from monitor.evidence.verify import _configs
from monitor.report.model import Month
from monitor.store import MemoryStore, SqliteStore
from monitor.store.records import ConfigUse
from tests.support.stack import daemon_config, validate, write_config

NOV = 1_793_487_600.0  # 2026-11-01T00:00:00+01:00 (Brussels)


def use(at: float, instance: str, body: str) -> tuple[ConfigUse, str]:
    sha = hashlib.sha256(body.encode()).hexdigest()
    return ConfigUse(at, instance, "/etc/sla-monitor/config.yaml", sha), body


async def test_the_pack_holds_the_configs_in_force_and_verify_checks_them(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    old, held, new = "a: 1\n", "a: 2\n", "a: 3\n"
    for when, instance, body in (
        (NOV - 86400 * 9, "bru-1", old),  # replaced before the month: not in force
        (NOV - 86400 * 2, "bru-1", held),  # in force when the month began
        (NOV - 86400 * 5, "lgg-1", held),
        (NOV + 86400 * 3, "bru-1", new),  # a change during the month
        (NOV + 86400 * 40, "bru-1", old),  # after it
    ):
        await store.record_config(*use(when, instance, body))
    config = tmp_path / "config.yaml"
    config.write_text("# the pack's own copy\n")
    pack = tmp_path / "pack"
    zone = ZoneInfo("Europe/Brussels")
    await write_pack(store, Month(2026, 11), zone, pack, config, None)

    with (pack / "config_history.csv").open(newline="") as file:
        rows = [(r["instance"], r["sha256"]) for r in csv.DictReader(file)]
    sha = {body: hashlib.sha256(body.encode()).hexdigest() for body in (old, held, new)}
    assert rows == [("lgg-1", sha[held]), ("bru-1", sha[held]), ("bru-1", sha[new])]
    assert sorted(p.name for p in (pack / "configs").iterdir()) == sorted(
        f"{sha[b]}.yaml" for b in (held, new)
    )
    [check] = _configs(pack)
    assert (check.status, check.reported) == ("match", "2 configs")

    (pack / "configs" / f"{sha[new]}.yaml").write_text("a: 4\n")
    [check] = _configs(pack)
    assert check.status == "MISMATCH"
    assert "does not hash to its name" in check.recomputed


async def test_a_daemon_records_the_config_it_starts_with(tmp_path: Path) -> None:
    document = daemon_config(
        store=tmp_path / "sla.sqlite3",
        services=[
            {
                "name": "svc",
                "probes": [{"name": "p", "kind": "http", "url": "http://127.0.0.1:9/x"}],
            }
        ],
    )
    document["instance"] = {"name": "bru-1"}
    path = write_config(document, tmp_path / "config.yaml")
    for _ in range(2):  # two starts with the same file
        daemon = Daemon(validate(document), config_file=path)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        await asyncio.wait_for(daemon.ready.wait(), 20)
        stop.set()
        await asyncio.wait_for(task, 30)
    store = SqliteStore(tmp_path / "sla.sqlite3")
    await store.open()
    try:
        uses = await store.config_uses(float("inf"))
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        assert [(u.instance, u.path, u.sha256) for u in uses] == [("bru-1", str(path), sha)] * 2
        assert await store.config_body(sha) == path.read_text()
    finally:
        await store.aclose()
