"""``sla-monitor rules --format sloth``: Sloth specs checked against Sloth's documented
spec and validation rules, every query parsed by the real promtool with a window in
place, and each SLI computing exactly the recorded rules' error ratio (promtool test)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.cli.main import EXIT_OK, main
from monitor.config import load_config
from monitor.generate.rules import error_record, write_rules
from monitor.generate.sloth import SLOTH_FILE, build_sloth, render_sloth
from tests.monitor.generate.test_rules import REPO, SCENARIO, promtool
from tests.support.sloth_spec import Spec

CONFIGS = [REPO / "config" / "demo.yaml", REPO / "config" / "example.yaml", SCENARIO]


@pytest.mark.parametrize("config_path", CONFIGS, ids=lambda p: p.name)
def test_every_spec_is_valid_sloth_and_every_query_parses(
    config_path: Path, tmp_path: Path
) -> None:
    config = load_config(config_path)
    specs = [Spec.model_validate(body) for body in build_sloth(config)]
    assert [s.service for s in specs] == [s.name for s in config.services if s.objectives]
    rules = []
    for spec in specs:
        for slo in spec.slos:
            assert slo.sli.events is not None
            for query in (slo.sli.events.error_query, slo.sli.events.total_query):
                expr = query.replace("{{.window}}", "5m")
                rules.append({"record": "sloth:check", "expr": expr})
    path = tmp_path / "sloth-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]}))
    promtool("check", "rules", str(path), cwd=tmp_path)


def test_sloth_sli_is_the_recorded_error_ratio(tmp_path: Path) -> None:
    """Over the same counters, Sloth's error / total equals sla:error_ratio:rate5m."""
    config = load_config(REPO / "config" / "demo.yaml")
    write_rules(config, tmp_path, interval="1m")
    [spec] = [s for s in build_sloth(config) if s["service"] == "online-messages"]
    slo = next(s for s in spec["slos"] if s["name"] == "online-1s")
    events = slo["sli"]["events"]
    sloth_rule = {
        "record": "sloth:error_ratio",
        "expr": f"({events['error_query']}) / ({events['total_query']})".replace(
            "{{.window}}", "5m"
        ),
    }
    (tmp_path / "sloth.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "sloth", "rules": [sloth_rule]}]})
    )
    base = 'sla_objective_events_total{service="online-messages",objective="online-1s"'
    # Per minute: instance a 97 good and 3 bad, instance b 50 good: 3 bad of 150.
    expected = round(3 / 150 * 1e6)
    unit = {
        "rule_files": ["sla-monitor.rules.yml", "sloth.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": base + ',result="good",instance="a"}', "values": "0+97x30"},
                    {"series": base + ',result="bad",instance="a"}', "values": "0+3x30"},
                    {"series": base + ',result="good",instance="b"}', "values": "0+50x30"},
                    {"series": base + ',result="bad",instance="b"}', "values": "0+0x30"},
                ],
                "promql_expr_test": [
                    {
                        "expr": "round(sloth:error_ratio * 1e6)",
                        "eval_time": "20m",
                        "exp_samples": [{"labels": "{}", "value": expected}],
                    },
                    {
                        "expr": f'round({error_record("5m")}{{objective="online-1s"}} * 1e6)',
                        "eval_time": "20m",
                        "exp_samples": [
                            {
                                "labels": '{objective="online-1s", service="online-messages"}',
                                "value": expected,
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    promtool("test", "rules", "test.yml", cwd=tmp_path)


def test_cli_writes_the_sloth_specs(tmp_path: Path) -> None:
    config_path = REPO / "config" / "demo.yaml"
    out = tmp_path / "sloth"
    assert (
        main(["rules", "--config", str(config_path), "--format", "sloth", "--out", str(out)])
        == EXIT_OK
    )
    assert (out / SLOTH_FILE).read_text() == render_sloth(load_config(config_path))
