"""The shipped dashboard and alert rules (deploy/) name only metrics and labels the hub defines.

Names and label sets come from ``gateway.metrics.Metrics().registry``, so a typo in a PromQL expression, a
label the metric does not carry, or a legend naming a label the query drops fails here rather than as an empty
panel or an alert that can never fire. promtool (``make rules-check``) checks the rules' syntax and behaviour;
tests/test_prometheus.py runs every dashboard query against a real Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from gateway.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "yikatong-hub.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"

TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every scraped series
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
# Prometheus's own series that the rules and the dashboard use; ALERTS carries every alert's labels.
PROMETHEUS_SERIES: dict[str, set[str] | None] = {"up": set(TARGET_LABELS), "ALERTS": None}

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
TOKEN = re.compile(rf"(?<![\w:.$]){NAME}")
SELECTOR = re.compile(rf"(?<![\w:.$])({NAME})\s*\{{([^}}]*)\}}")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def hub_series() -> dict[str, set[str] | None]:
    """Every series name the hub exposes, with its label names (``None``: any label)."""
    metrics = Metrics()
    # collect() gives the families; a labelled metric with no child yet has no samples, so the label names come
    # from the metric objects themselves.
    labels = {m._name: set(m._labelnames) for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}
    series: dict[str, set[str] | None] = dict(PROMETHEUS_SERIES)
    for family in metrics.registry.collect():
        names = labels[family.name] | TARGET_LABELS
        for suffix in SUFFIXES.get(family.type, ("",)):
            series[family.name + suffix] = names | ({"le"} if suffix == "_bucket" else set())
    return series


def without_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def metric_names(expr: str) -> list[str]:
    """Series names in an expression: the hub's, Prometheus's own, and recording rules' (with a colon)."""
    names = TOKEN.findall(without_strings(expr))
    return [n for n in names if n.startswith(("grpc_server_", "yikatong_")) or ":" in n or n in PROMETHEUS_SERIES]


def grouping_labels(expr: str) -> set[str]:
    return {label.strip() for group in GROUPING.findall(expr) for label in group.split(",") if label.strip()}


def problems(expr: str, known: dict[str, set[str] | None]) -> Iterator[str]:
    """What in ``expr`` does not exist: a series, a label in a selector, a label in by/on/without/ignoring."""
    bare = without_strings(expr)
    names = metric_names(expr)
    yield from (f"unknown series {n}" for n in names if n not in known)
    for name, matchers in SELECTOR.findall(bare):
        allowed = known.get(name)
        if allowed is not None:
            yield from (f"{name} has no label {label}" for label in MATCHER.findall(matchers) if label not in allowed)
    available: set[str] = set(TARGET_LABELS)
    for name in names:
        allowed = known.get(name)
        if allowed is None:
            return
        available |= allowed
    yield from (f"no series here has label {label}" for label in grouping_labels(bare) - available)


def yaml_exprs(text: str) -> list[str]:
    """``expr:`` values of a rules or rules-test file, inline or as a ``|`` / ``>`` block."""
    lines, exprs = text.splitlines(), []
    for i, line in enumerate(lines):
        found = re.match(r"^(\s*)(?:- )?expr:\s*(.*)$", line)
        if not found:
            continue
        indent, value = len(found.group(1)), found.group(2).strip()
        if value and value[0] not in "|>":
            exprs.append(value.strip("'\""))
            continue
        block = []
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            block.append(following.strip())
        exprs.append(" ".join(block).strip())
    return exprs


def recorded(text: str, known: dict[str, set[str] | None]) -> dict[str, set[str] | None]:
    """The recording rules of alerts.yml with the labels they keep (their grouping, or their inputs')."""
    out: dict[str, set[str] | None] = {}
    rules = re.findall(r"- record: (\S+)\n\s+(?:#.*\n\s+)*(expr:.*(?:\n(?!\s*- ).*)*)", text)
    for name, body in rules:
        (expr,) = yaml_exprs(body)
        by = {label for label in grouping_labels(without_strings(expr)) if label != "le"}
        inputs = [known.get(n) or out.get(n) or set() for n in metric_names(expr)]
        out[name] = by or set().union(*inputs)
    return out


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_targets(node: Any) -> Iterator[dict[str, Any]]:
    """Every object with an ``expr``: panel targets and annotation queries."""
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node
        for value in node.values():
            yield from dashboard_targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from dashboard_targets(value)


def test_every_dashboard_query_names_metrics_and_labels_the_hub_has() -> None:
    known = hub_series()
    targets = list(dashboard_targets(dashboard()))
    assert len(targets) > 30
    found = {t["expr"]: list(problems(t["expr"], known)) for t in targets}
    assert {expr: p for expr, p in found.items() if p} == {}


def test_every_legend_names_a_label_its_query_keeps() -> None:
    for target in dashboard_targets(dashboard()):
        legend = set(LEGEND.findall(target.get("legendFormat", "")))
        kept = grouping_labels(without_strings(target["expr"]))
        if legend and "ALERTS" not in target["expr"]:
            assert legend <= kept, (target["expr"], legend - kept)


def test_every_template_variable_query_names_a_metric_label() -> None:
    known = hub_series()
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert {"datasource", "job", "instance", "method", "region", "home_region", "venue_region"} <= variables.keys()
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] != "query":
            continue
        assert variable["query"]["query"] == variable["definition"], variable["name"]
        found = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["definition"])
        assert found, variable["definition"]
        selector, label = found.groups()
        assert list(problems(selector, known)) == []
        (name,) = metric_names(selector)
        assert label in (known[name] or set()) | TARGET_LABELS, (name, label)


def test_every_panel_uses_the_datasource_variable_and_has_a_description() -> None:
    panels = [p for p in dashboard()["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard()["panels"]}) == len(dashboard()["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"]), panel["title"]
        assert len(panel["description"]) > 40, panel["title"]


def test_circuit_states_are_mapped_and_fund_amounts_shown_in_yuan() -> None:
    panels = {p["title"]: p for p in dashboard()["panels"]}
    mapping = panels["Circuit breaker state"]["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {value: m["text"] for value, m in mapping.items()} == {"0": "closed", "1": "open", "2": "half-open"}
    fund = [p for p in panels.values() if any("fund_pay_fen" in t["expr"] for t in p.get("targets", []))]
    assert len(fund) == 2
    assert all(t["expr"].rstrip().endswith("/ 100") for p in fund for t in p["targets"])


def test_every_rule_names_metrics_and_labels_the_hub_has() -> None:
    known = hub_series()
    text = ALERTS.read_text(encoding="utf-8")
    known |= recorded(text, known)
    exprs = yaml_exprs(text)
    assert len(exprs) == text.count("- record:") + text.count("- alert:")
    assert {expr: p for expr in exprs if (p := list(problems(expr, known)))} == {}


def test_the_rule_tests_feed_series_the_hub_has_and_query_known_rules() -> None:
    known = hub_series()
    known |= recorded(ALERTS.read_text(encoding="utf-8"), known)
    text = ALERTS_TEST.read_text(encoding="utf-8")
    series = re.findall(r"series: '([^']*)'", text)
    assert series
    for selector in series + yaml_exprs(text):
        assert list(problems(selector, known)) == [], selector


def alert_blocks() -> dict[str, str]:
    text = ALERTS.read_text(encoding="utf-8")
    parts = re.split(r"\n\s*- (?=alert: |record: )", text)
    return {m.group(1): part for part in parts if (m := re.match(r"alert: (\w+)", part))}


def test_alerts_have_a_severity_a_summary_and_a_description_naming_the_labels() -> None:
    blocks = alert_blocks()
    expected = {"RegionDown", "HighErrorRatio", "HighP99Latency", "OutboxBacklogOld", "CircuitOpen"}
    assert expected <= blocks.keys()
    for name, block in blocks.items():
        assert re.search(r"severity: (critical|warning)\n", block), name
        assert re.search(r"\n\s+summary: ", block) and re.search(r"\n\s+description: ", block), name
        assert "$labels." in block or "$value" in block, name
    assert "yikatong_region_up == 0" in blocks["RegionDown"] and "for: 1m" in blocks["RegionDown"]
    assert "$labels.region" in blocks["RegionDown"] and "$labels.grpc_method" in blocks["HighErrorRatio"]


@pytest.mark.parametrize("alert", sorted(alert_blocks()))
def test_every_alert_has_a_promtool_test_that_fires_it_and_one_that_must_not(alert: str) -> None:
    text = ALERTS_TEST.read_text(encoding="utf-8")
    cases = re.findall(rf"alertname: {alert}\n\s+exp_alerts:(.*)", text)
    assert any(c.strip() != "[]" for c in cases), f"no test fires {alert}"
    assert any(c.strip() == "[]" for c in cases), f"no test expects {alert} not to fire"
