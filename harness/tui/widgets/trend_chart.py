"""A chart of one operation over the last minutes (textual-plotext), which turns into one
sparkline per series when its box is too short for a readable chart (an 80x24 terminal with
an alarm banner).

Two kinds: `latency` (p50 in ms of Rust and of Python, minute by minute) and `rates` (Rust's
and Python's error rates and Rust's fallback rate, in %).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Final, Literal

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label, Sparkline
from textual_plotext import PlotextPlot

from harness.operations import Operation
from harness.tui.data import Point

__all__ = ["COMPACT_BELOW", "TrendChart"]

COMPACT_BELOW: Final = 7
"""Below this many lines a chart is unreadable: sparklines are shown instead."""

Kind = Literal["latency", "rates"]
Series = tuple[str, Callable[[Point], float | None]]


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100.0


class TrendChart(Widget):
    """The chart; set `op` and `points` (oldest first, `Point.minute` <= 0) to redraw."""

    SERIES: ClassVar[dict[Kind, tuple[Series, ...]]] = {
        "latency": (
            ("Rust", lambda p: p.p50_rust_ms),
            ("Python", lambda p: p.p50_python_ms),
        ),
        "rates": (
            ("err Rust", lambda p: _pct(p.error_rate_rust)),
            ("err Py", lambda p: _pct(p.error_rate_python)),
            ("fallback", lambda p: _pct(p.fallback_rate)),
        ),
    }
    TITLES: ClassVar[dict[Kind, str]] = {
        "latency": "{op} p50 ms per minute, Rust vs Python",
        "rates": "{op} errors & fallbacks % per minute",
    }

    points: reactive[list[Point]] = reactive(list, always_update=True)
    op: reactive[Operation] = reactive(Operation.PLACE_ORDER)

    def __init__(self, kind: Kind, *, window_min: float, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kind: Kind = kind
        self.window_min = window_min

    def compose(self) -> ComposeResult:
        """The plot, and the sparklines that stand in for it in a short box."""
        yield PlotextPlot()
        with Vertical(classes="sparklines"):
            yield Label(self._title(), classes="spark-title")
            for name, _ in self.SERIES[self.kind]:
                with Horizontal(classes="spark-row"):
                    yield Label(name, classes="spark-label")
                    yield Sparkline([], id=f"spark-{name.replace(' ', '-').lower()}")

    def _title(self) -> str:
        return self.TITLES[self.kind].format(op=self.op.value)

    def on_resize(self, event: Resize) -> None:
        """Chart or sparklines, by the height available."""
        self.set_class(event.size.height < COMPACT_BELOW, "-compact")

    def watch_op(self) -> None:
        """A new operation: redraw."""
        self._draw()

    def watch_points(self) -> None:
        """New points: redraw."""
        self._draw()

    def series(self) -> list[tuple[str, list[float], list[float]]]:
        """(name, minutes, values) of every series, minutes without a value left out."""
        out = []
        for name, value_of in self.SERIES[self.kind]:
            xs, ys = [], []
            for point in self.points:
                value = value_of(point)
                if value is not None:
                    xs.append(point.minute)
                    ys.append(value)
            out.append((name, xs, ys))
        return out

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self._title())
        plt.xlim(-self.window_min, 0)
        drawn = 0
        for name, xs, ys in self.series():
            if xs:
                plt.plot(xs, ys, label=name, marker="braille")
                drawn += 1
            self.query_one(f"#spark-{name.replace(' ', '-').lower()}", Sparkline).data = ys
        if not drawn:
            plt.title(self._title() + ": no calls yet")
        self.query_one(".spark-title", Label).update(self._title())
        plot.refresh()

    def on_mount(self) -> None:
        """Draw what is already set."""
        self._draw()
