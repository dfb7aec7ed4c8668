"""The charts' arithmetic on its own (`harness.tui.charting`): the value axis from 0 (never
below, whatever the rates), the time axis that spans what there is and marks the stage's
start, the label line under a chart, and the sparklines' shared scale."""

from __future__ import annotations

import pytest

from harness.tui import charting
from harness.tui.charting import Label, label_line, spark_bars, time_axis, value_axis


@pytest.mark.parametrize("max_ticks", [2, 3, 4, 6])
@pytest.mark.parametrize("values", [[], [0.0], [0.0, 0.0, 0.0]])
def test_all_zero_rates_get_an_axis_from_0_to_1_percent_never_below_0(values, max_ticks):
    axis = value_axis(values, least_top=1.0, max_ticks=max_ticks)
    assert axis.top == 1.0
    assert axis.ticks[0] == 0.0 and axis.ticks[-1] == 1.0
    assert all(t >= 0 for t in axis.ticks)
    assert len(axis.ticks) <= max_ticks
    assert charting.tick_text(axis.ticks[0], "%") == "0%"


@pytest.mark.parametrize(
    ("values", "max_ticks", "top", "ticks"),
    [
        ([2.73, 0.3], 4, 3.0, (0.0, 1.0, 2.0, 3.0)),
        ([2.73, 0.3], 3, 4.0, (0.0, 2.0, 4.0)),
        ([16.7, 0.0], 5, 20.0, (0.0, 5.0, 10.0, 15.0, 20.0)),
        ([0.04], 3, 1.0, (0.0, 0.5, 1.0)),  # below least_top: the least top
        ([100.0], 3, 100.0, (0.0, 50.0, 100.0)),
        ([9.05, 0.039], 6, 10.0, (0.0, 2.0, 4.0, 6.0, 8.0, 10.0)),
    ],
)
def test_the_value_axis_runs_from_0_to_a_round_top_at_or_above_the_largest_value(
    values, max_ticks, top, ticks
):
    axis = value_axis(values, least_top=1.0, max_ticks=max_ticks)
    assert axis.top == pytest.approx(top)
    assert axis.ticks == pytest.approx(ticks)
    assert axis.top >= max(values)


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_a_negative_or_non_finite_value_is_refused(bad):
    with pytest.raises(ValueError, match="never negative"):
        value_axis([1.0, bad], least_top=1.0, max_ticks=3)


def test_tick_texts_carry_their_unit():
    assert [charting.tick_text(v, "%") for v in (0.0, 0.5, 12.5)] == ["0%", "0.5%", "12.5%"]
    assert [charting.tick_text(v, "ms") for v in (0.0, 2.5, 10.0)] == ["0 ms", "2.5 ms", "10 ms"]


def test_a_stage_three_minutes_old_fills_the_chart_instead_of_its_last_columns():
    axis = time_axis(
        [-3.0, -2.0, -1.0], window_min=30, stage_minute=-3.0, stage="staging", max_labels=4
    )
    assert axis.start == -5.0  # the shortest axis; not -30
    assert axis.stage_start == -3.0
    texts = [label.text for label in axis.labels]
    assert texts[-1] == "▲staging began" and "now" in texts
    assert all(t.endswith(" min") for t in texts if t not in ("now", "▲staging began"))


def test_the_time_axis_reaches_back_to_the_oldest_point_at_most_the_window():
    old = time_axis([-45.0, -10.0], window_min=30, stage_minute=-60.0, stage="canary", max_labels=7)
    assert old.start == -30.0 and old.stage_start is None  # the stage began before the chart
    assert [label.text for label in old.labels] == [
        "-5 min",
        "-10 min",
        "-15 min",
        "-20 min",
        "-25 min",
        "-30 min",
        "now",
    ]
    mid = time_axis([-12.4, -3.0], window_min=30, stage_minute=-3.0, stage="s", max_labels=4)
    assert mid.start == -13.0 and mid.stage_start == -3.0  # the data before is the stage before
    empty = time_axis([], window_min=30, stage_minute=None, stage="s", max_labels=3)
    assert empty.start == -5.0 and empty.stage_start is None


def test_labels_are_written_at_their_columns_and_never_run_together():
    minutes = [Label(-10.0, "-10 min"), Label(-5.0, "-5 min"), Label(0.0, "now")]
    line = label_line([(3, minutes[0]), (12, minutes[1]), (24, minutes[2])], 25)
    assert line == "-10 min  -5 min       now"
    # Too close: `now` first, then the newest minute that does not touch it; never `min-5`.
    assert label_line([(3, minutes[0]), (10, minutes[1]), (20, minutes[2])], 21) == (
        "       -5 min     now"
    )
    assert label_line([(0, minutes[0]), (4, minutes[1]), (8, minutes[2])], 9) == "      now"


def test_the_stage_mark_points_at_its_column_and_turns_at_the_right_edge():
    stage = Label(-1.0, "▲staging began", short="▲staging")
    now = Label(0.0, "now")
    assert label_line([(2, stage), (30, now)], 31) == "  ▲staging began            now"
    assert label_line([(24, stage), (30, now)], 31) == "           staging began▲   now"
    assert label_line([(10, stage), (16, now)], 17) == "   staging▲   now"


def test_sparklines_share_one_scale_and_leave_minutes_without_calls_blank():
    rust = [(-4.0, 0.3), (-3.0, 0.3), (-1.0, 0.3)]
    python = [(-4.0, 2.4), (-3.0, 2.4), (-2.0, 2.4), (-1.0, 2.4)]
    top = 2.4
    assert spark_bars(rust, start=-4.0, top=top, width=30) == "▂▂ ▂"
    assert spark_bars(python, start=-4.0, top=top, width=30) == "████"
    errors = [(-3.0, 0.0), (-2.0, 0.05), (-1.0, 5.0)]
    assert spark_bars(errors, start=-3.0, top=5.0, width=10) == "▁▂█"  # 0.05% is not nothing
    wide = [(float(-m), 1.0) for m in range(30, 0, -1)]
    assert len(spark_bars(wide, start=-30.0, top=1.0, width=10)) == 10
