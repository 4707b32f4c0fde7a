"""What every command module shares: exit codes and the usage error."""

from __future__ import annotations

import argparse
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from monitor.errors import ConfigError, SlaMonitorError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2  # a bad config or argument: the user must change something


class UsageError(SlaMonitorError):
    """A bad argument that argparse could not catch (it needs the config)."""


#: Where a command looks for its config when ``--config`` is not given, in order.
CONFIG_ENV = "SLA_MONITOR_CONFIG"
CONFIG_CANDIDATES = (Path("sla-monitor.yaml"), Path("/etc/sla-monitor/config.yaml"))


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """``--config PATH``, optional: found as ``find_config`` says when not given."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"config file (default: ${CONFIG_ENV}, then ./sla-monitor.yaml, then"
        " /etc/sla-monitor/config.yaml)",
    )


def find_config(given: Path | None) -> tuple[Path, str]:
    """The config file a command uses and why: ``--config``, then ``$SLA_MONITOR_CONFIG``,
    then ``./sla-monitor.yaml``, then ``/etc/sla-monitor/config.yaml``.

    Raises:
        ConfigError: none of them names a config (never a silent fallback to the demo's).
    """
    if given is not None:
        return given, "--config"
    from_env = os.environ.get(CONFIG_ENV, "").strip()
    if from_env:
        return Path(from_env), CONFIG_ENV
    for candidate in CONFIG_CANDIDATES:
        if candidate.is_file():
            return candidate, "found"
    looked = ", ".join(str(c) for c in CONFIG_CANDIDATES)
    raise ConfigError(
        f"no config file: give --config PATH, or export {CONFIG_ENV}=PATH once (looked for"
        f" {looked})"
    )


#: The optional parts of the install: extra -> (module it provides, what needs it).
EXTRAS = {
    "demo": ("amqtt", "sla-monitor demo (its embedded MQTT broker)"),
    "dashboards": ("grafana_foundation_sdk", "sla-monitor dashboards (the Grafana SDK)"),
}


def need_extra(extra: str) -> None:
    """Stop with a usage error naming the install command when an optional part of the
    install (``pip install 'sla-monitor[EXTRA]'``) is missing."""
    module, what = EXTRAS[extra]
    if importlib.util.find_spec(module) is None:
        raise UsageError(
            f"{what} needs an optional package: pip install 'sla-monitor[{extra}]'"
            " (from a checkout, `make install` installs every extra)"
        )


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, the last one left free (it may be long): the
    one table format of the CLI's listings."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in [header, *rows]
    )
