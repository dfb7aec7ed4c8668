"""The overview and the gate screen show the numbers the CLI prints for the same window:
`harness query latency|rates|shadow --json` over the stage's window, and `harness gate
--json`. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import storekit
from storekit import MINUTE_NS

from harness.cli import main
from harness.config import Criterion
from harness.operations import Impl, Operation
from harness.tui import format as fmt
from harness.tui.widgets.alert_banner import AlertBanner
from harness.tui.widgets.operation_table import OperationTable
from harness.tui.widgets.status_bar import StatusBar
from harness.tui.widgets.trend_chart import TrendChart
from harness.tui.widgets.verdict_table import VerdictTable, result_label

from .conftest import app_on, loaded, until

pytestmark = pytest.mark.timeout(180)


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


def cli_json(capsys, *argv: str, code: int = 0):
    capsys.readouterr()
    assert main(list(argv)) == code
    return json.loads(capsys.readouterr().out)


async def test_the_overview_shows_the_cli_figures_of_the_stage_window(seeded, capsys):
    window = [
        "--stage",
        seeded.stage,
        "--since",
        iso(seeded.now_ns - 20 * MINUTE_NS),
        "--until",
        iso(seeded.now_ns),
        "--json",
        f"db.url={seeded.url}",
    ]
    latency = cli_json(capsys, "query", "latency", *window)
    rates = cli_json(capsys, "query", "rates", *window)
    shadow = cli_json(capsys, "query", "shadow", "--limit", "1000", *window)
    app = app_on(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        table = app.screen.query_one(OperationTable)
        for op in Operation:
            lat = {r["impl"]: r for r in latency if r["op"] == op.value}
            rate = {r["impl"]: r for r in rates if r["op"] == op.value}
            calls = sum(r["calls"] for r in rate.values())
            assert calls == sum(r["calls"] for r in lat.values()) > 0
            rust, python = rate[Impl.RUST.value], rate[Impl.PYTHON.value]
            want = {
                "calls": fmt.count(calls),
                "served by Rust": fmt.rate((rust["calls"] - rust["fallbacks"]) / calls),
                "fallback rate": fmt.rate(rust["fallback_rate"]),
                "errors Rust": fmt.rate(rust["error_rate"]),
                "errors Python": fmt.rate(python["error_rate"]),
                "p50 ms Rust": fmt.ms(lat["rust"]["p50_ms"]),
                "p50 ms Python": fmt.ms(lat["python"]["p50_ms"]),
                "p99 ms Rust": fmt.ms(lat["rust"]["p99_ms"]),
                "p99 ms Python": fmt.ms(lat["python"]["p99_ms"]),
                "% to Rust (stage)": "25%",
                "breaker": "closed",
            }
            compared = [r for r in shadow if r["op"] == op.value]
            wrong = sum(not r["matched"] for r in compared)
            want["shadow mism/comp"] = f"{wrong}/{len(compared)}"
            got = {label: table.cell_text(label, op) for label in want}
            assert got == want, op
        assert table.cell_text("shadow mism/comp", Operation.AGGREGATE_BARS) == "1/18"


async def test_the_gate_screen_shows_each_criterion_as_harness_gate_judges_it(seeded, capsys):
    app = app_on(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("2")
        await pilot.pause()
        table = app.screen.query_one(VerdictTable)
        shown = [
            [table.get_cell_at((i, j)).plain for j in range(5)] for i in range(table.row_count)
        ]
        verdict = app.snapshot.overview.verdict
    # `harness gate` judges the window up to its own now: the same outcomes (all older than the
    # dashboard's pinned now), so every criterion but the soak's elapsed time agrees.
    printed = cli_json(capsys, "gate", "--json", f"db.url={seeded.url}", code=1)  # FAIL
    judged = printed["criteria"]
    assert len(shown) == len(judged) + len(printed["skipped"])
    assert printed["verdict"] == verdict.result.value == "FAIL"  # the aggregation mismatch
    for row, criterion in zip(shown, judged, strict=False):
        op = criterion["op"] or "(stage)"
        name = criterion["criterion"] + (" *" if criterion["critical"] else "")
        assert row[:3] == [op, name, result_label(type(verdict.result)(criterion["result"]))]
        if criterion["criterion"] != "soak":
            kind = Criterion(criterion["criterion"])
            assert row[3] == fmt.criterion_figure(kind, criterion["figure"])
            assert row[4] == fmt.criterion_figure(kind, criterion["bound"])
    skipped = shown[len(judged) :]
    assert [r[2] for r in skipped] == ["skipped"] * len(printed["skipped"])


async def test_the_charts_plot_the_cli_series_of_the_operation_chosen(seeded_sqlite, capsys):
    data = seeded_sqlite
    app = app_on(data)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("c")  # place_order -> modify_order
        await until(pilot, lambda: app.snapshot.chart_op == Operation.MODIFY_ORDER, what="c")
        await pilot.pause()
        chart = app.screen.query_one("#latency-chart", TrendChart)
        assert chart.op == Operation.MODIFY_ORDER
        plotted = {name: dict(zip(xs, ys, strict=True)) for name, xs, ys in chart.series()}
        since = app.snapshot.chart_since_ns
    rows = cli_json(
        capsys,
        "query",
        "latency",
        "--op",
        "modify_order",
        "--bucket",
        "1m",
        "--since",
        iso(since),
        "--until",
        iso(data.now_ns),
        "--json",
        f"db.url={data.url}",
    )
    rows = [row for row in rows if row["p50_ms"] is not None]  # a minute of failures only
    assert rows
    for row in rows:
        minute = (_ns(row["bucket"]) - data.now_ns) / MINUTE_NS
        side = "Rust" if row["impl"] == "rust" else "Python"
        assert plotted[side][minute] == row["p50_ms"]
    assert sum(len(points) for points in plotted.values()) == len(rows)


def _ns(iso_text: str) -> int:
    return int(datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()) * 10**9


async def test_the_native_module_of_the_latest_run_is_shown_and_its_absence_alarmed(
    seeded_sqlite,
):
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        assert "native ok" in str(app.screen.query_one(StatusBar).render())
        assert not app.screen.query_one(AlertBanner).display
        storekit.new_run(seeded_sqlite.engine, seeded_sqlite.now_ns - 1, native=False)
        banner = app.screen.query_one(AlertBanner)
        await until(pilot, lambda: banner.display, what="the alarm")
        assert "NATIVE MODULE UNAVAILABLE in the latest run: ImportError: seeded: no native" in (
            str(banner.render())
        )
        assert "native MISSING" in str(app.screen.query_one(StatusBar).render())
