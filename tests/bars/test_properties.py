"""Rust == Python == pandas on random series; several timeframes in one pass == one at a time;
incremental == batch; aggregates never leave the tick grid.

The series span the whole supported range (1823-2116), 1970 included, where the size of an
epoch number cannot tell its unit: the int64 ns columns are passed with `unit="ns"`."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.bars import Aggregator, aggregate, parse_timeframe

from .conftest import (
    IMPLS,
    TICK,
    any_series,
    assert_same_bars,
    minute_series,
    offsets,
    oracle,
    timeframes,
)


@given(bars=minute_series(), timeframe=timeframes(), offset=offsets())
def test_equals_pandas_resample_on_minute_series(impl, bars, timeframe, offset):
    assert_same_bars(
        aggregate(bars, timeframe, impl=impl, offset=offset, unit="ns"),
        oracle(bars, timeframe, offset),
    )


@given(bars=any_series(), timeframe=timeframes(), offset=offsets())
def test_equals_pandas_resample_on_any_increasing_timestamps(impl, bars, timeframe, offset):
    assert_same_bars(
        aggregate(bars, timeframe, impl=impl, offset=offset, unit="ns"),
        oracle(bars, timeframe, offset),
    )


@given(
    bars=minute_series(),
    frames=st.lists(timeframes(), min_size=1, max_size=5, unique=True),
    offset=offsets(),
)
def test_several_timeframes_in_one_pass_equal_each_alone(impl, bars, frames, offset):
    together = aggregate(bars, frames, impl=impl, offset=offset, unit="ns")
    assert list(together) == frames
    for timeframe in frames:
        assert_same_bars(
            together[timeframe], aggregate(bars, timeframe, impl="python", offset=offset, unit="ns")
        )


@settings(max_examples=60)
@given(bars=minute_series(max_size=600), offset=offsets())
def test_nested_timeframes_5m_15m_1h_1d_equal_pandas(bars, offset):
    frames = ["5m", "15m", "1h", "4h", "1d", "3m", "6m"]  # 3m/6m nest too, 5m/3m do not
    want = {timeframe: oracle(bars, timeframe, offset) for timeframe in frames}
    for impl in IMPLS:  # one oracle, both implementations (pandas is the slow part)
        together = aggregate(bars, frames, impl=impl, offset=offset, unit="ns")
        for timeframe in frames:
            assert_same_bars(together[timeframe], want[timeframe])


@given(
    bars=minute_series(max_size=300),
    frames=st.lists(timeframes(), min_size=1, max_size=4, unique=True),
    offset=offsets(),
    cuts=st.lists(st.integers(0, 300), max_size=6),
    early=st.booleans(),
)
def test_incremental_equals_batch(impl, bars, frames, offset, cuts, early):
    live = Aggregator(
        frames, offset=offset, impl=impl, input_timeframe="1m" if early else None, unit="ns"
    )
    got: dict[str, list[tuple]] = {tf: [] for tf in frames}
    n = len(bars["t"])
    edges = sorted({0, n, *(c for c in cuts if c < n)})
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        if i % 2 == 0:  # alternate single pushes and batches
            for j in range(lo, hi):
                row = [bars[k][j].item() for k in "tohlcv"]
                for timeframe, bar in live.push(*row):
                    got[timeframe].append(tuple(bar))
        else:
            chunk = {k: bars[k][lo:hi] for k in "tohlcv"}
            for timeframe, done in live.push_many(chunk).items():
                got[timeframe].extend(tuple(done.bar(j)) for j in range(len(done)))
    batch = aggregate(bars, frames, impl="python", offset=offset, unit="ns")
    for timeframe in frames:
        partial = live.partial(timeframe)
        rows = got[timeframe] + ([tuple(partial)] if partial is not None else [])
        want = [tuple(batch[timeframe].bar(j)) for j in range(len(batch[timeframe]))]
        assert rows == want
        if early and partial is not None:
            # A bucket still open really is unfinished: its end is after the last bar's end.
            last_end = int(bars["t"][-1]) + 60_000_000_000
            assert partial.t + parse_timeframe(timeframe) > last_end


@given(bars=minute_series(), timeframe=timeframes(), offset=offsets())
def test_aggregates_stay_on_the_tick_grid_and_are_input_prices(impl, bars, timeframe, offset):
    out = aggregate(bars, timeframe, impl=impl, offset=offset, unit="ns")
    for k in "ohlc":
        assert np.all(np.mod(out[k], TICK) == 0)
        assert np.isin(out[k], bars[k]).all()
    assert out.v.sum() == bars["v"].sum()
    assert np.all(out.h >= out.l)
