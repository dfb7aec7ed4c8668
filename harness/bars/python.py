"""Pure-Python bar aggregation: the reference implementation and the fallback.

This is the loop a bot starts with, kept plain on purpose: numpy appears only at the edges (to
take the input arrays as Python lists and to return numpy arrays). The Rust core
(`rust/src/bars/`) must agree with it bar for bar and error for error; the reason strings below
are shared word for word with `rust/src/bars/validate.rs`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.errors import BarDataError

__all__ = ["Aggregator", "aggregate_columns", "check_lengths", "check_row", "columns_from_lists"]

# Timestamps within +-2^62 ns of the epoch: no label, offset or boundary can overflow int64.
T_LIMIT = 1 << 62
INT64_MAX = (1 << 63) - 1

R_T_RANGE = "timestamp outside the supported range (years 1823 to 2116)"
R_T_DUPLICATE = "duplicate timestamp"
R_T_BACKWARDS = "timestamp goes backwards (bars must be sorted ascending)"
R_T_OVERLAP = "bar starts before the previous one ends (closer than the input timeframe)"
R_NAN = "price is NaN"
R_INFINITE = "price is infinite"
R_HIGH_BELOW_LOW = "high below low"
R_NEGATIVE_VOLUME = "negative volume"
R_VOLUME_OVERFLOW = "total volume overflows int64"

# (t, o, h, l, c, v) of one bar; t is the bucket start in ns since the epoch (UTC).
RawBar = tuple[int, float, float, float, float, int]
Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def check_row(
    index: int,
    t: int,
    prev: int | None,
    prices: tuple[float, float, float, float],
    v: int,
    total: int,
    min_gap: int = 1,
) -> int:
    """Check one row against the input rules, in their fixed order; returns the new volume total."""
    if not -T_LIMIT <= t <= T_LIMIT:
        raise BarDataError("t", index, R_T_RANGE, t)
    if prev is not None:
        if t == prev:
            raise BarDataError("t", index, R_T_DUPLICATE, t)
        if t < prev:
            raise BarDataError("t", index, R_T_BACKWARDS, t)
        if t - prev < min_gap:
            raise BarDataError("t", index, R_T_OVERLAP, t)
    for field, x in zip("ohlc", prices, strict=True):
        if math.isnan(x):
            raise BarDataError(field, index, R_NAN, x)
        if math.isinf(x):
            raise BarDataError(field, index, R_INFINITE, x)
    if prices[1] < prices[2]:
        raise BarDataError("h", index, R_HIGH_BELOW_LOW, prices[1])
    if v < 0:
        raise BarDataError("v", index, R_NEGATIVE_VOLUME, v)
    total += v
    if total > INT64_MAX:
        raise BarDataError("v", index, R_VOLUME_OVERFLOW, v)
    return total


def check_lengths(columns: Columns) -> int:
    """Number of rows, or `BarDataError` naming the first column whose length differs from t."""
    n = len(columns[0])
    for field, column in zip("ohlcv", columns[1:], strict=True):
        if len(column) != n:
            reason = f"length {len(column)} differs from t length {n}"
            raise BarDataError(field, -1, reason, len(column))
    return n


def columns_from_lists(*columns: Sequence[Any]) -> Columns:
    """Six Python lists (t, o, h, l, c, v) as numpy columns of the output dtypes."""
    dtypes = (np.int64, np.float64, np.float64, np.float64, np.float64, np.int64)
    return tuple(np.array(col, dtype=dt) for col, dt in zip(columns, dtypes, strict=True))  # type: ignore[return-value]


def aggregate_columns(
    t: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    l: np.ndarray,  # noqa: E741 - the column is called l
    c: np.ndarray,
    v: np.ndarray,
    periods: Sequence[int],
    offsets: Sequence[int],
) -> list[Columns]:
    """Aggregate columns into each (period, offset) in ns; one 6-tuple of arrays per period."""
    n = check_lengths((t, o, h, l, c, v))
    ts, os, hs, ls, cs, vs = (column.tolist() for column in (t, o, h, l, c, v))
    prev: int | None = None
    total = 0
    for i in range(n):
        total = check_row(i, ts[i], prev, (os[i], hs[i], ls[i], cs[i]), vs[i], total)
        prev = ts[i]

    results = []
    for period, offset in zip(periods, offsets, strict=True):
        out_t: list[int] = []
        out_o: list[float] = []
        out_h: list[float] = []
        out_l: list[float] = []
        out_c: list[float] = []
        out_v: list[int] = []
        for i in range(n):
            label = ts[i] - (ts[i] - offset) % period  # floor to the bucket start
            if out_t and out_t[-1] == label:
                out_h[-1] = max(out_h[-1], hs[i])
                out_l[-1] = min(out_l[-1], ls[i])
                out_c[-1] = cs[i]
                out_v[-1] += vs[i]
            else:
                out_t.append(label)
                out_o.append(os[i])
                out_h.append(hs[i])
                out_l.append(ls[i])
                out_c.append(cs[i])
                out_v.append(vs[i])
        results.append(columns_from_lists(out_t, out_o, out_h, out_l, out_c, out_v))
    return results


class Aggregator:
    """Incremental aggregation over several timeframes: the reference for `_native.Aggregator`.

    With `input_period` > 0 (the length of one input bar) a bucket is complete as soon as the
    bar ending at its boundary is pushed; with 0, only when a bar of a later bucket arrives.
    """

    def __init__(self, periods: Sequence[int], offsets: Sequence[int], input_period: int) -> None:
        self._periods = list(periods)
        self._offsets = [off % p for p, off in zip(periods, offsets, strict=True)]
        self._input_period = max(input_period, 0)
        self._min_gap = max(input_period, 1)
        self._bars: list[list[Any] | None] = [None] * len(self._periods)  # [t, o, h, l, c, v]
        self._next: list[int | None] = [None] * len(self._periods)
        self._prev: int | None = None
        self._total = 0
        self._count = 0

    @property
    def count(self) -> int:
        """Bars accepted so far."""
        return self._count

    def partial(self, k: int) -> RawBar | None:
        """The bar being built for timeframe `k`, or None."""
        bar = self._bars[k]
        return None if bar is None else tuple(bar)

    def push(self, t: int, o: float, h: float, l: float, c: float, v: int) -> list[tuple[Any, ...]]:  # noqa: E741
        """Push one bar; returns `[(k, t, o, h, l, c, v), ...]` for the bars it completed."""
        prices = (o, h, l, c)
        self._total = check_row(self._count, t, self._prev, prices, v, self._total, self._min_gap)
        self._prev = t
        self._count += 1
        done: list[tuple[Any, ...]] = []
        self._apply(t, o, h, l, c, v, lambda k, bar: done.append((k, *bar)))
        return done

    def push_many(self, *columns: np.ndarray) -> list[Columns]:
        """Push columns t, o, h, l, c, v (all or nothing); the completed bars per timeframe."""
        n = check_lengths(columns)  # type: ignore[arg-type]
        ts, os, hs, ls, cs, vs = (column.tolist() for column in columns)
        prev, total = self._prev, self._total
        for i in range(n):
            prices = (os[i], hs[i], ls[i], cs[i])
            total = check_row(self._count + i, ts[i], prev, prices, vs[i], total, self._min_gap)
            prev = ts[i]
        self._prev, self._total, self._count = prev, total, self._count + n
        outs: list[list[list[Any]]] = [[[], [], [], [], [], []] for _ in self._periods]

        def emit(k: int, bar: list[Any]) -> None:
            for column, x in zip(outs[k], bar, strict=True):
                column.append(x)

        for i in range(n):
            self._apply(ts[i], os[i], hs[i], ls[i], cs[i], vs[i], emit)
        return [columns_from_lists(*out) for out in outs]

    def _apply(
        self,
        t: int,
        o: float,
        h: float,
        l: float,  # noqa: E741
        c: float,
        v: int,
        emit: Callable[[int, list[Any]], None],
    ) -> None:
        for k, period in enumerate(self._periods):
            bar, nxt = self._bars[k], self._next[k]
            if nxt is not None and t < nxt and bar is not None:
                bar[2] = max(bar[2], h)
                bar[3] = min(bar[3], l)
                bar[4] = c
                bar[5] += v
            else:
                if bar is not None:
                    emit(k, bar)
                label = t - (t - self._offsets[k]) % period
                nxt = self._next[k] = label + period
                self._bars[k] = bar = [label, o, h, l, c, v]
            # The bar that ends at the bucket boundary completes the bucket.
            if self._input_period and t + self._input_period >= nxt:
                emit(k, bar)
                self._bars[k] = None
