"""The overview: every migration at a glance (stage, % to Rust, targets, kill, breakers,
verdict; `s` chooses one, or all), per-operation figures of the current stage's window of the
scope (or, `w`, of the stage left last), and charts of latency and of error and fallback
rates over the last half hour for one operation (`c` cycles)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from harness.operations import Operation
from harness.store.rollups import MINUTE_NS
from harness.tui import format as fmt
from harness.tui.data import CHART_WINDOW_NS, Snapshot
from harness.tui.screens.base import DashboardScreen
from harness.tui.widgets.migration_list import MigrationList
from harness.tui.widgets.operation_table import OperationTable
from harness.tui.widgets.trend_chart import TrendChart

__all__ = ["OverviewScreen", "window_line"]

_WINDOW_MIN = CHART_WINDOW_NS // MINUTE_NS


def window_line(snapshot: Snapshot, show_left: bool) -> Content | None:
    """The line above the table saying whose figures it shows, when that needs saying: the
    stage left last (while `w` shows it), that there is none to show, or (the current stage
    has no calls yet, as just after a rollback) that `w` shows the stage just left. None
    when the table shows the current stage as usual."""
    left = snapshot.left
    stage = snapshot.overview.state.stage
    if show_left:
        if left is None:
            return Content(f"no earlier stage in the event log (the rollout began at {stage})")
        if snapshot.left_figures is None:
            return Content(f"reading the figures of {left.stage}...")
        took = "" if left.since_ns is None else f"{fmt.age(left.until_ns, left.since_ns)}, "
        return Content.from_markup(
            "[b]PREVIOUS STAGE $stage[/] ($said) | w: current",
            stage=left.stage,
            said=f"{took}left {fmt.clock(left.until_ns)} by {left.left_by}",
        )
    if left is not None and not any(f.calls for f in snapshot.overview.figures.ops.values()):
        ago = fmt.age(snapshot.taken_ns, left.until_ns)
        return Content(f"no calls at {stage} yet | w: the figures of {left.stage}, left {ago} ago")
    return None


class OverviewScreen(DashboardScreen):
    """The first screen: where a person watches a rollout."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "next_chart_op", "Chart op"),
        # Not in the footer (at 80 columns it would push Kill off the line): the line above
        # the table offers `w` when it is needed (no call at the current stage yet), and the
        # help lists it.
        Binding("w", "toggle_left", "Figures of the stage left last / current stage", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        """The window line (hidden unless needed), the table, then the two charts."""
        yield MigrationList(id="migrations")
        yield Static(id="window-line")
        yield OperationTable(id="operations")
        with Horizontal(id="charts"):
            yield TrendChart("latency", window_min=_WINDOW_MIN, id="latency-chart")
            yield TrendChart("rates", window_min=_WINDOW_MIN, id="rates-chart")

    def show(self, snapshot: Snapshot | None) -> None:
        """Fill the table and the charts."""
        if snapshot is None:
            return
        show_left = self.dashboard.show_left
        migrations = self.query_one(MigrationList)
        migrations.chosen = snapshot.migration
        migrations.views = snapshot.migrations
        line = window_line(snapshot, show_left)
        widget = self.query_one("#window-line", Static)
        widget.display = line is not None
        widget.update(line or Content(""))
        table = self.query_one(OperationTable)
        left = snapshot.left_ops() if show_left else None
        table.window = "previous stage" if left is not None else "current stage"
        table.figures = left if left is not None else snapshot.ops()
        self._chart(snapshot)

    def _chart(self, snapshot: Snapshot) -> None:
        points = snapshot.series(snapshot.chart_op)
        state = snapshot.overview.state
        for chart in self.query(TrendChart):
            chart.op = snapshot.chart_op
            chart.stage = state.stage
            chart.stage_minute = (state.stage_since_ns - snapshot.taken_ns) / MINUTE_NS
            chart.points = points

    def action_next_chart_op(self) -> None:
        """Chart the next operation (its series comes with the refresh started now)."""
        app = self.dashboard
        ops = [] if app.snapshot is None else app.snapshot.op_names()
        ops = ops or [str(op) for op in Operation]
        i = ops.index(app.chart_op) if app.chart_op in ops else -1
        app.chart_op = ops[(i + 1) % len(ops)]
        app.refresh_now()

    def action_toggle_left(self) -> None:
        """The table shows the stage left last, or the current stage again (its figures come
        with the refresh started now)."""
        app = self.dashboard
        app.show_left = not app.show_left
        if app.snapshot is not None:
            self.show(app.snapshot)
        app.refresh_now()
