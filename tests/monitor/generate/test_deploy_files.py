"""The Dockerfile and the deploy/ stack, linted: no container engine runs here, so these
check what can be checked without one, with the real tools where they exist (promtool,
amtool, mosquitto), and that the files agree with each other and with the README."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from monitor.cli.main import main
from monitor.config import load_config
from monitor.generate.dashboards import FILES, SCRAPE_JOB
from tests.support.brokers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
CONFIG_IN_CONTAINER = "/etc/sla-monitor/config.yaml"
DATA_DIR = "/var/lib/sla-monitor"

_STRINGS = {"type": "array", "items": {"type": "string"}}
_SERVICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["image"],
    "additionalProperties": False,
    "properties": {
        "image": {"type": "string", "pattern": r"^[a-z0-9./_-]+:[A-Za-z0-9._-]+$"},
        "build": {
            "type": "object",
            "required": ["context"],
            "additionalProperties": False,
            "properties": {"context": {"type": "string"}, "dockerfile": {"type": "string"}},
        },
        "command": _STRINGS,
        "environment": {"type": "object", "additionalProperties": {"type": "string"}},
        "volumes": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[^:]+:/[^:]*(:ro)?$"},
        },
        # Published on loopback only: the host decides what to expose further.
        "ports": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^127\.0\.0\.1:\d+:\d+$"},
        },
        "depends_on": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["condition"],
                "additionalProperties": False,
                "properties": {
                    "condition": {
                        "enum": [
                            "service_started",
                            "service_healthy",
                            "service_completed_successfully",
                        ]
                    }
                },
            },
        },
        "profiles": _STRINGS,
        "healthcheck": {"type": "object"},
        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
        "stop_grace_period": {"type": "string"},
    },
}
COMPOSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["services", "volumes"],
    "patternProperties": {"^x-": {}},
    "properties": {
        "name": {"type": "string"},
        "services": {"type": "object", "additionalProperties": _SERVICE_SCHEMA},
        "volumes": {"type": "object", "additionalProperties": {"type": ["null", "object"]}},
    },
    "additionalProperties": False,
}


def _tool(name: str) -> str:
    """A Debian tool the tests need; missing is a failure (`make test` installs it)."""
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not Path(path).exists():
        raise RuntimeError(f"{name} is not installed: run `make test` (it installs it)")
    return path


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """deploy/compose.yaml, loaded."""
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a ./ path or a volume name)."""
    return {parts[1]: parts[0] for parts in (v.split(":") for v in service.get("volumes", []))}


# --- Dockerfile --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    """The Dockerfile, parsed."""
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    return parser


def _instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == name]


def test_dockerfile_slim_non_root_with_healthcheck(dockerfile: DockerfileParser) -> None:
    """Slim Python base, a non-root USER, /healthz checked, data on a volume."""
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", dockerfile.baseimage)
    users = _instructions(dockerfile, "USER")
    assert users, "no USER: the daemon would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    (healthcheck,) = _instructions(dockerfile, "HEALTHCHECK")
    assert '["sla-monitor", "health"]' in healthcheck  # /healthz where the config listens
    assert "--interval" in healthcheck
    # tini as PID 1 reaps the report workers and Chromium, and passes signals on.
    (entrypoint,) = _instructions(dockerfile, "ENTRYPOINT")
    assert entrypoint.startswith('["tini", "--"')
    assert any("tini" in run for run in _instructions(dockerfile, "RUN"))
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data", "tests"} <= set(ignored)
    assert any(DATA_DIR in v for v in _instructions(dockerfile, "VOLUME"))
    cmd = " ".join(_instructions(dockerfile, "CMD"))
    assert CONFIG_IN_CONTAINER in cmd
    copied = " ".join(_instructions(dockerfile, "COPY"))
    for package in ("monitor", "probes", "simulator", "pyproject.toml"):
        assert package in copied


def test_dockerfile_installs_as_the_readme_says(dockerfile: DockerfileParser) -> None:
    """The image's pip step is the README's install command, character for character."""
    steps = [
        part.strip()
        for run in _instructions(dockerfile, "RUN")
        for part in run.split("&&")
        if "pip install" in part
    ]
    assert len(steps) == 1, steps
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"^{re.escape(steps[0])}(\s|$)", readme, re.MULTILINE), (
        f"README.md does not show the Dockerfile's install step {steps[0]!r}"
    )


# --- compose -----------------------------------------------------------------------------------


def test_compose_structure(compose: dict[str, Any]) -> None:
    """Schema-valid; the stack's services; mounts, volumes and dependencies resolve."""
    jsonschema.validate(compose, COMPOSE_SCHEMA)
    services = compose["services"]
    assert set(services) == {
        "mosquitto",
        "sla-monitor",
        "simulator",
        "rules",
        "dashboards",
        "prometheus",
        "alertmanager",
        "grafana",
        "postgres",
        "sla-monitor-brussels",
        "sla-monitor-liege",
    }
    assert services["simulator"]["profiles"] == ["simulator"]
    locations = {"postgres", "sla-monitor-brussels", "sla-monitor-liege"}
    assert all(services[n]["profiles"] == ["locations"] for n in locations)
    assert all(
        "profiles" not in s for n, s in services.items() if n not in {"simulator", *locations}
    )
    for name, service in services.items():
        for target, source in _mounts(service).items():
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} missing"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} not declared"
            assert target.startswith("/")
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    # Built from the repository's Dockerfile, with the deploy config mounted.
    for name in ("sla-monitor", "simulator", "rules", "dashboards"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}
        assert _mounts(service)[CONFIG_IN_CONTAINER] == "./sla-monitor.yaml"
    assert _mounts(services["sla-monitor"])[DATA_DIR] == "sla-data"
    assert services["sla-monitor"]["command"] == ["run", "--config", CONFIG_IN_CONTAINER]
    for one_shot in ("simulator", "rules", "dashboards"):
        assert services[one_shot]["healthcheck"] == {"disable": True}
    grafana = services["grafana"]
    assert grafana["image"] == "grafana/grafana:11.6.0"  # the SDK build the JSON targets
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${")


def test_the_locations_profile_runs_two_daemons_on_one_database(compose: dict[str, Any]) -> None:
    """Each location's daemon: the one deploy config, its identity and the database on its
    command line (parsed and applied as `sla-monitor run` does), the password from the
    environment."""
    from monitor.cli.main import _parser, with_identity

    services = compose["services"]
    database = services["postgres"]["environment"]
    seen = set()
    for name in ("sla-monitor-brussels", "sla-monitor-liege"):
        service = services[name]
        args = _parser().parse_args(service["command"])
        assert args.command == "run"
        assert args.config == Path(CONFIG_IN_CONTAINER)
        assert _mounts(service)[CONFIG_IN_CONTAINER] == "./sla-monitor.yaml"
        config = with_identity(
            load_config(DEPLOY / "sla-monitor.yaml"), args.instance, args.location, args.store_url
        )
        assert config.storage.url is not None
        assert f"@postgres:5432/{database['POSTGRES_DB']}" in config.storage.url
        assert config.storage.url.startswith(f"postgresql://{database['POSTGRES_USER']}@")
        assert service["environment"]["PGPASSWORD"] == database["POSTGRES_PASSWORD"]
        assert database["POSTGRES_PASSWORD"].startswith("${")
        assert set(service["depends_on"]) == {"postgres", "mosquitto"}
        seen.add((config.instance.name, config.instance.location))
    assert seen == {("brussels-1", "brussels"), ("liege-1", "liege")}


def test_deploy_config_is_valid_for_the_container(compose: dict[str, Any]) -> None:
    """The daemon listens on 0.0.0.0, stores on the volume, talks to the compose services."""
    config = load_config(DEPLOY / "sla-monitor.yaml")
    assert config.server.host == "0.0.0.0"
    assert config.storage.path.startswith(DATA_DIR + "/")
    assert {b.host for b in config.brokers.values()} == {"mosquitto"}
    assert config.simulator is not None
    assert config.simulator.http is not None
    assert config.simulator.http.listen.startswith("0.0.0.0:")
    urls = re.findall(r"https?://([\w.-]+):", (DEPLOY / "sla-monitor.yaml").read_text())
    assert set(urls) == {"simulator"}
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["job_name"] == SCRAPE_JOB
    assert job["static_configs"][0]["targets"] == [f"sla-monitor:{config.server.port}"]
    assert "sla-monitor" in compose["services"]


def test_generators_write_what_prometheus_and_grafana_read(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """Run the one-shot services' commands here (container paths mapped to tmp): the rules
    land where Prometheus's rule_files glob reads and pass promtool; the dashboards land
    where Grafana's provider reads."""
    services = compose["services"]
    volume_dirs: dict[str, Path] = {}
    for name in ("rules", "dashboards"):
        service = services[name]
        mounts = _mounts(service)
        out = tmp_path / mounts[DATA_DIR]
        volume_dirs[mounts[DATA_DIR]] = out
        args = [
            str(DEPLOY / "sla-monitor.yaml")
            if a == CONFIG_IN_CONTAINER
            else str(out)
            if a == DATA_DIR
            else a
            for a in service["command"]
        ]
        assert main(args) == 0
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (glob,) = prometheus["rule_files"]
    rules_mount = _mounts(services["prometheus"])
    rules_dir, pattern = glob.rsplit("/", 1)
    rule_files = sorted(volume_dirs[rules_mount[rules_dir]].glob(pattern))
    assert rule_files
    promtool = _tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", *map(str, rule_files)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The whole Prometheus config, with the glob pointed at the generated files.
    local = dict(prometheus, rule_files=[str(rule_files[0].parent / pattern)])
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(local))
    checked = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "alertmanager:9093" in str(prometheus["alerting"])

    provider_file = DEPLOY / "grafana" / "provisioning" / "dashboards" / "sla-monitor.yaml"
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    path = provider["options"]["path"]
    grafana_mounts = _mounts(services["grafana"])
    written = sorted(p.name for p in volume_dirs[grafana_mounts[path]].iterdir())
    assert written == sorted(FILES.values())
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{path}/{FILES['sla-overview']}"
    assert grafana_mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"


def test_grafana_datasource_provisioning() -> None:
    """One default Prometheus datasource at the compose service, told the scrape interval."""
    path = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
    document = yaml.safe_load(path.read_text())
    assert document["apiVersion"] == 1
    (source,) = document["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert source["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]


def test_alertmanager_config_passes_amtool() -> None:
    """amtool (Debian's prometheus-alertmanager) accepts the config."""
    checked = subprocess.run(
        [_tool("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_mosquitto_config_starts_a_real_broker(tmp_path: Path) -> None:
    """The stack's mosquitto.conf (TCP_NODELAY on) starts Mosquitto, moved to a free port."""
    text = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    assert re.search(r"^set_tcp_nodelay true$", text, re.MULTILINE)
    port = free_port()
    local = re.sub(r"^listener .*$", f"listener {port} 127.0.0.1", text, flags=re.MULTILINE)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(local)
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise RuntimeError("mosquitto is not installed: run `make test` (it installs it)")
    with (tmp_path / "mosquitto.log").open("ab") as log:  # the child keeps its own copy
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
    try:
        wait_for_port(port)
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- systemd ---------------------------------------------------------------------------------


def test_the_systemd_unit_is_valid_and_hardened(tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts it (its ExecStart pointed at a binary that exists
    here); it runs ``run`` as a system user, reloads with SIGHUP, drains on SIGTERM."""
    text = (ROOT / "deploy" / "systemd" / "sla-monitor.service").read_text()
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string(text)
    service = unit["Service"]
    assert service["ExecStart"].endswith("sla-monitor --log-format json run")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM"
    assert service["User"] != "root"
    assert service["Environment"] == "SLA_MONITOR_CONFIG=/etc/sla-monitor/config.yaml"
    for key in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "ProtectHome"):
        assert key in service
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        assert os.environ.get("CI") != "true", "systemd-analyze is missing in CI"
        return
    copy = tmp_path / "sla-monitor.service"
    copy.write_text(text.replace(service["ExecStart"].split()[0], "/bin/true"))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "sla-monitor.service" not in done.stderr, done.stderr  # no warning about it
