"""docs/grafana-usage-dashboard.json imports into Grafana: a dashboard model with a Prometheus
datasource input that every panel uses, and every metric it queries is one the platform
exports (declared in the code; a Counter's `_total` as prometheus_client exposes it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana-usage-dashboard.json"
DECLARED = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|CounterMetricFamily|GaugeMetricFamily)\(\s*[\"'](jhds_\w+)[\"']"
)


def exported() -> set[str]:
    """The metric names the platform's code declares, as Prometheus sees them."""
    names: set[str] = set()
    for path in [*(ROOT / "reconciler").rglob("*.py"), *(ROOT / "hub_config").rglob("*.py")]:
        for kind, name in DECLARED.findall(path.read_text()):
            if kind.startswith("Counter"):
                names.add(name.removesuffix("_total") + "_total")
            elif kind == "Histogram":
                names.update(f"{name}_{s}" for s in ("bucket", "sum", "count"))
            else:
                names.add(name)
    return names


def panels(model: dict) -> list[dict]:
    out = []
    for p in model["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def test_the_dashboard_is_a_grafana_model_with_a_prometheus_input() -> None:
    model = json.loads(DASHBOARD.read_text())
    inputs = {i["name"]: i for i in model["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource" and inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    assert model["uid"] and model["title"] and isinstance(model["schemaVersion"], int)
    ids = [p["id"] for p in panels(model)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in panels(model):
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]), p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]


def test_every_metric_queried_is_exported() -> None:
    model = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in panels(model) for t in p.get("targets", [])]
    queries += [v["definition"] for v in model["templating"]["list"]]
    used = {m for q in queries for m in re.findall(r"\b(jhds_\w+)", q)}
    assert "jhds_usage_server_seconds_total" in used
    assert any("storage" in m for m in used)
    missing = used - exported()
    assert not missing, f"queried but not exported by the code: {sorted(missing)}"
