"""The dashboards' queries as Grafana sends them (every panel's and annotation's
expression, with the template variables substituted as Grafana does with *All*
selected), and a PNG preview drawn from a live Prometheus: what the tests run against a
real Prometheus, and what ``sla-monitor dashboards preview`` draws."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.config import Config

#: The Grafana version the JSON targets (the grafana-foundation-sdk build pinned).
from monitor.generate.dashboards import (
    GRAFANA_BUILTINS,
    DashboardError,
    build_dashboards,
    objectives_of,
    promql_regex,
)

# --- queries, as Grafana would send them ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PanelQuery:
    """One query of one panel (or annotation) of a dashboard."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str
    legend: str
    instant: bool


def panels(data: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows' nested panels included, rows themselves too."""
    for panel in data.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(data: Mapping[str, Any], *, annotations: bool = False) -> list[PanelQuery]:
    """Every Prometheus query of every panel (and, if asked, of every annotation)."""
    found = [
        PanelQuery(
            dashboard=data["title"],
            panel=panel["title"],
            ref_id=target.get("refId", ""),
            expr=target["expr"],
            legend=target.get("legendFormat", ""),
            instant=bool(target.get("instant")),
        )
        for panel in panels(data)
        for target in panel.get("targets", [])
    ]
    if annotations:
        found += [
            PanelQuery(data["title"], f"annotation: {a['name']}", "", a["expr"], "", False)
            for a in data["annotations"]["list"]
            if a.get("expr")
        ]
    return found


def template_values(config: Config) -> dict[str, str]:
    """Variable values as Grafana substitutes them with *All* selected: a regex of every
    configured service and objective, plus the built-ins."""
    services = sorted({s.name for s in config.services})
    objectives = sorted({o.name for _, o in objectives_of(config)})
    return {
        **GRAFANA_BUILTINS,
        "service": "(" + "|".join(promql_regex(s) for s in services) + ")",
        "objective": "(" + "|".join(promql_regex(o) for o in objectives) + ")",
    }


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace ``$name`` and ``${name}`` as Grafana does; unknown names raise KeyError."""
    return _VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], expr)


def legend(text: str, labels: Mapping[str, str]) -> str:
    """A series name from a Grafana legend format (``{{label}}`` placeholders)."""
    if not text or text == "__auto":
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), text).strip()


# --- preview --------------------------------------------------------------------------------

_COLORS = {
    "text": "#d8d9da",
    "orange": "#ff9830",
    "red": "#f2495c",
    "green": "#73bf69",
    "blue": "#5794f2",
}


@dataclass(frozen=True, slots=True)
class _Sample:
    ref_id: str
    name: str
    labels: dict[str, str]
    value: float


def _threshold_color(steps: Sequence[Mapping[str, Any]], value: float) -> str:
    color = "text"
    for step in steps:
        if step["value"] is None or value >= step["value"]:
            color = step["color"]
    return _COLORS.get(color, color)


def _field_config(panel: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The field config Grafana would apply to the series (or column) ``name``."""
    config = panel.get("fieldConfig", {})
    merged = dict(config.get("defaults", {}))
    for override in config.get("overrides", []):
        matcher = override["matcher"]
        hit = (matcher["id"] == "byName" and matcher["options"] == name) or (
            matcher["id"] == "byRegexp" and re.search(matcher["options"], name) is not None
        )
        for prop in override["properties"] if hit else []:
            merged[prop["id"]] = prop["value"]
    return merged


def _format(value: float, unit: str, mappings: Sequence[Mapping[str, Any]] = ()) -> str:
    for mapping in mappings:
        result = mapping.get("options", {}).get(f"{value:g}")
        if mapping.get("type") == "value" and result is not None:
            return str(result["text"])
    if math.isnan(value):
        return "NaN"
    if unit == "percentunit":
        return f"{value * 100:.3f} %"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit.startswith("suffix:"):
        return f"{value:.2f}{unit.removeprefix('suffix:')}"
    return f"{value:g}"


def preview(config: Config, prometheus_url: str, out: Path) -> Path:
    """Render the SLA overview's data, from the same queries, to a PNG at ``out``: stat
    panels as tiles coloured by their thresholds, tables as tables."""
    try:
        import matplotlib
    except ImportError:  # an optional extra: the daemon's image does not need it
        raise DashboardError(
            "the preview needs matplotlib: pip install 'sla-monitor[preview]'"
        ) from None
    import httpx

    matplotlib.use("Agg")
    from matplotlib import pyplot

    board = build_dashboards(config)["sla-overview"]
    values = template_values(config)
    shown = [p for p in panels(board) if p["type"] != "row"]
    figure, axes = pyplot.subplots(len(shown), 1, figsize=(12, 2.6 * len(shown)), squeeze=False)
    try:
        with httpx.Client(base_url=prometheus_url.rstrip("/"), timeout=10) as client:
            for axis, panel in zip(axes[:, 0], shown, strict=True):
                samples = [
                    _Sample(
                        target["refId"],
                        legend(target.get("legendFormat", ""), sample["metric"]),
                        sample["metric"],
                        float(sample["value"][1]),
                    )
                    for target in panel["targets"]
                    for sample in _instant(client, substitute(target["expr"], values))
                ]
                _draw(axis, panel, samples)
    except httpx.HTTPError as exc:
        raise DashboardError(f"cannot query Prometheus at {prometheus_url}: {exc}") from None
    figure.suptitle(
        f"{board['title']}: {prometheus_url} (sla-monitor dashboards preview)", fontsize=13
    )
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    pyplot.close(figure)
    return out


def _instant(client: Any, expr: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/query", params={"query": expr})
    body = response.json()
    if body.get("status") != "success":
        raise DashboardError(f"Prometheus refused {expr!r}: {body.get('error')}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _draw(axis: Any, panel: Mapping[str, Any], samples: list[_Sample]) -> None:
    """One panel: stat tiles coloured by their thresholds, or a table."""
    axis.set_title(panel["title"], loc="left", fontsize=11)
    axis.set_axis_off()
    if not samples:
        axis.text(0.5, 0.5, "No data", ha="center", va="center", transform=axis.transAxes)
    elif panel["type"] == "table":
        _draw_table(axis, panel, samples)
    else:
        _draw_tiles(axis, panel, samples)


def _draw_tiles(axis: Any, panel: Mapping[str, Any], samples: list[_Sample]) -> None:
    from matplotlib.patches import Rectangle

    columns = min(len(samples), 6)
    rows = math.ceil(len(samples) / columns)
    axis.set_xlim(0, columns)
    axis.set_ylim(0, rows)
    for i, sample in enumerate(sorted(samples, key=lambda s: s.name)):
        x, y = i % columns, rows - 1 - i // columns
        field = _field_config(panel, sample.name)
        steps = field.get("thresholds", {}).get("steps", [])
        color = _threshold_color(steps, sample.value)
        axis.add_patch(Rectangle((x + 0.03, y + 0.06), 0.94, 0.88, color=color))
        text = _format(sample.value, field.get("unit", "none"), field.get("mappings", []))
        axis.text(x + 0.5, y + 0.68, sample.name, ha="center", fontsize=8)
        axis.text(x + 0.5, y + 0.3, text, ha="center", fontsize=13, weight="bold")


def _draw_table(axis: Any, panel: Mapping[str, Any], samples: list[_Sample]) -> None:
    """Join the queries on their labels (Grafana's merge), columns named as it names them."""
    organize: dict[str, Any] = {}
    for transformation in panel.get("transformations", []):
        if transformation["id"] == "organize":
            organize = transformation["options"]
    excluded = {k for k, v in organize.get("excludeByName", {}).items() if v}
    renames: dict[str, str] = organize.get("renameByName", {})
    keys = sorted(
        {k for s in samples for k in s.labels if k not in excluded},
        key=lambda k: (organize.get("indexByName", {}).get(k, 99), k),
    )
    refs = sorted({s.ref_id for s in samples}) if len(panel["targets"]) > 1 else []
    joined: dict[tuple[str, ...], dict[str, float]] = {}
    for sample in samples:
        row = joined.setdefault(tuple(sample.labels.get(k, "") for k in keys), {})
        row[sample.ref_id] = sample.value
    cells, colors = [], []
    for key, by_ref in sorted(joined.items()):
        texts, shades = list(key), ["white"] * len(key)
        for ref in refs:
            field = _field_config(panel, f"Value #{ref}")
            value = by_ref.get(ref)
            mappings = field.get("mappings", [])
            texts.append("" if value is None else _format(value, field["unit"], mappings))
            shade = "white"
            if value is not None and mappings:
                result = mappings[0]["options"].get(f"{value:g}", {})
                shade = _COLORS.get(result.get("color", ""), "white")
            shades.append(shade)
        cells.append(texts)
        colors.append(shades)
    labels = keys + [renames.get(f"Value #{ref}", ref) for ref in refs]
    grid = axis.table(cellText=cells, colLabels=labels, cellColours=colors, loc="upper left")
    grid.auto_set_font_size(False)
    grid.set_fontsize(8)


__all__ = [
    "PanelQuery",
    "legend",
    "panel_queries",
    "panels",
    "preview",
    "substitute",
    "template_values",
]
