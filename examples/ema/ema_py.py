"""The worked example's exponential moving average in pure Python: the side the bot had before
its Rust function (`src/lib.rs`), and the one the harness falls back to.

`ema(prices, span)` equals pandas' `Series(prices).ewm(span=span, adjust=False).mean()`
(pandas' "Exponentially weighted window" documentation: alpha = 2 / (span + 1), y[0] = x[0],
y[t] = (1 - alpha) y[t-1] + alpha x[t]), computed with pandas' own operation order
(`pandas/_libs/window/aggregations.pyx`, `ewm`), the order the Rust side follows too: each
Python float operation is one IEEE-754 double operation, rounded once, so the two sides give
the same doubles (docs/example.md, "Why the two sides agree exactly").
"""

from __future__ import annotations

import math
from typing import Any, Final

from harness.errors import InvalidInputError

__all__ = ["MAX_SPAN", "ema"]

MAX_SPAN: Final = 2**53
"""The largest span accepted: every integer up to it is exactly a double, so `span - 1`
becomes the same double in Python and in Rust."""


def ema(prices: Any, span: Any) -> list[float]:
    """The EMA of `prices` (a list or tuple of finite numbers) with `span` (an int from 1 to
    2**53): a list of floats as long as `prices`, empty for empty input.

    Raises `harness.errors.InvalidInputError` naming `span`, `prices` (not a list or tuple) or
    `prices[i]` (the first value that is not a float or int, is a bool, NaN or infinite); the
    harness reads that class as the caller's mistake (never a fallback to the other side).
    """
    if not isinstance(span, int) or isinstance(span, bool) or not 1 <= span <= MAX_SPAN:
        raise InvalidInputError("span", span, "must be an integer from 1 to 2**53")
    if not isinstance(prices, list | tuple):
        raise InvalidInputError(
            "prices", type(prices).__name__, "must be a list or tuple of numbers"
        )
    values = [_price(i, item) for i, item in enumerate(prices)]
    com = (span - 1) / 2
    alpha = 1.0 / (1.0 + com)
    old_weight = 1.0 - alpha
    out: list[float] = []
    if not values:
        return out
    weighted = values[0]
    out.append(weighted)
    for value in values[1:]:
        # pandas divides by the weights' sum (1 - alpha) + alpha, which need not round to 1.0,
        # and skips the update when the value equals the mean (a constant series stays exact).
        if weighted != value:
            weighted = (old_weight * weighted + alpha * value) / (old_weight + alpha)
        out.append(weighted)
    return out


def _price(index: int, item: Any) -> float:
    if isinstance(item, float | int) and not isinstance(item, bool):
        try:
            value = float(item)
        except OverflowError:  # an int beyond the largest double
            value = float("inf")
        if math.isfinite(value):
            return value
    raise InvalidInputError(f"prices[{index}]", item, "must be a finite number")
