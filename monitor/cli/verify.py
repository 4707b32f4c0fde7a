"""``sla-monitor verify PACK``: recompute a month's figures from an evidence pack alone
(``monitor.evidence.verify``, a second, plain implementation), check its hashes, and
compare with the archived report. Needs no config, store, daemon or network.

Exit codes: 0 every figure and hash matches; 1 something does not (printed, with the
days); 2 not an evidence pack; 3 everything checked matches but some figures could not be
recomputed (raw results pruned, batch objectives).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from monitor.evidence.verify import PackUnreadable, Verification, verify_pack

EXIT_MATCH, EXIT_MISMATCH, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


def add_verify_parser(commands: Any) -> None:
    """``verify PACK``."""
    verify = commands.add_parser(
        "verify",
        help="recompute an evidence pack's figures independently and compare with its report",
        description="Checks the pack's SHA256SUMS, recomputes every figure of the month from "
        "its raw rows with a separate, plain implementation, and compares them with the "
        "latest archived report in the pack. Exit codes: 0 all match, 1 a mismatch, 2 not a "
        "pack, 3 some figures could not be recomputed.",
    )
    verify.add_argument("pack", type=Path, help="the folder `sla-monitor evidence` wrote")


def run_verify(args: argparse.Namespace) -> int:
    """Run ``sla-monitor verify``; prints the table and returns the exit code."""
    try:
        result = verify_pack(args.pack)
    except PackUnreadable as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(render(result))
    if result.mismatches:
        return EXIT_MISMATCH
    return EXIT_INCOMPLETE if result.unchecked else EXIT_MATCH


def render(result: Verification) -> str:
    """The table: one line per figure or hash, then the verdict."""
    rows = [("check", "report", "recomputed from the pack", "")]
    rows += [(c.what, c.reported, c.recomputed, c.status) for c in result.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"verify {result.month}, report version {result.version}"]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[3]]).rstrip())
    for check in result.mismatches:
        if check.days:
            lines.append(f"{check.what}: differs on {', '.join(check.days)}")
    if result.mismatches:
        days = result.tampered_days
        where = f" on {', '.join(days)}" if days else ""
        lines.append(f"MISMATCH: {len(result.mismatches)} check(s) differ{where}")
    elif result.unchecked:
        lines.append(f"INCOMPLETE: every check made matches; {len(result.unchecked)} not checked")
    else:
        lines.append(f"MATCH: all {len(result.checks)} checks")
    return "\n".join(lines)
