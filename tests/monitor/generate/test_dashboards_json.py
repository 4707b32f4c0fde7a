"""The generated Grafana dashboards: structure, datasource, units, thresholds at the
configured SLA values, and the committed copies under dashboards/ up to date."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.main import main
from monitor.config import Config, LatencyObjective, load_config
from monitor.generate.dashboards import (
    FILES,
    GRAFANA_BUILTINS,
    build_dashboards,
    compliance_steps,
    promql_regex,
    render_dashboard,
)
from monitor.generate.preview import legend, panel_queries, panels, substitute, template_values
from tests.support.stack import validate

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "config" / "demo.yaml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def demo() -> Config:
    """The demo config."""
    return load_config(DEMO)


@pytest.fixture(scope="module")
def boards(demo: Config) -> dict[str, dict[str, Any]]:
    """The dashboards of the demo config, by uid."""
    return build_dashboards(demo)


def _visible(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels(board) if p["type"] != "row"]


def _panel(board: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in panels(board) if p["title"] == title)


def _override_steps(panel: dict[str, Any]) -> dict[str, list[float]]:
    """Threshold values (base step left out) of each override, by its matcher's option."""
    found = {}
    for override in panel["fieldConfig"]["overrides"]:
        for prop in override["properties"]:
            if prop["id"] == "thresholds":
                steps = prop["value"]["steps"]
                found[override["matcher"]["options"]] = [
                    s["value"] for s in steps if s["value"] is not None
                ]
    return found


def test_committed_dashboards_are_up_to_date(boards: dict[str, dict[str, Any]]) -> None:
    """dashboards/*.json is exactly what the generator writes for config/demo.yaml."""
    for uid, name in FILES.items():
        committed = (ROOT / "dashboards" / name).read_text(encoding="utf-8")
        assert committed == render_dashboard(boards[uid]), (
            f"dashboards/{name} is stale: run `sla-monitor dashboards --config "
            "config/demo.yaml --out dashboards`"
        )


def test_three_dashboards_for_grafana_11(boards: dict[str, dict[str, Any]]) -> None:
    """The issue's three dashboards, schemaVersion of Grafana 11.6, tagged and linked."""
    assert set(boards) == {"sla-overview", "sla-service-detail", "sla-monitor-health"}
    for board in boards.values():
        assert board["schemaVersion"] == 41
        assert "sla-monitor" in board["tags"]
        assert board["links"][0]["type"] == "dashboards"


def test_panel_ids_unique_and_grid_without_overlap(boards: dict[str, dict[str, Any]]) -> None:
    """Unique ids; no two panels share a grid cell."""
    for board in boards.values():
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), board["title"]
        cells: dict[tuple[int, int], str] = {}
        for panel in panels(board):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                    cells[(x, y)] = panel["title"]


def test_every_panel_and_query_uses_the_datasource_variable(
    boards: dict[str, dict[str, Any]],
) -> None:
    """Panels, queries and annotations all go through ``${datasource}``."""
    for board in boards.values():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for name in ("service", "objective"):
            assert variables[name]["type"] == "query"
            assert variables[name]["datasource"] == DATASOURCE
            assert variables[name]["multi"]
            assert variables[name]["includeAll"]
        for panel in _visible(board):
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, panel["title"]
                assert target["refId"], panel["title"]
        for annotation in board["annotations"]["list"]:
            assert annotation["datasource"] == DATASOURCE


def test_queries_filter_on_the_variables(boards: dict[str, dict[str, Any]]) -> None:
    """Every SLA query selects ``$service``; those with objectives ``$objective`` too."""
    for uid in ("sla-overview", "sla-service-detail"):
        for query in panel_queries(boards[uid], annotations=True):
            assert '$service"' in query.expr, (query.panel, query.expr)
            if re.search(r"sla_(objective|error_budget)|sla:", query.expr):
                assert '$objective"' in query.expr, (query.panel, query.expr)


def test_units_are_set(boards: dict[str, dict[str, Any]]) -> None:
    """Every panel has a unit; latency in seconds, ratios in percentunit."""
    for board in boards.values():
        for panel in _visible(board):
            unit = panel["fieldConfig"]["defaults"].get("unit")
            assert unit, panel["title"]
            exprs = " ".join(t["expr"] for t in panel["targets"])
            if "_seconds" in exprs and "rate(sla_probe_attempts" not in exprs:
                assert unit == "s", panel["title"]
            if re.search(r"compliance_ratio|budget_remaining|sla:sli_ratio", exprs):
                assert unit in ("percentunit", "none"), panel["title"]  # none: the table
    overview = boards["sla-overview"]
    assert _panel(overview, "Compliance, month to date")["fieldConfig"]["defaults"]["unit"] == (
        "percentunit"
    )
    table = _panel(overview, "Objectives: pass / fail this month")
    units = {
        o["matcher"]["options"]: o["properties"][0]["value"]
        for o in table["fieldConfig"]["overrides"]
    }
    assert units["Value #B"] == "percentunit"


def test_thresholds_at_the_configured_sla_values(
    demo: Config, boards: dict[str, dict[str, Any]]
) -> None:
    """Each objective's target colours its series; each latency threshold is a line."""
    overview, detail = boards["sla-overview"], boards["sla-service-detail"]
    compliance = _override_steps(_panel(overview, "Compliance, month to date"))
    recorded = _override_steps(_panel(detail, "Compliance over time (Prometheus, 1 h)"))
    for service in demo.services:
        for objective in service.objectives:
            name = f"{service.name} {objective.name}"
            assert compliance[name][0] == pytest.approx(objective.target_ratio)
            assert recorded[name][0] == pytest.approx(objective.target_ratio)
        # One line per threshold, however many objectives share it.
        latency = sorted(
            {float(o.threshold) for o in service.objectives if isinstance(o, LatencyObjective)}
        )
        prefix = f"^{service.name} "
        if not latency:  # a batch-only service: no latency panel of its own
            assert prefix not in _override_steps(_panel(overview, "Latency p99 / p99.5, last hour"))
            continue
        assert _override_steps(_panel(overview, "Latency p99 / p99.5, last hour"))[prefix] == (
            latency
        )
        quantiles = _panel(detail, "Latency p50 / p99 / p99.5 (5 min windows)")
        assert _override_steps(quantiles)[prefix] == latency
        styles = [
            p["value"]["mode"]
            for o in quantiles["fieldConfig"]["overrides"]
            for p in o["properties"]
            if p["id"] == "custom.thresholdsStyle"
        ]
        assert set(styles) == {"dashed"}
    # The demo's values, spelled out: 1 s and 2 s for online, 4 s for integrated.
    assert compliance["online-messages online-2s"] == [0.995, 0.99625]
    latency_panel = _panel(overview, "Latency p99 / p99.5, last hour")
    assert _override_steps(latency_panel)["^integrated-services "] == [4.0]


def test_compliance_colours_follow_the_remaining_budget() -> None:
    """Red below target, amber with less than 25 % of the budget left, then green."""
    steps = compliance_steps(0.99).steps
    assert [(s.value, s.color) for s in steps] == [
        (None, "red"),
        (0.99, "orange"),
        (0.9925, "green"),
    ]


def test_dashboards_change_when_the_objectives_change(demo: Config) -> None:
    """Generated from the config, not hard-coded to the demo."""
    document = demo.model_dump(mode="json", exclude_none=True)
    changed = copy.deepcopy(document)
    online = changed["services"][0]
    online["objectives"][0].update(threshold=1.5, target=97.5)
    online["objectives"].append(
        {"name": "online-300ms", "kind": "latency", "threshold": 0.3, "target": 90}
    )
    before = build_dashboards(validate(document))
    after = build_dashboards(validate(changed))
    assert render_dashboard(before["sla-overview"]) != render_dashboard(after["sla-overview"])
    steps = _override_steps(_panel(after["sla-overview"], "Compliance, month to date"))
    assert steps["online-messages online-1s"][0] == pytest.approx(0.975)
    assert steps["online-messages online-300ms"][0] == pytest.approx(0.9)
    quantiles = _panel(after["sla-service-detail"], "Latency p50 / p99 / p99.5 (5 min windows)")
    # 1 s stays: online-1s-traffic (the same promise on the real traffic) keeps it.
    assert _override_steps(quantiles)["^online-messages "] == [0.3, 1.0, 1.5, 2.0]


def test_annotations_for_maintenance_and_alerts(boards: dict[str, dict[str, Any]]) -> None:
    """Maintenance from sla_maintenance_active, alerts from ALERTS, on every dashboard."""
    for board in boards.values():
        annotations = {a["name"]: a for a in board["annotations"]["list"]}
        assert "sla_maintenance_active" in annotations["Maintenance"]["expr"]
        assert annotations["SLA alerts"]["expr"].startswith("ALERTS{")
        for annotation in annotations.values():
            assert annotation["enable"] is True
            assert annotation["titleFormat"]
            assert annotation["step"] == "60s"


def test_substitution_as_grafana_does(demo: Config) -> None:
    """All selected: a regex of the names; built-ins; unknown variables are an error."""
    values = template_values(demo)
    assert values["service"] == "(data-requests|integrated-services|online-messages)"
    assert values["__rate_interval"] == GRAFANA_BUILTINS["__rate_interval"]
    expr = 'rate(x{service=~"$service"}[$__rate_interval]) ${__range}'
    assert substitute(expr, values) == (
        'rate(x{service=~"(data-requests|integrated-services|online-messages)"}[1m]) 1h'
    )
    with pytest.raises(KeyError):
        substitute("$nope", values)
    assert promql_regex("a.b") == "a\\\\.b"
    assert legend("{{service}} p{{quantile}}", {"service": "s", "quantile": "99"}) == "s p99"


def test_cli_writes_the_dashboards(tmp_path: Path) -> None:
    """``sla-monitor dashboards --config PATH --out DIR`` writes three loadable files."""
    assert main(["dashboards", "--config", str(DEMO), "--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(FILES.values())
    for path in tmp_path.iterdir():
        assert json.loads(path.read_text())["panels"]


def test_preview_needs_a_prometheus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --prometheus: a usage error; an unreachable one: a runtime failure."""
    out = tmp_path / "p.png"
    assert main(["dashboards", "preview", "--config", str(DEMO), "--out", str(out)]) == 2
    assert "--prometheus" in capsys.readouterr().err
    unreachable = "http://127.0.0.1:9"  # discard port: nothing listens
    code = main(
        [
            "dashboards",
            "preview",
            "--config",
            str(DEMO),
            "--prometheus",
            unreachable,
            "--out",
            str(out),
        ]
    )
    assert code == 1
    assert "cannot query Prometheus" in capsys.readouterr().err
    assert not out.exists()
