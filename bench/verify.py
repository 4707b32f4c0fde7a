"""How long ``sla-monitor verify`` takes on a month-sized evidence pack (issue 15).

Generates a pack of ``--services`` services (one HTTP probe each, a 1 s latency objective
and an availability objective, around the clock) over October 2026 (Europe/Brussels,
with its 25-hour day) at one result per ``--interval`` seconds: 100 services at 10 s is
26.8 M result rows. Every 1,000th result fails alone (its minute stays up); each service
has an outage of ``k % 45 + 1`` minutes on day ``k % 31 + 1`` (every result fails: down).
The generator counts the figures as it writes (the ground truth) into the pack's
``report.json``, and digests each day's bytes into ``digests.csv``, so the run also
checks that verify matches at scale; then it times ``python -m monitor verify PACK`` as a
process, ``--repeats`` times, and prints the median wall time, the peak RSS and the rows
per second.

    python bench/verify.py [--services 100] [--interval 10] [--repeats 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from monitor.evidence.digest import FORMAT, GENESIS, chain_of
from monitor.evidence.pack import RESULT_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Europe/Brussels")
START = dt.datetime(2026, 10, 1, tzinfo=ZONE)
END = dt.datetime(2026, 11, 1, tzinfo=ZONE)
STATES = ("up", "down", "unmonitored", "outside_hours", "maintenance", "provider_unavailable")


def generate(folder: Path, services: int, interval: int, seed: int = 7) -> int:
    """Write the pack; returns the number of result rows."""
    rng = random.Random(seed)
    first, after = int(START.timestamp()) // 60, int(END.timestamp()) // 60
    names = [f"svc-{k:03d}" for k in range(services)]
    outages = {
        name: range(
            int(dt.datetime(2026, 10, k % 31 + 1, 14, tzinfo=ZONE).timestamp()) // 60,
            int(dt.datetime(2026, 10, k % 31 + 1, 14, tzinfo=ZONE).timestamp()) // 60 + k % 45 + 1,
        )
        for k, name in enumerate(names)
    }
    # Per service, per local date: valid, good, and minute states.
    days: dict[str, dict[str, dict[str, int]]] = {
        n: defaultdict(lambda: defaultdict(int)) for n in names
    }
    rows = 0
    # Per local date: [rows, SHA-256 of their bytes as written] (the daemon's digest).
    hashed: dict[str, list[Any]] = defaultdict(lambda: [0, hashlib.sha256()])
    with (folder / "results.csv").open("wb") as file:
        buffer = io.StringIO()
        out = csv.writer(buffer, lineterminator="\n")
        out.writerow(RESULT_COLUMNS)
        file.write(buffer.getvalue().encode())
        per_minute = 60 // interval
        for minute in range(first, after):
            date = dt.datetime.fromtimestamp(minute * 60, ZONE).date().isoformat()
            utc = dt.datetime.fromtimestamp(minute * 60, dt.UTC).isoformat()
            buffer.seek(0)
            buffer.truncate()
            for name in names:
                day = days[name][date]
                down = minute in outages[name]
                failed = 0
                for k in range(per_minute):
                    started = minute * 60 + k * interval
                    if down or rng.random() < 0.001:
                        latency, outcome = 5.0, "timeout"
                        failed += 1
                    else:
                        latency, outcome = round(rng.lognormvariate(-1.5, 0.6), 6), "ok"
                        day["good"] += latency <= 1.0
                    out.writerow([name, "p", "http", repr(float(started)), utc, repr(latency),
                                  outcome, "", "", "default", "0"])  # fmt: skip
                day["valid"] += per_minute
                is_down = failed >= 1 and failed > 0.5 * per_minute
                day["down" if is_down else "up"] += 1
                rows += per_minute
            data = buffer.getvalue().encode()
            file.write(data)
            hashed[date][0] += per_minute * len(names)
            hashed[date][1].update(data)
    previous = GENESIS
    links = ["date,results,results_sha256,previous,chain,made_at,format\n"]
    for date, (count, sha) in sorted(hashed.items()):
        chain = chain_of(previous, date, count, sha.hexdigest(), FORMAT)
        links.append(f"{date},{count},{sha.hexdigest()},{previous},{chain},0.0,{FORMAT}\n")
        previous = chain
    (folder / "digests.csv").write_text("".join(links), encoding="utf-8")
    (folder / "maintenance.csv").write_text(
        "id,service,start,end,reason,announced_at,source,created_by,created_at,removed_at,"
        "removed_by,correction,origin\n",
        encoding="utf-8",
    )
    (folder / "batch_events.csv").write_text(
        "service,id,batch,event,at,records,institution\n", encoding="utf-8"
    )
    config = {
        "timezone": ZONE.key,
        "services": [
            {
                "name": name,
                "probes": [{"name": "p", "kind": "http", "url": "http://127.0.0.1:1/"}],
                "objectives": [
                    {"name": "online-1s", "kind": "latency", "threshold": "1s", "target": 99},
                    {"name": "availability", "kind": "availability", "target": 99},
                ],
            }
            for name in names
        ],
    }
    (folder / "config.yaml").write_text(json.dumps(config, indent=1), encoding="utf-8")
    report = _report(days)
    (folder / "reports" / "v001").mkdir(parents=True)
    (folder / "reports" / "v001" / "report.json").write_text(json.dumps(report), encoding="utf-8")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    (folder / "SHA256SUMS").write_text(
        "".join(f"{_sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in files),
        encoding="utf-8",
    )
    return rows


def _report(days: dict[str, dict[str, dict[str, int]]]) -> dict[str, Any]:
    services = []
    for name, dated in days.items():
        latency_days, availability_days = [], []
        for date, c in sorted(dated.items()):
            latency_days.append({"date": date, "valid": c["valid"], "good": c["good"]})
            states = {s: c.get(s, 0) for s in STATES}
            availability_days.append({"date": date, "minute_states": states})
        services.append(
            {
                "name": name,
                "objectives": [
                    {
                        "service": name,
                        "objective": "online-1s",
                        "valid": sum(d["valid"] for d in latency_days),
                        "good": sum(d["good"] for d in latency_days),
                        "days": latency_days,
                    },
                    {
                        "service": name,
                        "objective": "availability",
                        "minute_states": {
                            s: sum(d["minute_states"][s] for d in availability_days) for s in STATES
                        },
                        "days": availability_days,
                    },
                ],
                "batches": [],
            }
        )
    return {
        "period": {
            "month": "2026-10",
            "timezone": ZONE.key,
            "start": START.isoformat(),
            "end": END.isoformat(),
        },
        "generated_at": "2026-11-10T12:00:00+01:00",
        "corrections": [],
        "services": services,
    }


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--interval", type=int, default=10, help="seconds between results")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="where to write the pack (kept)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="verify-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        began = time.perf_counter()
        rows = generate(folder, args.services, args.interval)
        size = (folder / "results.csv").stat().st_size
        print(
            f"pack: {args.services} services, {rows:,} result rows, {size / 1e9:.2f} GB,"
            f" generated in {time.perf_counter() - began:.0f} s"
        )
        walls = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "monitor", "verify", str(folder)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            walls.append(time.perf_counter() - began)
            verdict = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
            print(f"verify: exit {done.returncode} in {walls[-1]:.1f} s: {verdict}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        wall = statistics.median(walls)
        print(
            f"median {wall:.1f} s over {len(walls)} runs, {rows / wall:,.0f} rows/s,"
            f" peak RSS {peak:.0f} MB"
        )
    finally:
        if args.dir is None:
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
