"""The Grafana dashboard shipped beside the exporter: Grafana's own types accept every field of
it, it is what `docs/grafana/build.py` builds, and its PromQL names only served metrics."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from harness.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]
JSON = ROOT / "docs" / "grafana" / "harness-dashboard.json"
BUILD = ROOT / "docs" / "grafana" / "build.py"

KEYWORDS = {"by", "without", "and", "or", "unless", "on", "ignoring", "group_left",
            "group_right", "bool", "offset"}  # fmt: skip


def _through_grafanas_types(data: dict[str, Any]) -> dict[str, Any]:
    """`data` decoded into grafana-foundation-sdk's Dashboard model and encoded back: a field
    the model does not define is dropped, so a round trip that changes nothing passes."""
    out: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(Dashboard.from_json(data)))
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers outside label matchers,
    ranges, strings and label lists (`by (op)`) that are neither functions, keywords nor
    Grafana variables."""
    bare = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\$\w+', " ", expr)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", bare):
        follows = bare[match.end() :].lstrip()[:1]
        if follows != "(" and match.group() not in KEYWORDS:
            names.add(match.group())
    return names


def expressions(data: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets, annotations, variables."""
    found = [t["expr"] for p in data["panels"] for t in p.get("targets", [])]
    found += [a["expr"] for a in data["annotations"]["list"]]
    for variable in data["templating"]["list"]:
        if variable["type"] == "query":  # Grafana's label_values(SELECTOR, LABEL)
            call = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["query"])
            assert call, variable["query"]
            found.append(call.group(1))
    return found


def test_grafanas_types_accept_every_field():
    data = json.loads(JSON.read_text())
    assert _through_grafanas_types(data) == data
    assert {p["type"] for p in data["panels"]} == {"row", "stat", "timeseries"}
    tampered = copy.deepcopy(data)
    tampered["panels"][1]["targetz"] = tampered["panels"][1].pop("targets")
    assert _through_grafanas_types(tampered) != tampered


def test_the_committed_json_is_what_the_script_builds():
    spec = importlib.util.spec_from_file_location("grafana_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert JSON.read_text() == module.text(), "run: python docs/grafana/build.py"


def test_every_expression_names_only_served_metrics():
    data = json.loads(JSON.read_text())
    exprs = expressions(data)
    assert len(exprs) >= 10
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= set(METRICS), (expr, names - set(METRICS))
    served = set().union(*(metric_names(e) for e in exprs))
    for wanted in (
        "harness_calls_total",
        "harness_latency_seconds",
        "harness_stage",
        "harness_kill",
        "harness_breaker_open",
        "harness_shadow_comparisons_total",
    ):
        assert wanted in served  # fmt: skip


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (op) (rate(harness_calls_total{outcome="error"}[$__rate_interval]))',
         {"harness_calls_total"}),
        ("harness_stage == 1 and changes(harness_stage[2m]) > 0", {"harness_stage"}),
        ("rate(harness_callz_total[5m]) / on (op) harness_kill", {"harness_callz_total",
                                                                  "harness_kill"}),
    ],
)  # fmt: skip
def test_metric_names_are_found_in_promql(expr, names):
    assert metric_names(expr) == names


def test_every_metric_and_flag_is_documented():
    import argparse

    from harness.metrics.cli import Metrics

    page = (ROOT / "docs" / "metrics.md").read_text()
    rows = set(re.findall(r"^\| `(harness_\w+)` \|", page, re.MULTILINE))
    assert rows == set(METRICS)
    parser = argparse.ArgumentParser()
    Metrics.add_arguments(parser)
    flags = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
    documented = set(re.findall(r"^\| `(--[a-z-]+)", page, re.MULTILINE))
    assert documented == flags - {"--help"}
