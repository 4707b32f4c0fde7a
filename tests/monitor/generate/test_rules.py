"""Generated Prometheus rules, proven with the real promtool (Debian's ``prometheus``).

``promtool check rules`` validates the rules of several configs. ``promtool test rules``
runs a unit-test file generated here from the scenario config: synthetic counters, built
the way prometheus_client exposes them (the ``le`` labels come from a real registry), and
for every evaluation minute a Python model of the SLIs, burn rates and alert lifecycle,
computed from the windows with exact fractions, says which alerts fire and what each
recorded SLI is. promtool then checks the rules agree with the model.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli.main import EXIT_OK, EXIT_USAGE, main
from monitor.config import AvailabilityObjective, Config, LatencyObjective, load_config
from monitor.generate.rules import (
    BURN_ALERT,
    DATA_MISSING_ALERT,
    DOWN_ALERT,
    DOWN_RULE,
    GOOD_RECORD,
    LONG_WINDOWS,
    RULES_FILE,
    SLI_WINDOWS,
    TARGET_RECORD,
    VALID_RECORD,
    build_rules,
    error_record,
    prometheus_duration,
    prometheus_window,
    render_rules,
    sli_record,
    write_rules,
)
from monitor.metrics import AVAILABILITY_STATES

REPO = Path(__file__).resolve().parents[3]
SCENARIO = REPO / "tests" / "testdata" / "rules" / "scenario.yaml"

#: Minutes of each recorded window.
WINDOW_MINUTES = {
    "5m": 5,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "6h": 360,
    "1d": 1440,
    "3d": 4320,
    "30d": 43_200,
}


def promtool(*args: str, cwd: Path) -> str:
    """Run the real promtool; a missing promtool fails the test (never a skip)."""
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail(
            "promtool not found on PATH: install Debian's prometheus package "
            "(`make system-packages` does, with --no-install-recommends)"
        )
    proc = subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, (
        f"promtool {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout


# --- pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (120, "2m"), (90, "1m30s"), (1.5, "1s500ms"), (5400, "1h30m"), (86_400, "1d")],
)
def test_prometheus_duration(seconds: float, expected: str) -> None:
    assert prometheus_duration(seconds) == expected


def test_built_in_windows_map_to_recorded_windows() -> None:
    assert prometheus_window("24h") == "1d"
    assert prometheus_window("5m") == "5m"
    assert tuple(WINDOW_MINUTES) == SLI_WINDOWS
    with pytest.raises(ValueError, match="not recorded"):
        prometheus_window("7d")


def test_every_objective_gets_every_window_and_every_burn_rate_alert() -> None:
    config = load_config(REPO / "config" / "demo.yaml")
    document = build_rules(config)
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    objectives = [(s.name, o.name) for s in config.services for o in s.objectives]
    for service, objective in objectives:
        own = [r for r in rules if r["labels"]["service"] == service]
        own = [r for r in own if r["labels"]["objective"] == objective]
        records = {r["record"] for r in own if "record" in r}
        assert records == {
            TARGET_RECORD,
            GOOD_RECORD,
            VALID_RECORD,
            *(sli_record(w) for w in SLI_WINDOWS),
            *(error_record(w) for w in SLI_WINDOWS),
        }
        burns = [r for r in own if r.get("alert") == BURN_ALERT]
        assert [(r["labels"]["rule"], r["labels"]["long_window"]) for r in burns] == [
            ("burn-14x", "1h"),
            ("burn-6x", "6h"),
            ("burn-3x", "1d"),
            ("burn-1x", "3d"),
        ]
        assert all("for" not in r for r in burns)  # pending_for 0: no `for:`
    downs = [r for r in rules if r.get("alert") == DOWN_ALERT]
    assert [(r["labels"]["service"], r["labels"]["objective"]) for r in downs] == [
        (s.name, o.name)
        for s in config.services
        for o in s.objectives
        if isinstance(o, AvailabilityObjective)
    ]


def test_rendering_is_stable_and_reads_only_the_post_exclusion_counters() -> None:
    config = load_config(SCENARIO)
    text = render_rules(config)
    assert text == render_rules(load_config(SCENARIO))
    assert "for: 2m" in text
    assert "interval: 30s" in text
    # Not the raw probe series, which count maintenance and outside-hours results too.
    assert "sla_probe_" not in text
    # No rule reads more than 6 h of raw samples: the long windows average 5m rates.
    long_reads = re.findall(r"sla_[a-z_]+_total\{[^}]*\}\[(\d+[dh])\]", text)
    assert long_reads
    assert set(long_reads) <= {"1h", "2h", "6h"}


def test_interval_is_checked() -> None:
    config = load_config(SCENARIO)
    assert "interval: 5s" in render_rules(config, interval="5s")
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        build_rules(config, interval="5 seconds")


# --- promtool check rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    "config_path",
    [REPO / "config" / "demo.yaml", REPO / "config" / "example.yaml", SCENARIO],
    ids=lambda p: p.name,
)
def test_promtool_check_rules_accepts_the_generated_rules(
    config_path: Path, tmp_path: Path
) -> None:
    paths = write_rules(load_config(config_path), tmp_path)
    assert paths == [tmp_path / RULES_FILE]
    out = promtool("check", "rules", *(str(p) for p in paths), cwd=tmp_path)
    assert "SUCCESS" in out


def test_promtool_check_rules_without_service_down_and_with_odd_pending(tmp_path: Path) -> None:
    text = SCENARIO.read_text().replace(
        "service_down: {consecutive_minutes: 3}", "service_down: {enabled: false}"
    )
    text = text.replace("pending_for: 2m", "pending_for: 90s")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(text)
    config = load_config(config_path)
    rules = build_rules(config)["groups"][0]["rules"]
    assert not [r for r in rules if r.get("alert") == DOWN_ALERT]
    pending = {r["for"] for r in rules if "alert" in r and r["alert"] != DATA_MISSING_ALERT}
    assert pending == {"1m30s"}
    promtool("check", "rules", *(str(p) for p in write_rules(config, tmp_path)), cwd=tmp_path)


# --- the CLI ------------------------------------------------------------------------------


def test_cli_writes_the_rules(tmp_path: Path) -> None:
    out = tmp_path / "rules"
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "rules", "--config", "config/demo.yaml", "--out", out],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stdout.strip() == str(out / RULES_FILE)
    assert (out / RULES_FILE).read_text() == render_rules(load_config(REPO / "config/demo.yaml"))
    promtool("check", "rules", str(out / RULES_FILE), cwd=tmp_path)


def test_cli_rejects_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCENARIO.read_text().replace("target: 99.5", "target: 0.995"))
    out = tmp_path / "rules"
    assert main(["rules", "--config", str(bad), "--out", str(out)]) == EXIT_USAGE
    assert f"{bad}:" in capsys.readouterr().err
    assert not out.exists()
    missing = str(tmp_path / "missing.yaml")
    assert main(["rules", "--config", missing, "--out", str(out)]) == EXIT_USAGE


# --- promtool test rules: synthetic series and a model of what must fire ------------------

#: The burning service is healthy up to and including this minute, then burns.
T0 = 401
#: The last evaluated minute.
HORIZON = T0 + 130
#: ``alerting.pending_for`` of the scenario config, in minutes.
PENDING = 2


@dataclass(frozen=True)
class Batch:
    """``count`` exchanges of one minute with one outcome (and latency when ok)."""

    count: int
    outcome: str  # ok | error | timeout, as sla_probe_attempts_total counts them
    latency_s: float = 0.0


@dataclass(frozen=True)
class Stream:
    """One probe as one daemon instance exposes it: its exchanges minute by minute."""

    service: str
    probe: str
    instance: str
    minute: Callable[[int], list[Batch]]


# Attempts per minute are primes (97, 31): burn rates are then never a decimal tie, so
# an annotation's rounded $value reads the same from Prometheus's floats and from ours.


def _fast_path(m: int) -> list[Batch]:
    if m <= T0:
        return [Batch(97, "ok", 0.1)]
    # 21 of 97 miss 250 ms (21.6x a 1 % budget); 3 miss 2.5 s.
    return [Batch(76, "ok", 0.1), Batch(18, "ok", 0.3), Batch(1, "ok", 3.0), Batch(2, "error")]


def _slow_path(m: int) -> list[Batch]:
    if m <= T0:
        return [Batch(31, "ok", 1.5)]
    return [Batch(27, "ok", 1.5), Batch(2, "error"), Batch(2, "timeout")]


def _online(m: int) -> list[Batch]:
    # 1 of 200 fails: half the 1 % budget (0.5x), every minute.
    return [Batch(199, "ok", 0.2), Batch(1, "timeout")]


def _burning_minutes(m: int) -> str:
    if m in (T0 + 10, T0 + 11, T0 + 13):
        return "down"  # two down minutes, maintenance, one more: never 3 in a row
    if m == T0 + 12 or T0 + 60 <= m <= T0 + 70:
        return "maintenance"
    if T0 + 30 <= m <= T0 + 39:
        return "down"  # ten in a row
    if m == T0 + 50:
        return "unmonitored"
    if m == T0 + 51:
        return "outside_hours"
    return "up"


def _healthy_minutes(m: int) -> str:
    return "down" if m in (200, 400) else "up"


@dataclass(frozen=True)
class Scenario:
    """Input series of one promtool test group."""

    name: str
    streams: list[Stream]
    #: (service, objective) -> minute -> state of that sealed minute.
    minutes: dict[tuple[str, str], Callable[[int], str]]
    #: service -> minute -> 1 while in maintenance (no entry: the gauge is absent).
    maintenance: dict[str, Callable[[int], int]]


BURNING = Scenario(
    "burning",
    [
        Stream("burning", "fast.path", "a:9177", _fast_path),
        # Two daemon instances each probe a shard of slow-path: rules sum across them.
        Stream("burning", "slow-path", "a:9177", _slow_path),
        Stream("burning", "slow-path", "b:9177", _slow_path),
    ],
    {("burning", "availability"): _burning_minutes},
    {"burning": lambda m: int(T0 + 60 <= m <= T0 + 70)},
)
HEALTHY = Scenario(
    "healthy",
    [Stream("healthy", "online", "a:9177", _online)],
    {("healthy", "availability"): _healthy_minutes},
    {},
)


def _cumulative(per_minute: Callable[[int], float]) -> list[float]:
    """Counter values at minutes 0..HORIZON, from 0, gaining ``per_minute(m)`` at ``m``."""
    values = [0.0]
    for m in range(1, HORIZON + 1):
        values.append(values[-1] + per_minute(m))
    return values


def _series_text(values: list[float]) -> str:
    """promtool's expanding notation: runs of equal steps as ``a+bxn``."""
    parts = [_num(values[0])]
    i = 1
    while i < len(values):
        step = values[i] - values[i - 1]
        n = 1
        while i + n < len(values) and values[i + n] - values[i + n - 1] == step:
            n += 1
        sign = "+" if step >= 0 else "-"
        parts.append(f"{_num(values[i])}{sign}{_num(abs(step))}x{n - 1}")
        i += n
    return " ".join(parts)


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _labels(metric: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{metric}{{{inner}}}"


#: Minute states that exclude a service's results from its latency objectives.
EXCLUDED = ("maintenance", "outside_hours")
#: The last minute the healthy service's daemon seals: from then on its data is stale.
HEALTHY_SEALS_UNTIL = 450


def _excluded(scenario: Scenario, service: str, m: int) -> bool:
    """Is minute m excluded for the service (as the daemon decides, so not counted)?"""
    return any(f(m) in EXCLUDED for (s, _), f in scenario.minutes.items() if s == service)


def latency_events(
    config: Config, scenario: Scenario, service: str, objective: LatencyObjective, instance: str
) -> tuple[Callable[[int], int], Callable[[int], int]]:
    """Good and bad events per minute an instance's daemon counts for the objective: its
    probes' results, none from excluded minutes."""
    probes = set(config.service(service).probes_of(objective))
    streams = [
        s
        for s in scenario.streams
        if s.service == service and s.probe in probes and s.instance == instance
    ]

    def good(m: int) -> int:
        if _excluded(scenario, service, m):
            return 0
        return sum(
            b.count
            for s in streams
            for b in s.minute(m)
            if b.outcome == "ok" and b.latency_s <= objective.threshold
        )

    def bad(m: int) -> int:
        if _excluded(scenario, service, m):
            return 0
        return sum(b.count for s in streams for b in s.minute(m)) - good(m)

    return good, bad


def input_series(scenario: Scenario, config: Config) -> list[dict[str, str]]:
    """Every series the daemons of the scenario expose that the rules read, as promtool
    input: the post-exclusion counters, the sealed-minute gauge and maintenance."""
    series: list[dict[str, str]] = []

    def add(metric: str, labels: dict[str, str], per_minute: Callable[[int], float]) -> None:
        values = _cumulative(per_minute)
        series.append({"series": _labels(metric, labels), "values": _series_text(values)})

    services = sorted({s.service for s in scenario.streams})
    for service in services:
        instances = sorted({s.instance for s in scenario.streams if s.service == service})
        for objective in config.service(service).objectives:
            own = {"service": service, "objective": objective.name}
            for instance in instances:
                where = {"instance": instance, "job": "sla-monitor"}
                if isinstance(objective, LatencyObjective):
                    good, bad = latency_events(config, scenario, service, objective, instance)
                    for result, count in (("good", good), ("bad", bad)):
                        labels = {**own, "result": result, **where}
                        add("sla_objective_events_total", labels, count)
                elif (service, objective.name) in scenario.minutes and instance == instances[0]:
                    state_of = scenario.minutes[(service, objective.name)]
                    for state in AVAILABILITY_STATES:
                        add(
                            "sla_availability_seconds_total",
                            {**own, "state": state, **where},
                            lambda m, st=state, f=state_of: 60 * int(f(m) == st),
                        )
                last = HORIZON if service != "healthy" else HEALTHY_SEALS_UNTIL
                sealed = [60.0 * min(m, last) for m in range(HORIZON + 1)]
                series.append(
                    {
                        "series": _labels(
                            "sla_objective_sealed_timestamp_seconds", {**own, **where}
                        ),
                        "values": _series_text(sealed),
                    }
                )
    for service, active in scenario.maintenance.items():
        values = [float(active(m)) for m in range(HORIZON + 1)]
        labels = {"service": service, "instance": "a:9177", "job": "sla-monitor"}
        series.append(
            {"series": _labels("sla_maintenance_active", labels), "values": _series_text(values)}
        )
    return series


# The model. Samples sit on whole minutes from 0 and evaluations run every minute, so a
# window [t - w, t] holds samples at both ends (or starts at the first sample, a 0): rate()
# and increase() extrapolate nothing and an SLI is exactly the ratio of counter deltas.
# The long windows sum the recorded 5-minute rates of the evaluations in [t - w, t].


class ObjectiveModel:
    """One objective's good and valid counts, cumulative per minute."""

    def __init__(self, config: Config, service: str, objective: str, scenario: Scenario):
        svc = config.service(service)
        self.service, self.name = service, objective
        self.objective = next(o for o in svc.objectives if o.name == objective)
        self.budget = 1 - Fraction(str(self.objective.target)) / 100
        if isinstance(self.objective, LatencyObjective):
            instances = sorted({s.instance for s in scenario.streams if s.service == service})
            counts = [
                latency_events(config, scenario, service, self.objective, i) for i in instances
            ]
            self.good = _cumulative(lambda m: sum(good(m) for good, _ in counts))
            self.valid = _cumulative(lambda m: sum(good(m) + bad(m) for good, bad in counts))
            self.present = bool(instances)
        else:
            state_of = scenario.minutes.get((service, objective), lambda m: "up")
            self.good = _cumulative(lambda m: 60 * int(state_of(m) == "up"))
            self.valid = _cumulative(lambda m: 60 * int(state_of(m) in ("up", "down")))
            self.present = (service, objective) in scenario.minutes

    def _delta(self, counts: list[float], t: int, minutes: int) -> float:
        return counts[t] - counts[max(0, t - minutes)]

    def sli(self, t: int, window: str) -> Fraction | None:
        """good / valid over the window ending at minute t (None: no data, or 0/0)."""
        if t < 1 or not self.present:
            return None
        if window in LONG_WINDOWS:
            samples = range(max(0, t - WINDOW_MINUTES[window]), t + 1)
            good = sum(self._delta(self.good, s, 5) for s in samples)
            valid = sum(self._delta(self.valid, s, 5) for s in samples)
        else:
            good = self._delta(self.good, t, WINDOW_MINUTES[window])
            valid = self._delta(self.valid, t, WINDOW_MINUTES[window])
        if valid == 0:
            return None
        return Fraction(int(good), int(valid))

    def burn(self, t: int, window: str) -> Fraction | None:
        """Error ratio over the window divided by the error budget."""
        sli = self.sli(t, window)
        return None if sli is None else (1 - sli) / self.budget


@dataclass(frozen=True)
class Firing:
    """One firing alert at one minute, as promtool will list it."""

    labels: dict[str, str]
    value: float | None  # $value: the long window's burn rate


class Model:
    """Which alerts fire at each minute, from the config's windows and factors."""

    def __init__(self, config: Config, scenario: Scenario) -> None:
        self.config = config
        self.scenario = scenario
        self.objectives = [
            ObjectiveModel(config, s.name, o.name, scenario)
            for s in config.services
            for o in s.objectives
        ]

    def in_maintenance(self, service: str, t: int) -> bool:
        active = self.scenario.maintenance.get(service)
        return active is not None and active(t) == 1

    def burn_conditions(self, t: int) -> list[Firing]:
        """Burn-rate conditions that hold at minute t (before ``for:``)."""
        held = []
        for obj in self.objectives:
            if self.in_maintenance(obj.service, t):
                continue
            for rule in self.config.alerting.burn_rate:
                long_w = prometheus_window(rule.long_window)
                short_w = prometheus_window(rule.short_window)
                long_burn, short_burn = obj.burn(t, long_w), obj.burn(t, short_w)
                factor = Fraction(str(rule.factor))
                for burn in (long_burn, short_burn):
                    # Prometheus compares floats: an exact tie could go either way.
                    assert burn is None or burn != factor, f"tie at {t}: change the scenario"
                if long_burn is None or short_burn is None:
                    continue
                if long_burn > factor and short_burn > factor:
                    labels = {
                        "severity": rule.severity,
                        "service": obj.service,
                        "objective": obj.name,
                        "rule": rule.name,
                        "long_window": long_w,
                        "short_window": short_w,
                    }
                    held.append(Firing(labels, float(long_burn)))
        return held

    def down_conditions(self, t: int) -> list[Firing]:
        """Availability objectives whose last N sealed minutes were all down."""
        down = self.config.alerting.service_down
        n = down.consecutive_minutes
        held = []
        for obj in self.objectives:
            state_of = self.scenario.minutes.get((obj.service, obj.name))
            if state_of is None or t < n:
                continue
            if all(state_of(m) == "down" for m in range(t - n + 1, t + 1)):
                labels = {
                    "severity": down.severity,
                    "service": obj.service,
                    "objective": obj.name,
                    "rule": DOWN_RULE,
                }
                held.append(Firing(labels, None))
        return held

    def firing(self, alertname: str, t: int) -> list[Firing]:
        """Alerts firing at minute t: the condition held at every evaluation of the
        last ``pending_for`` (Prometheus fires once ``t - activeAt >= for``)."""
        conditions = self.burn_conditions if alertname == BURN_ALERT else self.down_conditions
        if t < PENDING:
            return []
        now = conditions(t)
        keys = [_key(f) for f in now]
        for earlier in range(t - PENDING, t):
            held = {_key(f) for f in conditions(earlier)}
            keys = [k for k in keys if k in held]
        return [f for f in now if _key(f) in keys]


def _key(firing: Firing) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(firing.labels.items()))


_VALUE = re.compile(r'\{\{ \$value \| printf "(%\.\d+f)" \}\}')


def _render(template: str, value: float | None) -> str:
    """Render the ``{{ $value | printf "%.Nf" }}`` parts of an annotation."""

    def one(match: re.Match[str]) -> str:
        assert value is not None
        text = match.group(1) % value
        # Prometheus's float may differ from ours in the last bit: no rounding ties.
        assert match.group(1) % (value - 1e-9) == text == match.group(1) % (value + 1e-9), (
            f"{value} is a rounding tie for {match.group(1)}: change the scenario"
        )
        return text

    return _VALUE.sub(one, template)


def _annotations(config: Config, firing: Firing) -> dict[str, str]:
    """The annotations the generated rule renders for this alert."""
    for group in build_rules(config)["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and rule["labels"] == firing.labels:
                return {k: _render(v, firing.value) for k, v in rule["annotations"].items()}
    raise AssertionError(f"no rule with labels {firing.labels}")


def _sample_labels(labels: dict[str, str], metric: str = "") -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def _eval_times(model: Model) -> list[int]:
    """Every minute an alert set changes, the minute before it, and a few fixed ones."""
    times = {1, 60, 200, 201, 202, 203, T0, HORIZON}
    for alertname in (BURN_ALERT, DOWN_ALERT):
        previous: set[tuple[tuple[str, str], ...]] = set()
        for t in range(HORIZON + 1):
            now = {_key(f) for f in model.firing(alertname, t)}
            if now != previous:
                times |= {t - 1, t}
            previous = now
    return sorted(times)


def _round6(value: Fraction | float) -> int:
    """What PromQL's ``round(x * 1e6)`` gives (half up)."""
    return math.floor(float(value) * 1e6 + 0.5)


def unit_test_group(config: Config, scenario: Scenario) -> dict[str, Any]:
    """One promtool test group: the scenario's series, its alerts and recorded SLIs."""
    model = Model(config, scenario)
    alert_tests = []
    for t in _eval_times(model):
        for alertname in (BURN_ALERT, DOWN_ALERT):
            firing = model.firing(alertname, t)
            alert_tests.append(
                {
                    "eval_time": f"{t}m",
                    "alertname": alertname,
                    "exp_alerts": [
                        {"exp_labels": f.labels, "exp_annotations": _annotations(config, f)}
                        for f in firing
                    ],
                }
            )
    alert_tests.extend(_data_missing_tests(config, scenario))
    expr_tests: list[dict[str, Any]] = []
    present = [o for o in model.objectives if o.present]
    for t in (3, T0 + 42, HORIZON):
        for window in SLI_WINDOWS:
            slis = {(o.service, o.name): o.sli(t, window) for o in present}
            assert None not in slis.values(), f"pick another check time than {t}"
            for record, value_of in (
                (sli_record(window), lambda r: _round6(r)),
                (error_record(window), lambda r: _round6(1 - float(r))),
            ):
                expr_tests.append(
                    {
                        "expr": f"round({record} * 1e6)",
                        "eval_time": f"{t}m",
                        "exp_samples": [
                            {
                                "labels": _sample_labels({"service": s, "objective": o}),
                                "value": value_of(r),
                            }
                            for (s, o), r in slis.items()
                        ],
                    }
                )
    expr_tests.append(
        {
            "expr": TARGET_RECORD,
            "eval_time": "1m",
            "exp_samples": [
                {
                    "labels": _sample_labels(
                        {"service": o.service, "objective": o.name}, TARGET_RECORD
                    ),
                    "value": o.objective.target_ratio,
                }
                for o in model.objectives
            ],
        }
    )
    return {
        "name": scenario.name,
        "interval": "1m",
        "input_series": input_series(scenario, config),
        "alert_rule_test": alert_tests,
        "promql_expr_test": expr_tests,
    }


def _data_missing_tests(config: Config, scenario: Scenario) -> list[dict[str, Any]]:
    """SlaDataMissing: the healthy service's daemon stops sealing after minute 450, so its
    objectives are stale once the last sealed minute is 240 s old (t > 454) and fire 5m
    later; a service with no series at all in the group is absent, and fires after 5m."""
    present = {s.service for s in scenario.streams}
    everything = [(s.name, o.name) for s in config.services for o in s.objectives]

    def expected(t: int) -> list[dict[str, Any]]:
        missing = [(s, o) for s, o in everything if s not in present and t >= 5]
        if "healthy" in present and t >= HEALTHY_SEALS_UNTIL + 5 + 5:
            missing += [(s, o) for s, o in everything if s == "healthy"]
        severity = config.alerting.service_down.severity
        firing = [
            Firing({"severity": severity, "service": s, "objective": o}, None)
            for s, o in sorted(missing)
        ]
        return [
            {"exp_labels": f.labels, "exp_annotations": _annotations(config, f)} for f in firing
        ]

    cases = []
    for t in (4, 5, HORIZON - 71, HORIZON - 70, HORIZON):
        case = {"eval_time": f"{t}m", "alertname": DATA_MISSING_ALERT}
        case["exp_alerts"] = expected(t)
        cases.append(case)
    return cases


def _first_firing(model: Model, alertname: str, **labels: str) -> int | None:
    for t in range(HORIZON + 1):
        for firing in model.firing(alertname, t):
            if labels.items() <= firing.labels.items():
                return t
    return None


def test_the_model_fires_where_the_windows_say() -> None:
    """The model, checked by hand: it is what promtool is compared with below."""
    config = load_config(SCENARIO)
    burning = Model(config, BURNING)

    def first(objective: str, rule: str) -> int | None:
        return _first_firing(burning, BURN_ALERT, objective=objective, rule=rule)

    # fast-250ms burns 21.6x from T0, and minutes excluded for the service (maintenance at
    # T0+12, T0+60..70; outside hours at T0+51) hold none of its results. Over the 1h
    # window after d minutes: 21 (d - 1) / (97 * 59) > 14.4 % once d > 40.8; the 5m
    # window is above it at once; pending_for 2m later it fires.
    assert first("fast-250ms", "burn-14x") == T0 + 41 + PENDING
    # Over 6h (13 excluded minutes): 21 (d - 13) / (97 * 347) > 6 % once d > 109.2.
    assert first("fast-250ms", "burn-6x") == T0 + 110 + PENDING
    # all-2.5s loses 11 of 159 (13.8x a 0.5 % budget): never 14.4x; 6x only once
    # 11 (d - 13) / (159 * 347) > 3 %, d > 163 -- beyond the horizon.
    assert first("all-2.5s", "burn-6x") is None
    assert first("all-2.5s", "burn-14x") is None
    # Ten down minutes from T0+30: down alert once three in a row, held 2m.
    assert _first_firing(burning, DOWN_ALERT) == T0 + 32 + PENDING
    # Maintenance from T0+60 to T0+70 silences the burn alerts; they pend again after it.
    assert not burning.firing(BURN_ALERT, T0 + 65)
    assert burning.firing(BURN_ALERT, T0 + 73)
    healthy = Model(config, HEALTHY)
    for t in range(HORIZON + 1):
        assert not healthy.firing(BURN_ALERT, t)
        assert not healthy.firing(DOWN_ALERT, t)
        assert all(b is None or b == Fraction(1, 2) for b in _burns(healthy, "online-1s", t))


def _burns(model: Model, objective: str, t: int) -> Iterable[Fraction | None]:
    obj = next(o for o in model.objectives if o.name == objective)
    return (obj.burn(t, w) for w in SLI_WINDOWS)


@pytest.mark.slow
def test_promtool_unit_tests_fire_and_stay_silent_as_the_model_says(tmp_path: Path) -> None:
    config = load_config(SCENARIO)
    # promtool evaluates every group at the test's interval: the model's minute.
    write_rules(config, tmp_path, interval="1m")
    groups = [unit_test_group(config, BURNING), unit_test_group(config, HEALTHY)]
    # The 0.5x service: every checked minute expects no burn or down alert at all.
    healthy_cases = [
        c for c in groups[1]["alert_rule_test"] if c["alertname"] != DATA_MISSING_ALERT
    ]
    assert healthy_cases
    assert all(not case["exp_alerts"] for case in healthy_cases)
    # The burning one: both page alerts and the down alert appear.
    expected = [a["exp_labels"] for c in groups[0]["alert_rule_test"] for a in c["exp_alerts"]]
    rules_seen = {(labels["objective"], labels.get("rule")) for labels in expected}
    assert {("fast-250ms", "burn-14x"), ("fast-250ms", "burn-6x")} <= rules_seen
    assert ("availability", "burn-14x") in rules_seen
    assert ("availability", DOWN_RULE) in rules_seen
    # The healthy service's objectives are absent from the burning group: data missing.
    assert ("online-1s", None) in rules_seen
    unit = {
        "rule_files": [RULES_FILE],
        "evaluation_interval": "1m",
        "tests": groups,
    }
    test_file = tmp_path / "sla-monitor.rules.test.yml"
    test_file.write_text(yaml.safe_dump(unit, sort_keys=False, width=1_000_000))
    out = promtool("test", "rules", test_file.name, cwd=tmp_path)
    assert "SUCCESS" in out


def test_the_batch_at_risk_rule_fires_on_the_daemons_gauge_with_promtool(tmp_path: Path) -> None:
    """A batch objective's at-risk alert in Prometheus reads the daemon's own gauge (only
    the daemon has the batch events): promtool fires it while the gauge is above 0, with
    the built-in path's labels, and not before or after."""
    config = Config.model_validate(
        {
            "services": [
                {
                    "name": "files",
                    "objectives": [
                        {"name": "data-4d", "kind": "batch", "deadline": "4d", "target": 99}
                    ],
                }
            ]
        }
    )
    (tmp_path / "rules.yml").write_text(render_rules(config))
    series = 'sla_batch_at_risk{service="files",objective="data-4d"}'
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": series, "values": "0 0 0 800 800 0 0"}],
                "alert_rule_test": [
                    {"eval_time": "2m", "alertname": "SlaBatchAtRisk", "exp_alerts": []},
                    {
                        "eval_time": "4m",
                        "alertname": "SlaBatchAtRisk",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "service": "files",
                                    "objective": "data-4d",
                                    "severity": "page",
                                    "rule": "batch-at-risk",
                                },
                                "exp_annotations": {
                                    "summary": "files data-4d: 800 still unprocessed close "
                                    "to its deadline (4 days)",
                                    "description": "Records (or batches) handed in are not "
                                    "processed yet and their deadline is within the "
                                    "objective's margin: process them now or they count "
                                    "against the target.",
                                },
                            }
                        ],
                    },
                    {"eval_time": "6m", "alertname": "SlaBatchAtRisk", "exp_alerts": []},
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    promtool("check", "rules", "rules.yml", cwd=tmp_path)
    promtool("test", "rules", "tests.yml", cwd=tmp_path)


def test_the_location_fault_rule_fires_as_the_built_in_path_with_promtool(tmp_path: Path) -> None:
    """With several locations, Prometheus alerts a location's fault from the daemons' fault
    counter: three decided fault minutes in a row fire it with the built-in path's labels
    and the location; two do not; a second daemon counting the same minutes changes
    nothing (max, not sum)."""
    config = Config.model_validate(
        {
            "storage": {"url": "postgresql://sla@127.0.0.1/sla"},
            "instance": {"location": "bru"},
            "locations": {"names": ["bru", "lgg"]},
            "services": [
                {
                    "name": "svc",
                    "probes": [{"name": "p", "kind": "http", "url": "http://127.0.0.1:9/"}],
                    "objectives": [{"name": "avail", "kind": "availability", "target": 99}],
                }
            ],
        }
    )
    (tmp_path / "rules.yml").write_text(render_rules(config))
    labels = 'service="svc",objective="avail",location="lgg"'
    # Minute by minute: two fault minutes, one without, then three in a row, then none.
    values = "0 60 120 120 180 240 300 300 300 300"
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'sla_location_fault_seconds_total{{{labels},instance="a"}}',
                        "values": values,
                    },
                    {
                        "series": f'sla_location_fault_seconds_total{{{labels},instance="b"}}',
                        "values": values,
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "SlaLocationFault", "exp_alerts": []},
                    {
                        "eval_time": "6m",
                        "alertname": "SlaLocationFault",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "service": "svc",
                                    "location": "lgg",
                                    "severity": "ticket",
                                    "rule": "location-fault",
                                },
                                "exp_annotations": {
                                    "summary": "location lgg cannot reach svc: the monitor's"
                                    " path (3 minutes in a row)",
                                    "description": "Only lgg saw svc down in each of the last 3"
                                    " decided minutes; the other locations saw it up. Not"
                                    " counted against the service: check the monitor's network"
                                    " there.",
                                },
                            }
                        ],
                    },
                    {"eval_time": "9m", "alertname": "SlaLocationFault", "exp_alerts": []},
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    promtool("check", "rules", "rules.yml", cwd=tmp_path)
    promtool("test", "rules", "tests.yml", cwd=tmp_path)
