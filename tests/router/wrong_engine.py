"""A deliberately wrong aggregation engine (test hook): the pure-Python reference, except that
the high of bar 3 of the first timeframe is one tick too high."""

from __future__ import annotations

from typing import Any

from harness.bars import python as _python
from harness.bars.python import Aggregator as Aggregator

WRONG_INDEX = 3
WRONG_BY = 0.25


def aggregate_columns(*args: Any) -> list[Any]:
    results = _python.aggregate_columns(*args)
    t, o, h, l, c, v = results[0]  # noqa: E741
    if len(h) > WRONG_INDEX:
        h = h.copy()
        h[WRONG_INDEX] += WRONG_BY
        results[0] = (t, o, h, l, c, v)
    return results
