"""A chart of one operation over the last minutes (textual-plotext), which turns into one
sparkline per series when its box is too short for a readable chart (an 80x24 terminal, below
the migrations' lines and the operations' table).

Two kinds: `latency` (p50 in ms of Rust and of Python, minute by minute) and `rates` (Rust's
and Python's error rates and Rust's fallback rate, in %).

The chart's title and legend are a line of their own above the plot (plotext drops its title
in a short box and draws its legend over the data), the value axis runs from 0 (never below)
with its unit on every tick, and the time axis is labelled in minutes before now and spans the
minutes there are data for; a vertical line marks where the current stage began. The axis
arithmetic is `harness.tui.charting`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final, Literal

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.content import Content
from textual.events import Resize
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static
from textual_plotext import PlotextPlot

from harness.operations import Operation
from harness.tui import charting
from harness.tui.data import Point

__all__ = ["COMPACT_BELOW", "TrendChart"]

COMPACT_BELOW: Final = 8
"""A chart needs this many lines: up to two of title and legend, four rows of data (fewer are
unreadable), the axis and its labels. In a shorter box both charts become sparklines: at
80x24, below a line per migration and the operations' table, they get about 5."""

Kind = Literal["latency", "rates"]
RGB = tuple[int, int, int]
RUST: Final[RGB] = (232, 116, 59)
PYTHON: Final[RGB] = (76, 141, 246)
FALLBACK: Final[RGB] = (182, 95, 207)
STAGE_MARK: Final[RGB] = (150, 150, 150)
"""Series colours, the same side the same colour in both charts, readable on the dark and the
light theme."""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100.0


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart: its legend name (long and short), colour and value of a point."""

    name: str
    short: str
    color: RGB
    value_of: Callable[[Point], float | None]


@dataclass(frozen=True, slots=True)
class Drawn:
    """One series' points, `(minute, value)` oldest first, minutes without a value left out."""

    series: Series
    points: list[tuple[float, float]]


def _hex(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class TimePlot(PlotextPlot):
    """The plot: the series of `TrendChart.drawn` against the time axis, with the labels of
    that axis written by `charting.label_line` (plotext centres a label and drops one that
    would cross the right edge, such as the stage's mark a minute after a rollback)."""

    def __init__(self, chart: TrendChart) -> None:
        super().__init__()
        self.chart = chart

    def render(self) -> RenderResult:
        """Draw at the current size (the axes depend on it)."""
        width, height = self.size.width, self.size.height
        chart = self.chart
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.plotsize(width, height)
        plt._set_size(width, height)  # as PlotextPlot.render does (textual-plotext issue 5)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        drawn = chart.drawn()
        values = [v for d in drawn for _, v in d.points]
        axis = charting.value_axis(
            values, least_top=chart.least_top, max_ticks=max(2, min(6, (height - 2) // 2 + 1))
        )
        y_labels = [charting.tick_text(t, chart.unit) for t in axis.ticks]
        data_width = max(1, width - max(len(t) for t in y_labels) - 1)
        time = chart.time_axis(drawn, max_labels=max(2, data_width // 10))
        if time.stage_start is not None:
            at = (time.stage_start - time.start) / -time.start * (data_width - 1)
            if round(at) >= 1:  # at the left edge the label says it; a line would hide the axis
                plt.vline(time.stage_start, STAGE_MARK)
        for d in reversed(drawn):  # the first series (Rust's) drawn last, on top
            for run in charting.runs(d.points):
                xs, ys = [m for m, _ in run], [v for _, v in run]
                plt.plot(xs, ys, marker="braille", color=d.series.color)
        plt.xlim(time.start, 0)
        plt.ylim(0, axis.top)
        minutes = [label.minute for label in time.labels if not label.stage]
        plt.xticks(minutes, [""] * len(minutes))  # tick marks only: the labels are ours
        plt.yticks(list(axis.ticks), y_labels)
        plt.xaxes(True, False)
        plt.yaxes(True, False)
        lines = plt.build().split("\n")
        return self._with_labels(lines, time)

    @staticmethod
    def _with_labels(lines: list[str], time: charting.TimeAxis) -> Text:
        """plotext's lines with the (empty) line under the axis replaced by our labels."""
        plain = [_ANSI.sub("", line) for line in lines]
        axis_at = next((i for i, line in enumerate(plain) if "└" in line), None)
        if axis_at is None or axis_at + 1 >= len(lines):
            return Text.from_ansi("\n".join(lines))
        first = plain[axis_at].index("└") + 1
        columns = max(1, len(plain[axis_at].rstrip()) - first)
        span = -time.start

        def column(minute: float) -> int:
            return first + round((minute - time.start) / span * (columns - 1))

        placed = [(column(label.minute), label) for label in time.labels]
        under = charting.label_line(placed, first + columns)
        text = Text.from_ansi("\n".join(lines[: axis_at + 1]))
        text.append("\n" + under, style="dim")
        return text


class TrendChart(Widget):
    """The chart; set `op`, `points` (oldest first, `Point.minute` <= 0) and `stage_minute`
    (where the current stage began, minutes before now) to redraw."""

    SERIES: ClassVar[dict[Kind, tuple[Series, ...]]] = {
        "latency": (
            Series("Rust", "Rust", RUST, lambda p: p.p50_rust_ms),
            Series("Python", "Python", PYTHON, lambda p: p.p50_python_ms),
        ),
        "rates": (
            Series("Rust errors", "err Rust", RUST, lambda p: _pct(p.error_rate_rust)),
            Series("Python errors", "err Py", PYTHON, lambda p: _pct(p.error_rate_python)),
            Series("fallbacks", "fallback", FALLBACK, lambda p: _pct(p.fallback_rate)),
        ),
    }
    TITLES: ClassVar[dict[Kind, tuple[str, ...]]] = {
        "latency": ("{op} p50 ms per minute", "{op} p50 ms"),
        "rates": (
            "{op} errors & fallbacks, % per minute",
            "{op} errors & fallbacks %",
            "{op} % of calls",
        ),
    }
    """A chart's title, longest first: the first that fits is shown."""
    UNITS: ClassVar[dict[Kind, tuple[str, float]]] = {"latency": ("ms", 1.0), "rates": ("%", 1.0)}
    """(unit, least top of the value axis) per kind."""

    points: reactive[list[Point]] = reactive(list, always_update=True)
    op: reactive[str] = reactive(str(Operation.PLACE_ORDER))
    stage_minute: reactive[float | None] = reactive(None)
    stage: reactive[str] = reactive("")

    def __init__(self, kind: Kind, *, window_min: int, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kind: Kind = kind
        self.window_min = window_min
        self.unit, self.least_top = self.UNITS[kind]

    def compose(self) -> ComposeResult:
        """The title line, the plot, and the sparklines that stand in for it in a short box."""
        yield Static(classes="chart-title")
        yield TimePlot(self)
        yield Static(classes="sparklines")

    # ----- what is drawn -------------------------------------------------------------------------

    def series(self) -> list[tuple[str, list[float], list[float]]]:
        """(name, minutes, values) of every series, minutes without a value left out."""
        return [
            (d.series.name, [m for m, _ in d.points], [v for _, v in d.points])
            for d in self.drawn()
        ]

    def drawn(self) -> list[Drawn]:
        """Every series' points."""
        out = []
        for series in self.SERIES[self.kind]:
            values = ((p.minute, series.value_of(p)) for p in self.points)
            out.append(Drawn(series, [(m, v) for m, v in values if v is not None]))
        return out

    def time_axis(self, drawn: list[Drawn], *, max_labels: int) -> charting.TimeAxis:
        """The time axis of what is drawn (see `charting.time_axis`)."""
        return charting.time_axis(
            [m for d in drawn for m, _ in d.points],
            window_min=self.window_min,
            stage_minute=self.stage_minute,
            stage=self.stage,
            max_labels=max_labels,
        )

    # ----- layout --------------------------------------------------------------------------------

    @property
    def compact(self) -> bool:
        """True while sparklines stand in for the chart (the box is too short)."""
        return self.has_class("-compact")

    def on_resize(self, event: Resize) -> None:
        """Chart or sparklines, by the height available; then redraw for the new size."""
        # The same rule for both charts (not the lines each title happens to take), so the
        # pair is either two charts or two sets of sparklines.
        self.set_class(event.size.height < COMPACT_BELOW, "-compact")
        self._draw()

    def watch_op(self) -> None:
        """A new operation: redraw."""
        self._draw()

    def watch_points(self) -> None:
        """New points: redraw."""
        self._draw()

    def watch_stage_minute(self) -> None:
        """The stage changed: redraw."""
        self._draw()

    def on_mount(self) -> None:
        """Draw what is already set."""
        self._draw()

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        for chart in self.screen.query(TrendChart):
            chart._draw_title()  # a neighbour's title height may follow this one's
        if self.compact:
            width = max(1, self.size.width - 1)  # the left padding
            self.query_one(".sparklines", Static).update(self._sparklines(width))
        self.query_one(TimePlot).refresh()

    def _draw_title(self) -> None:
        if not self.is_mounted:
            return
        width = max(1, self.size.width - 1)  # the left padding
        title = self.query_one(".chart-title", Static)
        if self.compact:
            title.update(self._spark_title(width))
            return
        # Both charts' plots start on the same line: a title that takes one line is padded
        # to the height of its neighbour's.
        lines = self._title_lines(width)
        height = max(
            len(chart._title_lines(max(1, chart.size.width - 1)))
            for chart in self.screen.query(TrendChart)
        )
        title.update(Content("\n").join(lines + [Content("")] * (height - len(lines))))

    # ----- titles and sparklines -----------------------------------------------------------------

    def _legend(self, long: bool) -> Content:
        items = [
            Content.from_markup(f"[{_hex(s.color)}]━[/] $name", name=s.name if long else s.short)
            for s in self.SERIES[self.kind]
        ]
        return Content("  ").join(items)

    def _title_lines(self, width: int) -> list[Content]:
        """The title and the legend on one line when they fit in `width`, else on two (the
        shorter forms first, so the legend is never cut)."""
        if not self.points:
            return [Content(f"{self.op}: no calls in the last {self.window_min} min")]
        titles = self._titles()
        for title in titles:
            for long in (True, False):
                legend = self._legend(long)
                if len(title) + 2 + len(legend) <= width:
                    return [Content.from_markup("[b]$t[/]  ", t=title) + legend]
        title = next((t for t in titles if len(t) <= width), titles[-1])
        legend = self._legend(len(self._legend(True)) <= width)
        return [Content.from_markup("[b]$t[/]", t=title), legend]

    def _titles(self) -> list[str]:
        return [t.format(op=self.op) for t in self.TITLES[self.kind]]

    def _spark_title(self, width: int) -> Content:
        drawn = self.drawn()
        values = [v for d in drawn for _, v in d.points]
        if not values:
            return Content(f"{self.op}: no calls in the last {self.window_min} min")
        peak = charting.tick_text(max(values), self.unit)
        lines = [f"{title}, max {peak}" for title in self._titles()]
        line = next((text for text in lines if len(text) <= width), lines[-1])
        return Content.from_markup("[b]$t[/]", t=line)

    def _sparklines(self, width: int) -> Content:
        """One line per series: its name in its colour, the bars on the chart's shared scale,
        and its latest minute's value (`-` when the latest minutes had no call)."""
        drawn = self.drawn()
        values = [v for d in drawn for _, v in d.points]
        top = max(values, default=0.0)
        time = self.time_axis(drawn, max_labels=2)
        label_width = max(len(d.series.short) for d in drawn) + 1
        # The value of the latest minute, or `-` when it (or the one before, still being
        # written) had no call: a value from before a rollback is not this stage's.
        latest = [
            charting.tick_text(d.points[-1][1], self.unit)
            if d.points and d.points[-1][0] >= -2
            else "-"
            for d in drawn
        ]
        value_width = max(len(text) for text in latest) + 1
        bars_width = max(1, width - label_width - value_width)
        lines = []
        for d, last in zip(drawn, latest, strict=True):
            bars = charting.spark_bars(d.points, start=time.start, top=top, width=bars_width)
            lines.append(
                Content.from_markup(
                    f"[{_hex(d.series.color)}]$name$bars[/] $last",
                    name=d.series.short.ljust(label_width),
                    bars=bars.ljust(bars_width),
                    last=last.rjust(value_width - 1),
                )
            )
        return Content("\n").join(lines)
