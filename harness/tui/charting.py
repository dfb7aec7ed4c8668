"""What the overview's charts draw, worked out without a terminal: the value axis (from 0 to a
round top, never below 0), the time axis (the minutes the data covers, at most the chart
window, labelled in minutes before now, with the current stage's start marked), the label line
under a chart, and the sparklines that stand in for a chart in a short box.

No Textual here: plain functions of numbers, tested on their own (`tests/tui/test_charting.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MIN_SPAN_MIN",
    "Label",
    "TimeAxis",
    "ValueAxis",
    "label_line",
    "runs",
    "spark_bars",
    "tick_text",
    "time_axis",
    "value_axis",
]

MIN_SPAN_MIN: Final = 5
"""The shortest time axis, in minutes: a stage one minute old is drawn over five minutes, not
stretched over the whole width."""

_STEPS: Final = (1.0, 2.0, 2.5, 5.0, 10.0)
"""Round tick steps (times a power of ten), as people read an axis."""

_BARS: Final = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class ValueAxis:
    """A value axis from 0 to `top`, with `ticks` (0 first, `top` last) in the series' unit."""

    top: float
    ticks: tuple[float, ...]


def value_axis(values: Sequence[float], *, least_top: float, max_ticks: int) -> ValueAxis:
    """The axis for `values` (rates in %, or latencies in ms): from 0, never below (neither can
    be negative, and an axis from 0 shows a ratio as it is), to the smallest round top (1, 2,
    2.5 or 5 times a power of ten, times the step count) at or above the largest value, with
    at most `max_ticks` ticks.

    `least_top` is the top when every value is smaller (all 0, or none): 0% everywhere is drawn
    at the bottom of a 0..1% axis, not in the middle of -1..1. Raises `ValueError` for a
    negative or non-finite value, `least_top` <= 0, or `max_ticks` < 2.
    """
    if max_ticks < 2:
        raise ValueError(f"max_ticks={max_ticks!r}: an axis needs at least 0 and its top")
    if not least_top > 0:
        raise ValueError(f"least_top={least_top!r}: must be above 0")
    for value in values:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r}: a rate or a latency is finite and never negative")
    top = max(max(values, default=0.0), least_top)
    step = _round_step(top / (max_ticks - 1))
    count = max(1, math.ceil(top / step - 1e-9))
    return ValueAxis(top=count * step, ticks=tuple(i * step for i in range(count + 1)))


def _round_step(least: float) -> float:
    """The smallest round step at or above `least` (> 0)."""
    power = 10.0 ** math.floor(math.log10(least))
    return next(f * power for f in _STEPS if f * power >= least * (1 - 1e-9))


def tick_text(value: float, unit: str) -> str:
    """A tick's value with its unit, shortest form: `0%`, `0.5%`, `2.5 ms`, `10 ms`."""
    text = f"{value:.3g}"
    return f"{text}%" if unit == "%" else f"{text} {unit}"


@dataclass(frozen=True, slots=True)
class Label:
    """A label of the time axis at `minute` (minutes before now, <= 0)."""

    minute: float
    text: str
    short: str | None = None
    """The shorter text to try when `text` does not fit (the stage mark only)."""

    @property
    def stage(self) -> bool:
        """True for the mark of the current stage's start (written first, never crowded out
        by the minutes)."""
        return self.short is not None


@dataclass(frozen=True, slots=True)
class TimeAxis:
    """A time axis from `start` minutes (< 0) to 0 (now), its labels, and where on it the
    current stage began (`stage_start`; None when that was before `start`)."""

    start: float
    labels: tuple[Label, ...]
    stage_start: float | None


def time_axis(
    minutes: Sequence[float],
    *,
    window_min: int,
    stage_minute: float | None,
    stage: str,
    max_labels: int,
) -> TimeAxis:
    """The time axis of a chart whose points lie at `minutes` (minutes before now, <= 0).

    It spans what there is, not always the whole window: from the oldest point's minute (at
    most `window_min` back, at least `MIN_SPAN_MIN`) to now, so a stage three minutes old fills
    the chart instead of its last columns. When the current stage began inside that span
    (`stage_minute`, minutes before now), `stage_start` says where and the label `▲STAGE
    began` marks it (the data before it is the stage before). The other labels are `-N min`
    at a round step (at most `max_labels` in all) and `now`: the axis says its own unit.
    """
    oldest = min(minutes, default=0.0)
    span = min(window_min, max(MIN_SPAN_MIN, math.ceil(-oldest - 1e-9)))
    start = -float(span)
    inside = stage_minute is not None and start <= stage_minute <= 0
    stage_start = stage_minute if inside else None
    room = max(1, max_labels - 1)
    step = next((s for s in (1, 2, 5, 10, 15, 30) if span / s <= room), 60)
    labels = [Label(-float(m), f"-{m} min") for m in range(step, span + 1, step)]
    labels.append(Label(0.0, "now"))
    if stage_start is not None:
        labels.append(Label(stage_start, f"▲{stage} began", short=f"▲{stage}"))
    return TimeAxis(start=start, labels=tuple(labels), stage_start=stage_start)


def label_line(placed: Sequence[tuple[int, Label]], width: int) -> str:
    """The line under a chart, `width` characters at most: each `(column, label)` written at
    its column. A minute's label is centred on its tick (moved in at the edges); the stage's
    mark starts at its column, the `▲` under the line it labels, or ends there when it would
    run off the right edge (`staging began▲`), and falls back to its short text. The stage
    goes first, then `now`, then the minutes from the newest; a label that would come within
    two spaces of one already written is left out (a tick without a label, never two labels
    read as one)."""
    line = [" "] * width
    taken = [False] * width

    def put(start: int, text: str) -> bool:
        end = start + len(text)
        if start < 0 or end > width or any(taken[max(0, start - 2) : min(width, end + 2)]):
            return False
        line[start:end] = list(text)
        taken[start:end] = [True] * len(text)
        return True

    def order(item: tuple[int, Label]) -> tuple[int, float]:
        label = item[1]
        return (0 if label.stage else 1 if label.minute == 0 else 2, -label.minute)

    for column, label in sorted(placed, key=order):
        if label.short is not None:
            for text in (label.text, label.short):
                if put(column, text) or put(column - len(text) + 1, text[1:] + text[0]):
                    break
            continue
        text = label.text
        put(min(max(0, column - len(text) // 2), width - len(text)), text)
    return "".join(line).rstrip()


def runs(points: Sequence[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """`(minute, value)` points (oldest first) cut into runs of consecutive minutes, so a line
    is never drawn across minutes without a call (a gap stays a gap)."""
    out: list[list[tuple[float, float]]] = []
    for point in points:
        if out and point[0] - out[-1][-1][0] <= 1.0 + 1e-9:
            out[-1].append(point)
        else:
            out.append([point])
    return out


def spark_bars(
    points: Sequence[tuple[float, float]], *, start: float, top: float, width: int
) -> str:
    """One series as a sparkline over `[start, 0)` minutes: one character per minute (several
    minutes per character, their largest value, when `width` is smaller), all series of a
    chart on the same scale `top` (so Rust's 0.3 ms is a low bar beside Python's 2.4 ms, not
    a full one). A minute without calls is a space; 0 is `▁`; any value above 0 is at least
    `▂`, so an error rate of 0.1% never looks like none."""
    span = -start
    columns = max(1, min(width, math.ceil(span - 1e-9)))
    per = span / columns
    cells: list[float | None] = [None] * columns
    for minute, value in points:
        c = min(columns - 1, max(0, math.floor((minute - start) / per + 1e-9)))
        held = cells[c]
        cells[c] = value if held is None else max(held, value)
    out = []
    for cell in cells:
        if cell is None:
            out.append(" ")
        elif cell <= 0 or top <= 0:
            out.append(_BARS[0])
        else:
            level = math.ceil(min(1.0, cell / top) * len(_BARS)) - 1
            out.append(_BARS[max(1, level)])
    return "".join(out)
