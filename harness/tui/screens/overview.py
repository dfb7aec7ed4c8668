"""The overview: per-operation figures of the current stage's window, and charts of latency
and of error and fallback rates over the last half hour for one operation (`c` cycles)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal

from harness.operations import Operation
from harness.store.rollups import MINUTE_NS
from harness.tui.data import CHART_WINDOW_NS, Snapshot
from harness.tui.screens.base import DashboardScreen
from harness.tui.widgets.operation_table import OperationTable
from harness.tui.widgets.trend_chart import TrendChart

__all__ = ["OverviewScreen"]

_WINDOW_MIN = CHART_WINDOW_NS // MINUTE_NS


class OverviewScreen(DashboardScreen):
    """The first screen: where a person watches a rollout."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("c", "next_chart_op", "Chart op")]

    def compose_body(self) -> ComposeResult:
        """The table, then the two charts side by side."""
        yield OperationTable(id="operations")
        with Horizontal(id="charts"):
            yield TrendChart("latency", window_min=_WINDOW_MIN, id="latency-chart")
            yield TrendChart("rates", window_min=_WINDOW_MIN, id="rates-chart")

    def show(self, snapshot: Snapshot | None) -> None:
        """Fill the table and the charts."""
        if snapshot is None:
            return
        self.query_one(OperationTable).figures = snapshot.ops()
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
        ops = list(Operation)
        app.chart_op = ops[(ops.index(app.chart_op) + 1) % len(ops)]
        app.refresh_now()
