"""Build `docs/grafana/harness-dashboard.json`, the Grafana dashboard of `harness metrics`.

    python docs/grafana/build.py          # write the JSON beside this script
    python docs/grafana/build.py --check  # exit 1 if the committed JSON differs from a build

Written with grafana-foundation-sdk (Grafana's own types, generated from its schema), so every
field is one Grafana defines; `tests/metrics/test_dashboard.py` decodes the committed JSON with
the same types and checks that every PromQL expression names only metrics the exporter serves.
Import it in Grafana (Dashboards > New > Import) and pick the Prometheus data source that
scrapes `harness metrics`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueTextMode
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableOption,
    VariableRefresh,
)

OUT = Path(__file__).with_name("harness-dashboard.json")
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"


def query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    """A Prometheus query of the dashboard's data source."""
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)


def state_row() -> list[Any]:
    """Where each migration stands: its stage, the kill flags, the open breakers, the store."""
    return [
        stat.Panel()
        .title("Stage")
        .description("Each migration's current stage (harness_stage == 1).")
        .datasource(DATASOURCE)
        .with_target(query("harness_stage == 1", "{{migration}}: {{stage}}"))
        .text_mode(BigValueTextMode.NAME)
        .color_mode(BigValueColorMode.NONE)
        .height(4)
        .span(8),
        stat.Panel()
        .title("Kill")
        .description("1: the migration is killed, everything to Python (all: the global flag).")
        .datasource(DATASOURCE)
        .with_target(query("harness_kill", "{{migration}}"))
        .color_mode(BigValueColorMode.BACKGROUND)
        .height(4)
        .span(6),
        stat.Panel()
        .title("Breakers open")
        .description("1: the operation's circuit breaker is open, its calls go to Python.")
        .datasource(DATASOURCE)
        .with_target(query("harness_breaker_open", "{{op}}"))
        .color_mode(BigValueColorMode.BACKGROUND)
        .height(4)
        .span(6),
        stat.Panel()
        .title("Store")
        .description("harness_store_up: the last scrape read the store; rows dropped must stay 0.")
        .datasource(DATASOURCE)
        .with_target(query("harness_store_up", "store up"))
        .with_target(query("harness_rows_dropped_total", "rows dropped", "B"))
        .height(4)
        .span(4),
    ]


def latency_row() -> list[Any]:
    """Rust against Python, p50 and p99, one panel per operation (repeated over `$op`)."""
    return [
        timeseries.Panel()
        .title("Latency $op: Rust vs Python")
        .description(
            "p50 and p99 of successful calls served without a fallback, over the exporter's "
            "--window (default 5m), from the gate's sketches (within 1%)."
        )
        .datasource(DATASOURCE)
        .with_target(
            query(
                'harness_latency_seconds{op="$op", quantile=~"0.5|0.99"}',
                "{{side}} q{{quantile}}",
            )
        )
        .unit("s")
        .repeat("op")
        .repeat_direction("h")
        .height(8)
        .span(12),
    ]


def rates_row() -> list[Any]:
    """Call rates, error and fallback shares per operation and side, shadow mismatches."""
    calls = f"sum by (op, side) (rate(harness_calls_total[{RATE}]))"
    errors = f'sum by (op, side) (rate(harness_calls_total{{outcome="error"}}[{RATE}]))'
    fallbacks = f"sum by (op) (rate(harness_fallbacks_total[{RATE}]))"
    to_rust = f'sum by (op) (rate(harness_calls_total{{side="rust"}}[{RATE}]))'
    mismatches = (
        f'sum by (op) (increase(harness_shadow_comparisons_total{{result="mismatch"}}[{RATE}]))'
    )
    return [
        timeseries.Panel()
        .title("Calls per second")
        .description("Calls by operation and the side the router chose.")
        .datasource(DATASOURCE)
        .with_target(query(calls, "{{op}} {{side}}"))
        .unit("reqps")
        .height(8)
        .span(12),
        timeseries.Panel()
        .title("Error share")
        .description("Calls whose caller got an error, over all calls, per routed side.")
        .datasource(DATASOURCE)
        .with_target(query(f"{errors} / {calls}", "{{op}} {{side}}"))
        .unit("percentunit")
        .height(8)
        .span(12),
        timeseries.Panel()
        .title("Fallback share (Rust routes)")
        .description("Calls routed to Rust that Python served, over the calls routed to Rust.")
        .datasource(DATASOURCE)
        .with_target(query(f"{fallbacks} / {to_rust}", "{{op}}"))
        .unit("percentunit")
        .height(8)
        .span(12),
        timeseries.Panel()
        .title("Shadow mismatches")
        .description("Shadow comparisons whose two sides disagreed (each one is a bug).")
        .datasource(DATASOURCE)
        .with_target(query(mismatches, "{{op}}"))
        .height(8)
        .span(12),
    ]


def annotations() -> list[Any]:
    """Events as annotations, from the metrics: a stage, kill flag or breaker that changed.
    Who did it and why is in `harness query events` (the store), which Prometheus cannot see."""
    return [
        dashboard.AnnotationQuery()
        .name("Stage changes")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("blue")
        .expr("harness_stage == 1 and changes(harness_stage[2m]) > 0"),
        dashboard.AnnotationQuery()
        .name("Kills")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .expr("changes(harness_kill[2m]) > 0"),
        dashboard.AnnotationQuery()
        .name("Breakers")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("orange")
        .expr("changes(harness_breaker_open[2m]) > 0"),
    ]


def build() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    board = (
        dashboard.Dashboard("Rollout harness")
        .uid("harness-rollout")
        .description("Rust vs Python on the router's hot paths, read from `harness metrics`.")
        .tags(["harness", "rollout"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("utc")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        )
        .with_variable(
            dashboard.QueryVariable("op")
            .label("Operation")
            .datasource(DATASOURCE)
            .query("label_values(harness_calls_total, op)")
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
            .multi(True)
            .include_all(True)
            .current(VariableOption(selected=True, text="All", value="$__all"))
        )
        .annotations(annotations())
    )
    # Panel ids are Grafana's handles (links, repeats): numbered in order, rows included.
    number = 0
    for title, panels in (
        ("Rollout state", state_row()),
        ("Latency", latency_row()),
        ("Rates", rates_row()),
    ):
        number += 1
        board = board.with_row(dashboard.Row(title).id(number))
        for panel in panels:
            number += 1
            board = board.with_panel(panel.id(number))
    data: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    return data


def text() -> str:
    """The JSON file's text (sorted keys, two-space indent, one newline at the end)."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    if args.check:
        same = OUT.exists() and OUT.read_text() == text()
        print(f"{OUT.name}: {'up to date' if same else 'differs from a build'}")
        return 0 if same else 1
    OUT.write_text(text())
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
