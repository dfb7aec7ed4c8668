"""The overview's charts as drawn by the real app on a real store: a value axis that never runs
below 0, a time axis in minutes before now that spans the data there is and marks where the
stage began, titles and legends above the plot, and sparklines when the box is too short."""

from __future__ import annotations

import re

import pytest
from storekit import seed_history
from textual_plotext import PlotextPlot

from harness.operations import Operation
from harness.store.state import trip_breaker
from harness.tui.widgets.trend_chart import TrendChart

from .conftest import app_on, loaded, until

pytestmark = pytest.mark.timeout(180)

BRAILLE = re.compile(r"[\u2801-\u28ff]")


def plot_lines(app, chart_id: str) -> list[str]:
    """The plot of a chart as text (`PlotextPlot` or what stands in for it)."""
    plot = app.screen.query_one(f"#{chart_id} PlotextPlot", PlotextPlot)
    rendered = plot.render()
    return str(getattr(rendered, "plain", rendered)).splitlines()


def y_labels(lines: list[str]) -> list[str]:
    return [line.split("┤")[0].strip() for line in lines if "┤" in line]


def data_columns(lines: list[str]) -> tuple[int, list[str]]:
    """(first data column, the data rows) of a plot: right of the y axis, above the x axis."""
    axis = next(i for i, line in enumerate(lines) if "└" in line)
    first = lines[axis].index("└") + 1
    return first, lines[:axis]


async def test_all_zero_rates_are_drawn_on_an_axis_from_0_never_below(seeded_sqlite):
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        await pilot.press("c")  # modify_order: no error, no fallback in the seed
        await until(pilot, lambda: app.snapshot.chart_op == Operation.MODIFY_ORDER, what="c")
        await pilot.pause()
        lines = plot_lines(app, "rates-chart")
    labels = y_labels(lines)
    assert labels, lines
    values = [float(label.rstrip("%")) for label in labels]
    assert min(values) == 0 and all(v >= 0 for v in values), labels
    assert labels[-1] == "0%"  # the bottom, where every point is drawn


async def test_the_time_axis_is_labelled_in_minutes_before_now(seeded_sqlite):
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        for chart_id in ("latency-chart", "rates-chart"):
            under = plot_lines(app, chart_id)[-1]
            assert under.rstrip().endswith("now"), under
            assert re.search(r"-\d+ min", under), under


@pytest.fixture
def young_stage(sqlite_url, tmp_path, pinned_now):
    """Calls only in the last 3 minutes: a rollout started 3 minutes ago."""
    data = seed_history(sqlite_url, tmp_path, pinned_now, [("start", "staging", 3)])
    yield data
    data.engine.dispose()


async def test_a_stage_three_minutes_old_fills_the_chart_not_its_last_columns(young_stage):
    app = app_on(young_stage)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        lines = plot_lines(app, "latency-chart")
    first, rows = data_columns(lines)
    width = max(len(row) for row in rows) - first
    drawn = [i - first for row in rows for i, ch in enumerate(row) if BRAILLE.match(ch)]
    assert drawn
    # The data begin in the first half of the plot (over a 30-minute axis they would sit in
    # its last tenth), and the axis says how far back it reaches.
    assert min(drawn) < width / 2, (min(drawn), width)
    assert "-5 min" in lines[-1] or "-4 min" in lines[-1], lines[-1]


@pytest.fixture
def promoted_3_min_ago(sqlite_url, tmp_path, pinned_now):
    """Canary for 17 minutes, then staging for the last 3."""
    history = [("start", "canary", 20), ("promote", "staging", 3)]
    data = seed_history(sqlite_url, tmp_path, pinned_now, history)
    yield data
    data.engine.dispose()


async def test_the_chart_marks_where_the_current_stage_began(promoted_3_min_ago):
    app = app_on(promoted_3_min_ago)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        lines = plot_lines(app, "latency-chart")
    under, axis = lines[-1], lines[-2]
    assert "▲staging" in under or "staging began▲" in under, under
    mark = under.index("▲")
    assert axis[mark] == "┴", (axis, under)  # the vertical line through the plot ends there
    first = axis.index("└") + 1
    span = len(axis.rstrip()) - first - 1
    assert (mark - first) / span == pytest.approx(17 / 20, abs=0.05)  # 3 of 20 minutes ago
    assert re.search(r"-20 min", under)  # the stage before, drawn to its left


# At 80x24 a line per migration and the operations' table leave the charts too few lines:
# they are sparklines there (test_at_80x24_an_alarm_turns_the_charts_into_sparklines).
@pytest.mark.parametrize("size", [(100, 30), (120, 40), (200, 50)])
async def test_both_charts_have_their_title_and_legend_above_the_plot(seeded_sqlite, size):
    app = app_on(seeded_sqlite)
    async with app.run_test(size=size) as pilot:
        await loaded(pilot, app)
        for chart in app.screen.query(TrendChart):
            assert not chart.compact, size
            title = str(chart.query_one(".chart-title").render())
            assert "place_order" in title, (size, title)
            names = ("Rust", "Python") if chart.kind == "latency" else ("Rust", "Py", "fallback")
            assert all(name in title for name in names), (size, title)


async def test_at_80x24_an_alarm_turns_the_charts_into_sparklines(seeded_sqlite):
    trip_breaker(seeded_sqlite.engine, Operation.PLACE_ORDER.value, failures=5, reason="seeded")
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        charts = list(app.screen.query(TrendChart))
        await until(pilot, lambda: all(c.compact for c in charts), what="sparklines")
        for chart in charts:
            assert not chart.query_one(PlotextPlot).display
            sparks = str(chart.query_one(".sparklines").render()).splitlines()
            assert len(sparks) == len(chart.SERIES[chart.kind])
            assert all(any(ch in line for ch in "▁▂▃▄▅▆▇█") for line in sparks), sparks
            title = str(chart.query_one(".chart-title").render())
            assert title.startswith("place_order") and "max" in title, title


async def test_the_time_axis_spans_the_pinned_window_of_the_seed(seeded_sqlite):
    """The seed's stage is 20 minutes old and began with its calls: the axis reaches back 20
    minutes, not 30, and its left edge is where the stage began."""
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        under = plot_lines(app, "rates-chart")[-1]
    assert "-30 min" not in under and "▲staging began" in under, under
