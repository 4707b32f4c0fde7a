"""Config validation: a table of bad files with their exact errors, for the loader and the
CLI (blackbox_exporter style), and the spellings a valid config accepts."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import LatencyObjective, load_config, parse_config
from monitor.errors import ConfigError
from monitor.sla.objectives import location_series, probe_thresholds

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "tests" / "testdata" / "config"
DEMO = ROOT / "config" / "demo.yaml"

#: Each bad file and the exact error lines it must produce, after "<path>:".
BAD_CONFIGS: list[tuple[str, list[str]]] = [
    (
        "bad-unknown-key.yaml",
        [
            "7: services[0].probes[0].intervall: unknown key "
            "(check its spelling and its place in the file)"
        ],
    ),
    (
        "bad-negative-interval.yaml",
        ["7: services[0].probes[0].interval: Input should be greater than 0 (got -1)"],
    ),
    (
        "bad-target-150-percent.yaml",
        ["10: services[0].objectives[0].target: Input should be less than 100 (got '150%')"],
    ),
    (
        "bad-threshold-fast.yaml",
        [
            "10: services[0].objectives[0].threshold: 'fast' is not a duration "
            "(use seconds, or a number with ms, s, m, h or d) (got 'fast')"
        ],
    ),
    (
        "bad-missing-broker.yaml",
        [
            "12: services[0].probes[1].broker: service 'online' probe 'p2' uses broker "
            "'elsewhere', which is not defined under brokers"
        ],
    ),
    (
        "bad-missing-default-broker.yaml",
        [
            "10: services[0].probes[0].steps[1].broker: service 'online' probe 'career' uses "
            "broker 'default', which is not defined under brokers"
        ],
    ),
    (
        "bad-duplicate-probe.yaml",
        ["7: services[0].probes[1].name: probe name 'p1' is used twice"],
    ),
    (
        "bad-ingest-broker.yaml",
        [
            "8: ingest.mqtt.broker: ingest.mqtt uses broker 'gateways', which is not defined "
            "under brokers"
        ],
    ),
    (
        "bad-source-without-feed.yaml",
        [
            "12: services[0].objectives[0].source: objective 'online-1s' has source 'traffic' "
            "but the service has no kind: traffic feed to count"
        ],
    ),
    (
        "bad-source-probe-mismatch.yaml",
        ["15: services[0].objectives[0].probes[1]: 'p1' is a probe, not of source 'traffic'"],
    ),
    ("bad-duplicate-yaml-key.yaml", ["7: key 'url' appears twice"]),
    ("bad-yaml-syntax.yaml", ["4: not valid YAML: expected the node content, but found '-'"]),
    ("bad-empty.yaml", ["1: the file is empty"]),
    (
        "bad-interval-list.yaml",
        ["7: services[0].probes[0].interval: Input should be a valid number"],
    ),
    (
        "bad-target-fraction.yaml",
        [
            "11: services[0].objectives[0].target: "
            "Input should be greater than or equal to 50 (got 0.99)"
        ],
    ),
    (
        "bad-missing-required-key.yaml",
        ["4: services[0].probes[0].request_topic: required key is missing"],
    ),
    (
        "bad-two-errors.yaml",
        [
            "7: services[0].probes[0].timeout: Input should be greater than 0 (got 0)",
            "13: services[0].objectives[0].window: unknown key "
            "(check its spelling and its place in the file)",
        ],
    ),
    (
        "bad-unknown-weekday.yaml",
        [
            "9: services[0].schedule.hours[0].days: unknown weekday 'wensday' "
            "(use mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri)"
        ],
    ),
    (
        "bad-hours-start-equals-end.yaml",
        [
            "11: services[0].schedule.hours[0].end: start and end are both 08:00: "
            "write 00:00 to 24:00 for a whole day"
        ],
    ),
    (
        "bad-hours-25-00.yaml",
        [
            "11: services[0].schedule.hours[0].end: not a time of day: "
            "use HH:MM from 00:00 to 24:00 (got '25:00')"
        ],
    ),
    (
        "bad-holiday-country.yaml",
        [
            "9: services[0].schedule.holidays.country: unknown holiday country: use an "
            "ISO 3166-1 alpha-2 code the holidays package supports, e.g. BE (got 'XX')"
        ],
    ),
    (
        "bad-holiday-subdivision.yaml",
        [
            "10: services[0].schedule.holidays.subdivision: unknown subdivision 'Brussels' "
            "of BE (known: Flemish, French, German)"
        ],
    ),
    (
        "bad-maintenance-end-before-start.yaml",
        ["9: services[0].maintenance[0].end: end must be after start"],
    ),
    (
        "bad-contract-unknown-objective.yaml",
        ["14: contract.objectives[0].objective: service 'online' has no objective 'online-2s'"],
    ),
    (
        "bad-coverage-floor.yaml",
        [
            "9: services[0].objectives[0].coverage_floor: Input should be less than or equal "
            "to 100 (got 120)"
        ],
    ),
    (
        "bad-depends-on-unknown.yaml",
        [
            "3: services[0].depends_on[1]: service 'integrated' depends on unknown "
            "service 'identity'"
        ],
    ),
    (
        "bad-depends-on-self.yaml",
        ["4: services[0].depends_on[0]: service 'online' cannot depend on itself"],
    ),
    (
        "bad-depends-on-cycle.yaml",
        ["3: services[0].depends_on[0]: dependency cycle: a -> b -> c -> a"],
    ),
    (
        "bad-storage-url-password.yaml",
        [
            "2: storage.url: holds a password: put it in the environment (PGPASSWORD) or"
            " ~/.pgpass, not in the config"
        ],
    ),
    (
        "bad-storage-url-scheme.yaml",
        ["8: storage.url: not a postgresql:// URL (postgresql://USER@HOST:PORT/DATABASE)"],
    ),
]


def expected_lines(name: str, lines: list[str]) -> list[str]:
    path = TESTDATA / name
    return [f"{path}:{line}" for line in lines]


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """``python -m monitor check-config PATH``, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_bad_file_is_in_the_table() -> None:
    assert sorted(p.name for p in TESTDATA.glob("bad-*.yaml")) == sorted(n for n, _ in BAD_CONFIGS)


@pytest.mark.parametrize(("name", "lines"), BAD_CONFIGS, ids=[n for n, _ in BAD_CONFIGS])
def test_load_config_rejects_bad_file_with_exact_errors(name: str, lines: list[str]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(TESTDATA / name)
    assert str(excinfo.value).splitlines() == expected_lines(name, lines)


def test_load_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as excinfo:
        load_config(missing)
    assert str(excinfo.value) == f"{missing}: config file not found"


@pytest.mark.parametrize(("name", "lines"), BAD_CONFIGS, ids=[n for n, _ in BAD_CONFIGS])
def test_cli_check_config_rejects_bad_file(name: str, lines: list[str]) -> None:
    completed = check_config(TESTDATA / name)
    assert completed.returncode == 2, completed.stderr
    for line in expected_lines(name, lines):
        assert line in completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout


def test_cli_check_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    completed = check_config(missing)
    assert completed.returncode == 2, completed.stderr
    assert f"{missing}: config file not found" in completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout


@pytest.mark.parametrize("path", [DEMO, TESTDATA / "good-simulator.yaml"], ids=lambda p: p.name)
def test_cli_check_config_accepts_good_file(path: Path) -> None:
    completed = check_config(path)
    assert completed.returncode == 0, completed.stderr
    assert len(completed.stdout.strip().splitlines()) == 1
    assert "Traceback" not in completed.stderr


# --- what a valid config accepts ------------------------------------------------------------


def test_demo_config_is_valid() -> None:
    config = load_config(DEMO)
    assert [s.name for s in config.services] == [
        "online-messages",
        "integrated-services",
        "data-requests",
    ]
    assert config.simulator is not None
    assert config.server.port == 9177


def test_config_with_a_simulator_section_parses() -> None:
    config = load_config(TESTDATA / "good-simulator.yaml")
    assert config.simulator is not None
    assert config.simulator.seed == 7
    assert config.simulator.profiles["online"].latency.median == 0.15
    assert [r.request_topic for r in config.simulator.mqtt] == ["crossroads/online/a/request"]
    service = config.service("online")
    assert [p.interval for p in service.probes] == [0.25, 300.0, 0.5]
    assert [p.timeout for p in service.probes] == [1.0, 2.0, 1.5]
    assert [o.target for o in service.objectives] == [99.5, 99.5, 99.0]


def probe_config(interval: str) -> str:
    return (
        "services:\n"
        "  - name: s\n"
        "    probes:\n"
        "      - name: p\n"
        "        kind: http\n"
        "        url: http://127.0.0.1:8181/\n"
        f"        interval: {interval}\n"
    )


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("250ms", 0.25),
        ("1s", 1.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("2", 2.0),
        ("0.1", 0.1),
        ("4d", 345_600.0),
        ('"3"', 3.0),
    ],
)
def test_durations_accept_units_and_numbers(written: str, seconds: float) -> None:
    config = parse_config(probe_config(written), "durations.yaml")
    assert config.services[0].probes[0].interval == pytest.approx(seconds)


@pytest.mark.parametrize("written", ["fast", "5 minutes", "1w", "-1s", "0", "0ms", "[1]"])
def test_durations_reject_nonsense(written: str) -> None:
    with pytest.raises(ConfigError, match=r"^durations\.yaml:7: services\[0\]\.probes\[0\]"):
        parse_config(probe_config(written), "durations.yaml")


def objective_config(target: str) -> str:
    return probe_config("1s") + (
        "    objectives:\n"
        "      - name: o\n"
        "        kind: latency\n"
        "        threshold: 1s\n"
        f"        target: {target}\n"
    )


@pytest.mark.parametrize("written", ['"99.5%"', "99.5%", "99.5", '"99.5"', '" 99.5 % "'])
def test_targets_accept_percent_strings_and_numbers(written: str) -> None:
    config = parse_config(objective_config(written), "targets.yaml")
    objective = config.services[0].objectives[0]
    assert isinstance(objective, LatencyObjective)
    assert objective.target == 99.5
    assert objective.target_ratio == pytest.approx(0.995)


@pytest.mark.parametrize("written", ["0.99", "100", "100%", "49.9", "ninety", "-99"])
def test_targets_outside_fifty_to_hundred_are_rejected(written: str) -> None:
    with pytest.raises(ConfigError, match=r"^targets\.yaml:12: .*objectives\[0\]\.target: "):
        parse_config(objective_config(written), "targets.yaml")


def test_a_short_database_url_with_a_password_is_refused_without_echoing_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "short.yaml"
    path.write_text("storage:\n  url: postgresql://a:pw9@h/d\nservices: []\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert "storage.url: holds a password" in str(excinfo.value)
    assert "pw9" not in str(excinfo.value)


def test_an_instance_is_named_after_its_host_unless_configured(tmp_path: Path) -> None:
    path = tmp_path / "instance.yaml"
    service = "services:\n  - name: svc\n    probes:\n      - {name: p, kind: http, url: http://127.0.0.1:9/}\n"
    path.write_text(service)
    config = load_config(path)
    expected = socket.gethostname().split(".")[0]
    assert config.instance.name == re.sub(r"[^A-Za-z0-9_.-]", "-", expected)[:63]
    assert config.instance.location == "default"
    path.write_text("instance:\n  name: probe bru\n" + service)
    with pytest.raises(ConfigError, match=r"instance.yaml:2: instance\.name: String should match"):
        load_config(path)


_SERVICE = "services:\n  - name: svc\n    probes:\n      - {name: p, kind: http, url: http://127.0.0.1:9/}\n"
_SHARED = "storage:\n  url: postgresql://sla@127.0.0.1/sla\ninstance:\n  location: bru\n"


@pytest.mark.parametrize(
    ("locations", "where"),
    [
        # A quorum no number of locations can reach: named at its own line and key.
        ("locations:\n  names: [bru, ghe]\n  quorum: 3\n", r"locs\.yaml:7: locations\.quorum: "),
        ("locations:\n  quorum: 2\n", r"locs\.yaml:6: locations\.quorum: "),
        ("locations:\n  names: [bru, bru]\n", r"locs\.yaml:6: locations\.names\[1\]: "),
        ("locations:\n  names: [ghe, ant]\n", r"locs\.yaml:4: instance\.location: .* not one of"),
    ],
)
def test_bad_locations_are_config_errors_naming_the_key(
    tmp_path: Path, locations: str, where: str
) -> None:
    path = tmp_path / "locs.yaml"
    path.write_text(_SHARED + locations + _SERVICE)
    with pytest.raises(ConfigError, match=where):
        load_config(path)


def test_several_locations_need_a_shared_store(tmp_path: Path) -> None:
    path = tmp_path / "locs.yaml"
    path.write_text("instance:\n  location: bru\nlocations:\n  names: [bru, ghe]\n" + _SERVICE)
    with pytest.raises(ConfigError, match=r"locs\.yaml:4: locations\.names: .*storage\.url"):
        load_config(path)


def test_the_quorum_defaults_to_a_majority(tmp_path: Path) -> None:
    path = tmp_path / "locs.yaml"
    for names, quorum in (("[bru]", 1), ("[bru, ghe]", 2), ("[bru, ghe, ant]", 2)):
        path.write_text(_SHARED + f"locations:\n  names: {names}\n" + _SERVICE)
        config = load_config(path)
        assert config.locations.quorum_of(config.instance.location) == quorum
        assert config.shared_minutes == (quorum > 1)


@pytest.mark.parametrize(
    ("objective", "where"),
    [
        # A location no daemon probes from, and a traffic feed (measured from nowhere).
        ("location: ant", r"locs\.yaml:12: services\[0\]\.objectives\[0\]\.location: .*'ant'"),
        ("location: ghe, source: both", r"locs\.yaml:12: .*objectives\[0\]\.location: only"),
    ],
)
def test_an_objective_of_one_location_names_a_known_one(
    tmp_path: Path, objective: str, where: str
) -> None:
    path = tmp_path / "locs.yaml"
    objectives = (
        "    objectives:\n"
        f"      - {{name: fast, kind: latency, threshold: 1s, target: 99, {objective}}}\n"
    )
    path.write_text(_SHARED + "locations:\n  names: [bru, ghe]\n" + _SERVICE + objectives)
    with pytest.raises(ConfigError, match=where):
        load_config(path)


def test_an_objective_of_one_location_sums_that_locations_series(tmp_path: Path) -> None:
    path = tmp_path / "locs.yaml"
    objectives = (
        "    objectives:\n"
        "      - {name: fast, kind: latency, threshold: 1s, target: 99}\n"
        "      - {name: fast-ghe, kind: latency, threshold: 2s, target: 99, location: ghe}\n"
    )
    path.write_text(_SHARED + "locations:\n  names: [bru, ghe]\n" + _SERVICE + objectives)
    config = load_config(path)
    service = config.services[0]
    assert [service.series_of(o) for o in service.objectives] == [["p"], ["p@ghe"]]
    assert probe_thresholds(config) == {("svc", "p"): (1.0,), ("svc", "p@ghe"): (2.0,)}
    assert location_series(config) == {("svc", "p", "ghe"): "p@ghe"}
