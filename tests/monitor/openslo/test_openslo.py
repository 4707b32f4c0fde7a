"""OpenSLO v1: what ``rules --format openslo`` writes stays within the spec's documented
fields, reads back into the same objectives and burn-rate alerts, and what cannot map is
refused naming the file, the document and the field (exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from monitor.cli.common import EXIT_OK, EXIT_USAGE
from monitor.cli.main import main
from monitor.config import AvailabilityObjective, Config, LatencyObjective, load_config
from monitor.openslo.export import OPENSLO_FILE, build_openslo
from monitor.openslo.importer import OpenSloImportError, import_openslo
from monitor.openslo.model import parse_document
from tests.support import builders

REPO = Path(__file__).resolve().parents[3]
CONFIGS = [REPO / "config" / "demo.yaml", REPO / "config" / "example.yaml"]


def _objectives(config: Config) -> dict[tuple[str, str], tuple[Any, ...]]:
    out: dict[tuple[str, str], tuple[Any, ...]] = {}
    for service in config.services:
        for o in service.objectives:
            if isinstance(o, LatencyObjective):
                out[(service.name, o.name)] = ("latency", float(o.threshold), o.target)
            else:
                assert isinstance(o, AvailabilityObjective)
                out[(service.name, o.name)] = ("availability", o.down_ratio, o.target)
    return out


def _with_probes(fragment: dict[str, Any]) -> Config:
    """The imported fragment made a whole config: each service gets one probe."""
    document = dict(fragment)
    document["services"] = [{**s, "probes": [builders.probe()]} for s in fragment["services"]]
    return (
        builders.config(**document)
        if False
        else Config.model_validate({"storage": {"path": ":memory:"}, **document})
    )


@pytest.mark.parametrize("config_path", CONFIGS, ids=lambda p: p.name)
def test_export_reads_back_into_the_same_objectives(config_path: Path, tmp_path: Path) -> None:
    config = load_config(config_path)
    out = tmp_path / "openslo"
    code = main(["rules", "--config", str(config_path), "--format", "openslo", "--out", str(out)])
    assert code == EXIT_OK
    bodies = list(yaml.safe_load_all((out / OPENSLO_FILE).read_text()))
    assert bodies == build_openslo(config)
    kinds = [b["kind"] for b in bodies]
    assert kinds.count("SLO") == kinds.count("SLI") == len(_objectives(config))
    for body in bodies:
        parse_document(body)  # within the spec's documented fields
    imported = _with_probes(import_openslo(out / OPENSLO_FILE))
    assert _objectives(imported) == _objectives(config)
    assert imported.timezone == config.timezone
    assert [(b.name, b.severity, b.factor, b.long_window) for b in imported.alerting.burn_rate] == [
        (b.name, b.severity, b.factor, b.long_window) for b in config.alerting.burn_rate
    ]


def test_unknown_fields_are_outside_the_spec() -> None:
    body = build_openslo(load_config(CONFIGS[0]))[-1]
    with pytest.raises(ValidationError, match="budgetMethod"):
        parse_document({**body, "spec": {**body["spec"], "budgetMethod": "Occurrences"}})


THIRD_PARTY = """\
apiVersion: openslo/v1
kind: SLI
metadata: {name: checkout-latency}
spec:
  ratioMetric:
    counter: true
    good:
      metricSource:
        type: Prometheus
        spec: {query: 'http_request_duration_seconds_bucket{job="checkout",le="0.25"}'}
    total:
      metricSource:
        type: Prometheus
        spec: {query: 'http_request_duration_seconds_count{job="checkout"}'}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout-fast}
spec:
  service: checkout
  indicatorRef: checkout-latency
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.995}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout-up}
spec:
  service: checkout
  indicator:
    metadata: {name: checkout-ok}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'probe_success{job="checkout"}'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'probe_total{job="checkout"}'}}}
  budgetingMethod: Timeslices
  objectives: [{targetPercent: 99.9, timeSliceTarget: 0.8, timeSliceWindow: 1m}]
"""


def test_a_third_party_document_maps_by_its_bucket_and_time_slices(tmp_path: Path) -> None:
    path = tmp_path / "checkout.yaml"
    path.write_text(THIRD_PARTY)
    config = _with_probes(import_openslo(path))
    assert _objectives(config) == {
        ("checkout", "fast"): ("latency", 0.25, 99.5),
        ("checkout", "up"): ("availability", 0.2, 99.9),
    }


@pytest.mark.parametrize(
    ("change", "document", "field", "message"),
    [
        (("spec", "timeWindow"), 2, "spec.timeWindow[0].duration", "does not map"),
        (("spec", "objectives"), 2, "spec.objectives", "composite"),
        (("spec", "indicatorRef"), 2, "spec.indicatorRef", "no SLI named"),
        (("spec", "ratioMetric"), 1, "spec.ratioMetric", "Field required"),
        (("spec", "budgetingMethod"), 2, "spec.budgetingMethod", "Occurrences"),
    ],
)
def test_what_cannot_map_names_document_and_field(
    change: tuple[str, str], document: int, field: str, message: str, tmp_path: Path
) -> None:
    bodies = list(yaml.safe_load_all(THIRD_PARTY))
    body = bodies[document - 1]
    values = {
        "timeWindow": [{"duration": "1Q", "isRolling": True}],
        "objectives": [{"target": 0.99}, {"target": 0.999}],
        "indicatorRef": "nowhere",
        "budgetingMethod": "RatioTimeslices",
    }
    if change[1] == "ratioMetric":
        body["spec"] = {"thresholdMetric": {"metricSource": {"spec": {"query": "up"}}}}
        field, message = "spec.indicator", "thresholdMetric"
    else:
        body["spec"][change[1]] = values[change[1]]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump_all(bodies))
    with pytest.raises(OpenSloImportError) as caught:
        import_openslo(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: document ")
    assert field in text
    assert message in text


def test_the_cli_refuses_with_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        THIRD_PARTY.replace(
            "apiVersion: openslo/v1\nkind: SLI", "apiVersion: openslo/v2\nkind: SLI", 1
        )
    )
    out = tmp_path / "fragment.yaml"
    assert main(["import-openslo", str(path), "--out", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{path}: document 1 (SLI 'checkout-latency'): apiVersion" in err
    assert not out.exists()
