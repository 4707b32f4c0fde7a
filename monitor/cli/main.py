"""The ``sla-monitor`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from monitor import __version__
from monitor.cli.common import (
    CONFIG_ENV,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_config_option,
    find_config,
    need_extra,
)
from monitor.cli.demo import add_demo_options, demo_config
from monitor.cli.health import add_health_parser, run_health
from monitor.cli.maintenance import add_maintenance_parser, run_maintenance
from monitor.config import Config, config_warnings, load_config, missing_secrets
from monitor.errors import ConfigError, SlaMonitorError
from monitor.logs import setup_logging

if TYPE_CHECKING:
    pass

log = logging.getLogger("sla-monitor")


def _demo_config() -> Path:
    """config/demo.yaml: beside the code in a checkout, under share/ once pip-installed."""
    checkout = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"
    installed = Path(sys.prefix) / "share" / "sla-monitor" / "demo.yaml"
    return checkout if checkout.exists() else installed


DEMO_CONFIG = _demo_config()
_WHY = {
    "--config": "--config",
    CONFIG_ENV: f"from ${CONFIG_ENV}",
    "found": "found in the default places",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sla-monitor",
        description="Network-service SLA monitor: probes, exact SLA figures, metrics.",
    )
    parser.add_argument("--version", action="version", version=f"sla-monitor {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="text, or one JSON object per line (journald, Loki)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon")
    add_config_option(run)
    run.add_argument(
        "--allow-degraded-start",
        action="store_true",
        help="start even if the store takes no write (results are kept and spooled)",
    )
    # One config file for every location: who this daemon is, given where it runs.
    run.add_argument("--instance", metavar="NAME", help="instance.name (default: the config's)")
    run.add_argument("--location", metavar="NAME", help="instance.location (default: the config's)")
    run.add_argument(
        "--store-url",
        metavar="URL",
        help="storage.url: a PostgreSQL database instead of the config's store",
    )

    demo = commands.add_parser(
        "demo", help="embedded broker + simulator + daemon on the demo config"
    )
    demo.add_argument(
        "--config", type=Path, default=DEMO_CONFIG, metavar="PATH", help="(default: the demo's)"
    )
    add_demo_options(demo)

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("path", type=Path, nargs="?", help="the config file (or --config)")
    add_config_option(check)
    check.add_argument(
        "--no-env",
        action="store_true",
        help="do not check the environment variables the config names (secrets, token)",
    )

    simulate = commands.add_parser("simulate", help="run the simulated network alone")
    add_config_option(simulate)

    add_maintenance_parser(commands)

    from monitor.cli.alerts import add_alerts_parser
    from monitor.cli.cluster import add_cluster_parser
    from monitor.cli.evidence import add_evidence_parser
    from monitor.cli.report import add_report_parser
    from monitor.cli.verify import add_verify_parser

    add_report_parser(commands)
    add_evidence_parser(commands)
    add_verify_parser(commands)
    add_alerts_parser(commands)
    add_health_parser(commands)
    add_cluster_parser(commands)

    rules = commands.add_parser(
        "rules", help="write Prometheus recording and alerting rules generated from the config"
    )
    rules.add_argument("--out", required=True, type=Path, help="directory to write the rules to")
    add_config_option(rules)
    rules.add_argument(
        "--format",
        choices=["prometheus", "sloth", "openslo"],
        default="prometheus",
        help="Prometheus rules (default), Sloth prometheus/v1 specs or OpenSLO v1 documents",
    )
    rules.add_argument(
        "--interval",
        default="30s",
        help="how often Prometheus evaluates the rule groups (prometheus format; default 30s)",
    )

    openslo = commands.add_parser(
        "import-openslo", help="turn OpenSLO v1 objectives into a config fragment"
    )
    openslo.add_argument("path", type=Path, help="OpenSLO YAML (one or more documents)")
    openslo.add_argument("--out", type=Path, help="write the fragment here (default: stdout)")

    boards = commands.add_parser(
        "dashboards",
        help="write Grafana dashboards generated from the config (or `preview` them as a PNG)",
    )
    boards.add_argument("action", nargs="?", choices=["write", "preview"], default="write")
    add_config_option(boards)
    boards.add_argument("--out", required=True, type=Path, help="directory (write) or PNG path")
    boards.add_argument("--prometheus", metavar="URL", help="Prometheus base URL (preview)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        if args.command == "import-openslo":
            return _import_openslo(args.path, args.out)
        if args.command == "verify":
            from monitor.cli.verify import run_verify

            return run_verify(args)
        if args.command == "demo":
            path, config = args.config, demo_config(args.config, args)
        else:
            if args.command == "check-config" and args.path and args.config:
                raise UsageError("give the config once: PATH or --config PATH")
            given = args.path if args.command == "check-config" and args.path else args.config
            path, why = find_config(given)
            if why != "--config" or args.command == "run":
                print(f"sla-monitor: config {path} ({_WHY[why]})", file=sys.stderr)
            if args.command == "check-config":
                return _check_config(path, check_env=not args.no_env)
            config = load_config(path)
        args.config = path
        if args.command in ("run", "demo") and (missing := missing_secrets(config)):
            raise ConfigError("\n".join(f"{args.config}: {m}" for m in missing))
        if args.command in ("run", "demo"):
            for warning in config_warnings(config):
                log.warning("%s: %s", args.config, warning)
        if args.command == "run":
            config = with_identity(config, args.instance, args.location, args.store_url)
            degraded = args.allow_degraded_start
            arguments = list(sys.argv[1:] if argv is None else argv)
            return _run_until_signal(
                lambda stop: _run(config, stop, degraded, path),
                reload=lambda: _reload_is_valid(path),
                argv=arguments,
            )
        if args.command == "demo":
            need_extra("demo")
            return _run_until_signal(lambda stop: _demo(config, stop))
        if args.command == "simulate":
            return _run_until_signal(lambda stop: _simulate(config, stop))
        if args.command == "maintenance":
            return run_maintenance(config, args)
        if args.command == "rules":
            return _rules(config, args.out, args.format, args.interval)
        if args.command == "alerts":
            from monitor.cli.alerts import run_alerts

            return run_alerts(config, args)
        if args.command == "health":
            return run_health(config, args)
        if args.command == "cluster":
            from monitor.cli.cluster import run_cluster

            return run_cluster(config, args)
        if args.command == "report":
            from monitor.cli.report import run_report

            return run_report(config, args)
        if args.command == "evidence":
            from monitor.cli.evidence import run_evidence

            return run_evidence(config, path, args)
        if args.command == "dashboards":
            return _dashboards(config, args)
    except ConfigError as exc:
        print(f"sla-monitor: config error:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SlaMonitorError as exc:
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # e.g. the listen port is taken
        print(f"sla-monitor: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    raise AssertionError(f"unhandled command {args.command}")


def _check_config(path: Path, *, check_env: bool) -> int:
    config = load_config(path)
    # The same check, and message, as `run`: a config that cannot start is not OK.
    if check_env and (missing := missing_secrets(config)):
        raise ConfigError("\n".join(f"{path}: {m}" for m in missing))
    for warning in config_warnings(config):
        print(f"{path}: warning: {warning}", file=sys.stderr)
    probes = sum(len(s.probes) for s in config.services)
    objectives = sum(len(s.objectives) for s in config.services)
    print(f"{path}: OK ({len(config.services)} services, {probes} probes, {objectives} objectives)")
    return EXIT_OK


def _rules(config: Config, out: Path, output_format: str, interval: str) -> int:
    from monitor.generate.rules import write_rules
    from monitor.generate.sloth import write_sloth
    from monitor.openslo.export import write_openslo

    if output_format == "sloth":
        paths = write_sloth(config, out)
    elif output_format == "openslo":
        paths = write_openslo(config, out)
    else:
        try:
            paths = write_rules(config, out, interval)
        except ValueError as exc:
            raise UsageError(f"--interval: {exc}") from exc
    for path in paths:
        print(path)
    return EXIT_OK


def _import_openslo(path: Path, out: Path | None) -> int:
    from monitor.openslo.importer import OpenSloImportError, import_openslo, render_fragment

    try:
        text = render_fragment(import_openslo(path), path)
    except OpenSloImportError as exc:
        raise UsageError(str(exc)) from exc
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        print(out)
    return EXIT_OK


def _dashboards(config: Config, args: argparse.Namespace) -> int:
    need_extra("dashboards")
    from monitor.generate import dashboards

    if args.action == "preview":
        if not args.prometheus:
            raise UsageError("dashboards preview needs --prometheus URL")
        from monitor.generate.preview import preview

        print(preview(config, args.prometheus, args.out))
        return EXIT_OK
    for path in dashboards.write_dashboards(config, args.out):
        print(path)
    return EXIT_OK


def _run_until_signal(
    body: Callable[[asyncio.Event], Awaitable[int | None]],
    reload: Callable[[], bool] | None = None,
    argv: Sequence[str] = (),
) -> int:
    """Run ``body`` until SIGTERM or SIGINT sets its stop event; its exit code, or 0.

    SIGHUP with ``reload``: when the config on disk validates, ``body`` is stopped the
    same way (drained, flushed) and the process executes itself again with ``argv``:
    the same process id, the new config, nothing measured lost. When it does not, the
    error is logged and the running daemon goes on with the config it has.
    """
    reloading = False

    async def main() -> int | None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # The handler only sets the event; shutdown happens in order in `body`.
            loop.add_signal_handler(sig, stop.set)

        def hangup() -> None:
            nonlocal reloading
            if reload is None:
                log.warning("SIGHUP ignored: only `run` reloads its config")
            elif not stop.is_set() and reload():
                reloading = True
                stop.set()

        loop.add_signal_handler(signal.SIGHUP, hangup)
        return await body(stop)

    code = asyncio.run(main())
    code = EXIT_OK if code is None else code
    if reloading and code == EXIT_OK:
        log.info("restarting in place with the reloaded config")
        logging.shutdown()
        os.execv(sys.executable, [sys.executable, "-m", "monitor", *argv])
    return code


def with_identity(
    config: Config, instance: str | None, location: str | None, store_url: str | None
) -> Config:
    """The config with ``run``'s --instance, --location and --store-url applied (checked
    as the config's own keys are; a bad value is a usage error naming the flag)."""
    from pydantic import ValidationError

    from monitor.config import InstanceConfig, StorageConfig

    given = {"--instance": instance, "--location": location, "--store-url": store_url}
    try:
        identity = InstanceConfig.model_validate(
            {
                **config.instance.model_dump(),
                **({"name": instance} if instance is not None else {}),
                **({"location": location} if location is not None else {}),
            }
        )
        storage = config.storage
        if store_url is not None:
            storage = StorageConfig.model_validate({**storage.model_dump(), "url": store_url})
    except ValidationError as exc:
        error = exc.errors()[0]
        flag = {"name": "--instance", "location": "--location", "url": "--store-url"}.get(
            str(error["loc"][-1]), "--instance"
        )
        shown = "" if flag == "--store-url" else f" {given[flag]!r}"  # a URL may hold a secret
        raise UsageError(f"{flag}{shown}: {error['msg'].removeprefix('Value error, ')}") from None
    names = config.locations.names
    if names and identity.location not in names:
        raise UsageError(
            f"--location {identity.location!r}: not one of locations.names ({', '.join(names)});"
            " give this daemon's with --location or instance.location"
        )
    return config.model_copy(update={"instance": identity, "storage": storage})


def _reload_is_valid(path: Path) -> bool:
    """Whether the config at ``path`` may replace the running one (logged either way)."""
    try:
        config = load_config(path)
        if missing := missing_secrets(config):
            raise ConfigError("\n".join(f"{path}: {m}" for m in missing))
    except ConfigError as exc:
        log.error("SIGHUP: config reload refused, the running config stays:\n%s", exc)
        return False
    for warning in config_warnings(config):
        log.warning("%s: %s", path, warning)
    log.info("SIGHUP: %s is valid; draining and flushing, then restarting with it", path)
    return True


async def _run(
    config: Config, stop: asyncio.Event, allow_degraded_start: bool, config_file: Path
) -> int:
    from monitor.app import Daemon

    daemon = Daemon(config, allow_degraded_start=allow_degraded_start, config_file=config_file)
    await daemon.run(stop)
    if daemon.lost_results:
        log.critical("%d measured results were lost (see above)", daemon.lost_results)
        return EXIT_FAILURE
    return EXIT_OK


async def _simulate(config: Config, stop: asyncio.Event) -> None:
    from simulator.network import run_simulator

    if config.simulator is None:
        raise ConfigError("the config has no simulator: section")
    await run_simulator(config.simulator, config.brokers, stop)


async def _demo(config: Config, stop: asyncio.Event) -> None:
    from monitor.app import Daemon
    from monitor.embedded_broker import EmbeddedBroker
    from monitor.store import shown
    from simulator.network import Simulator

    if config.simulator is None:
        raise ConfigError("the demo config has no simulator: section")
    brokers = [EmbeddedBroker(b.host, b.port) for b in config.brokers.values()]
    for broker in brokers:
        await broker.start()
    try:
        async with Simulator(config.simulator, config.brokers, keep_records=False):
            daemon = Daemon(config)
            task = asyncio.create_task(daemon.run(stop))
            ready = asyncio.create_task(daemon.ready.wait())
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            if daemon.ready.is_set():
                url = daemon.server.url
                print(
                    "\nsla-monitor demo is running (Ctrl-C to stop):\n"
                    f"  status page          {url}/\n"
                    f"  SLA figures (JSON)   {url}/api/sla\n"
                    f"  Prometheus metrics   {url}/metrics\n"
                    f"  health               {url}/healthz\n"
                    f"  store                {shown(config.storage.location)}\n"
                    "Figures fill in as results arrive; after a minute every objective has one.\n",
                    flush=True,
                )
            else:
                ready.cancel()
            await task
    finally:
        for broker in brokers:
            await broker.stop()
