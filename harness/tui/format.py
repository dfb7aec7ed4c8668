"""How the dashboard writes figures: one function per kind of number, so every screen (and the
tests comparing the screen with `harness query`) shows a figure the same way."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from harness.config import Criterion

__all__ = ["age", "clock", "count", "criterion_figure", "duration", "ms", "percent", "rate"]

NONE = "-"


def count(value: int | None) -> str:
    """A count with thousands separators (`12,345`)."""
    return NONE if value is None else f"{value:,}"


def rate(value: float | None) -> str:
    """A fraction as a percentage: `0%`, `0.25%`, `1.2%`, `50%` (two significant digits)."""
    if value is None:
        return NONE
    if value == 0:
        return "0%"
    pct = value * 100.0
    if abs(pct) >= 10:
        return f"{pct:.0f}%"
    if abs(pct) >= 1:
        return f"{pct:.1f}%"
    return f"{pct:.2g}%"


def percent(value: float | None) -> str:
    """A configured percentage (`5%`, `12.5%`; `-` for none)."""
    return NONE if value is None else f"{value:g}%"


def ms(value: float | None) -> str:
    """Milliseconds to three significant digits, never fixed decimals and never an exponent:
    `0.00142`, `0.041`, `2.42`, `90.1`, `1,204` (a 1.4 us call is not `0.001`: the figures
    shown keep the sketch's 1% as `harness query latency` does)."""
    if value is None:
        return NONE
    if value <= 0:
        return "0"
    rounded = float(f"{value:.3g}")  # first to three digits: 99.96 is 100, not 100.0
    if rounded >= 100:
        return f"{value:,.0f}"
    decimals = 2 - math.floor(math.log10(rounded))
    return f"{rounded:.{decimals}f}"


def duration(seconds: float) -> str:
    """`45s`, `12m 03s`, `3h 20m`, `2d 4h`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def clock(ns: int) -> str:
    """A moment as `HH:MM:SS UTC`."""
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%H:%M:%S UTC")


def age(now_ns: int, then_ns: int) -> str:
    """How long ago `then_ns` was, from `now_ns` (`0s`, `1m 05s`)."""
    return duration((now_ns - then_ns) / 1e9)


def criterion_figure(criterion: Criterion, value: float | None) -> str:
    """A gate criterion's figure or bound in its own unit: a count of calls or mismatches, a
    rate, a latency ratio (`0.93x`), a share of calls, seconds of soak."""
    if value is None:
        return NONE
    if criterion in (Criterion.min_samples, Criterion.shadow):
        return count(int(value))
    if criterion in (Criterion.fallback_rate, Criterion.error_rate, Criterion.error_excess):
        return rate(value)
    if criterion in (Criterion.p50_ratio, Criterion.p99_ratio):
        return f"{value:.3g}x"
    if criterion is Criterion.not_slower:
        return f"{value:.3f}"
    return duration(value)
