"""Series longer than the Rust core's block (2,048 rows), shaped to reach every path of its
bucket search and of its validation scan: regular minutes (the guessed run length holds), gaps
inside a bucket and at its boundary, single-bar buckets (the output as long as the input),
buckets longer than a block, several timeframes that do not nest (7m and 1h), a bar exactly at
each timeframe's boundary; values the bit tricks of the scan must send to the exact check
(-0.0, an overflowing high - low, the edge of the time range); pushes of long batches. Each
case equals pandas (the semantics of DESIGN.md) and is the same on both sides."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.bars import Aggregator, aggregate, parse_offset, parse_timeframe
from harness.errors import BarDataError

from .conftest import GAPS, IMPLS, MINUTE, assert_same_bars, oracle, random_bars

BLOCK = 2048  # rows per validation block in rust/src/bars/validate.rs
T0 = 1_717_000_000 * 10**9 // MINUTE * MINUTE  # 2024-05-29 16:26 UTC, on the minute


@st.composite
def long_minute_series(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """2,049 to 9,000 one-minute bars: stretches of regular minutes between gaps of every kind
    (a few minutes, an hour's break, a weekend, weeks)."""
    n = draw(st.integers(BLOCK + 1, 9_000))
    stretches = draw(st.lists(st.integers(1, 3_000), min_size=1, max_size=12))
    breaks = draw(st.lists(GAPS, min_size=len(stretches), max_size=len(stretches)))
    gaps = np.ones(n - 1, dtype=np.int64)
    at = 0
    for length, gap in zip(stretches, breaks, strict=True):
        at += length
        if at >= n - 1:
            break
        gaps[at] = gap
    start = draw(st.integers(-5_000_000, 40_000_000)) * MINUTE
    t = start + np.concatenate([[0], np.cumsum(gaps)]) * MINUTE
    return random_bars(t, draw(st.integers(0, 2**32 - 1)))


LONG_TIMEFRAMES = ["1m", "2m", "5m", "7m", "13m", "15m", "1h", "4h", "1d", "7d"]


@settings(max_examples=25)
@given(
    bars=long_minute_series(),
    timeframe=st.sampled_from(LONG_TIMEFRAMES),
    offset=st.sampled_from([None, "17h", "-7h", "22h30m", "3m"]),
)
def test_long_series_with_gaps_equal_pandas(bars, timeframe, offset):
    want = oracle(bars, timeframe, offset)
    for impl in IMPLS:
        assert_same_bars(aggregate(bars, timeframe, impl=impl, offset=offset, unit="ns"), want)


@settings(max_examples=10)
@given(bars=long_minute_series(), offset=st.sampled_from([None, "17h", "1m"]))
def test_timeframes_that_do_not_nest_in_one_pass_equal_pandas(bars, offset):
    # 7m and 13m nest in nothing, 1h not in 7m; 5m -> 15m -> 1h -> 1d do nest.
    frames = ["7m", "1h", "5m", "13m", "15m", "1d"]
    for impl in IMPLS:
        together = aggregate(bars, frames, impl=impl, offset=offset, unit="ns")
        for timeframe in frames:
            assert_same_bars(together[timeframe], oracle(bars, timeframe, offset))


@pytest.mark.parametrize(("every", "timeframe"), [(1, "1m"), (7, "5m"), (61, "1h"), (1441, "1d")])
def test_every_bar_its_own_bucket(impl, every, timeframe):
    # As many bars out as in: the output fills the capacity planned for it exactly.
    n = 3 * BLOCK + 5
    bars = random_bars(T0 + np.arange(n, dtype=np.int64) * every * MINUTE, seed=5)
    out = aggregate(bars, timeframe, impl=impl)
    assert len(out) == n
    period = parse_timeframe(timeframe)
    assert np.array_equal(out.t, bars["t"] // period * period)
    for k in "ohlcv":
        assert np.array_equal(out[k], bars[k])


@pytest.mark.parametrize("timeframe", ["1m", "5m", "7m", "15m", "1h", "4h", "1d"])
@pytest.mark.parametrize("offset", [None, "17h", "-7h", "3m"])
def test_a_bar_exactly_at_a_boundary_opens_the_bucket_it_labels(impl, timeframe, offset):
    period = parse_timeframe(timeframe)
    shift = parse_offset(offset) % period
    first = (T0 - shift) // period * period + shift  # a boundary of this timeframe
    # Bars at boundaries k (some skipped), each with the bar one minute before it.
    ks = [k for k in range(3_000) if k % 7 != 3]
    at = np.array([first + k * period for k in ks], dtype=np.int64)
    t = np.unique(np.concatenate([at, at - MINUTE]))
    bars = random_bars(t, seed=9)
    out = aggregate(bars, timeframe, impl=impl, offset=offset)
    assert_same_bars(out, oracle(bars, timeframe, offset))
    labels = set(out.t.tolist())
    assert all(int(x) in labels for x in at)  # each boundary bar labels its own bucket
    opened = np.searchsorted(bars["t"], out.t)
    assert np.array_equal(out.o, bars["o"][opened])  # ... and is that bucket's open


@pytest.mark.parametrize("timeframe", ["2d", "7d"])
def test_buckets_longer_than_a_block(impl, timeframe):
    # 7d of 1-minute bars is 10,080 rows: one bucket spans five blocks.
    n = 3 * 10_080 + 77
    bars = random_bars(T0 + np.arange(n, dtype=np.int64) * MINUTE, seed=3)
    assert_same_bars(aggregate(bars, timeframe, impl=impl), oracle(bars, timeframe))


def long_base(n: int = 5_000) -> dict[str, np.ndarray]:
    return random_bars(T0 + np.arange(n, dtype=np.int64) * MINUTE, seed=2)


def with_(bars: dict[str, np.ndarray], column: str, at: int, value: float) -> dict:
    changed = {k: v.copy() for k, v in bars.items()}
    changed[column][at] = value
    return changed


@pytest.mark.parametrize("at", [1, 2047, 2048, 3000, 4999])
@pytest.mark.parametrize(
    ("high", "low"),
    [(-0.0, 0.0), (0.0, -0.0), (1e308, -1e308), (1.7e308, -1.7e308)],
    ids=["-0 and +0", "+0 and -0", "high - low near the largest float", "high - low overflows"],
)
def test_valid_prices_the_fast_scan_cannot_tell_are_accepted(impl, at, high, low):
    # The scan folds `h - l` into bits: a sign bit for -0.0 - 0.0, infinity for an overflowing
    # difference. Both are valid bars (h >= l, finite): the exact check must accept them.
    bars = with_(with_(long_base(), "h", at, high), "l", at, low)
    out = aggregate(bars, "5m", impl=impl)
    assert_same_bars(out, oracle(bars, "5m"))


def test_timestamps_at_the_edges_of_the_range_are_accepted(impl):
    # 2^62 itself is in range (the scan's fast test stops just below it).
    limit = 2**62
    n = 3 * BLOCK
    t = np.arange(n, dtype=np.int64) * MINUTE
    for edge in (limit - t[-1] - 7, -limit):
        bars = random_bars(t + edge, seed=4)
        if edge > 0:
            bars["t"][-1] = limit
        out = aggregate(bars, ["5m", "1h"], impl=impl, unit="ns")
        assert sum(out["5m"].v) == sum(bars["v"])
        assert_same_bars(out["1h"], aggregate(bars, "1h", impl="python", unit="ns"))


OUTSIDE = "t: timestamp outside the supported range (years 1823 to 2116)"


@pytest.mark.parametrize("at", [1, 2047, 2048, 3000])
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([-(2**62)], "t: timestamp goes backwards (bars must be sorted ascending)"),
        ([2**62 + 1], OUTSIDE),
        ([-(2**63)], OUTSIDE),
    ],
    ids=["a jump back across the whole range", "just above the range", "int64 minimum"],
)
def test_far_jumps_in_time_are_the_same_error_on_both_sides(at, values, message):
    # Differences of such timestamps overflow int64: the scan must not be fooled by them.
    bars = long_base()
    bars["t"] += 2**62 - bars["t"][-1] - 1  # the series ends just inside the range
    bars["t"][at : at + len(values)] = values
    for impl in IMPLS:
        with pytest.raises(BarDataError) as caught:
            aggregate(bars, "5m", impl=impl, unit="ns")
        assert str(caught.value) == f"{message} at index {at}"


@pytest.mark.parametrize("at", [1, 2000, 3000])
def test_differences_that_wrap_around_int64_do_not_pass_as_rising(at):
    # Rows near 2^62, then 2^63 - 1 and -2^63 + 5, then rows near -2^62: each difference of
    # neighbours, wrapped around int64, is negative (as if rising), and the block's first and
    # last rows are in range. Row `at` is outside the range: the first error.
    bars = long_base()
    i = np.arange(len(bars["t"]), dtype=np.int64)
    bars["t"] = np.where(i < at, 2**62 - 9_000 * MINUTE, -(2**62)) + i * MINUTE
    bars["t"][at : at + 2] = [2**63 - 1, -(2**63) + 5]
    for impl in IMPLS:
        with pytest.raises(BarDataError) as caught:
            aggregate(bars, "5m", impl=impl, unit="ns")
        assert str(caught.value) == f"{OUTSIDE} at index {at}"


@settings(max_examples=15)
@given(
    bars=long_minute_series(),
    sizes=st.lists(st.integers(1, 3 * BLOCK), min_size=1, max_size=8),
    early=st.booleans(),
)
def test_long_batches_pushed_equal_batch(impl, bars, sizes, early):
    frames = ["5m", "7m", "1h", "1d"]
    live = Aggregator(frames, impl=impl, input_timeframe="1m" if early else None, unit="ns")
    got: dict[str, list[tuple]] = {tf: [] for tf in frames}
    n = len(bars["t"])
    edges = sorted({0, n, *itertools.accumulate(sizes)} & set(range(n + 1)))
    for lo, hi in itertools.pairwise(edges):
        done = live.push_many({k: bars[k][lo:hi] for k in "tohlcv"})
        for tf in frames:
            got[tf] += [tuple(done[tf].bar(j)) for j in range(len(done[tf]))]
    want = aggregate(bars, frames, impl="python", unit="ns")
    for tf in frames:
        partial = live.partial(tf)
        rows = got[tf] + ([tuple(partial)] if partial is not None else [])
        assert rows == [tuple(want[tf].bar(j)) for j in range(len(want[tf]))]


def test_push_many_hands_out_the_bar_its_last_row_completes(impl):
    # 09:30 .. 09:34 close the 09:30 5m bar: with 1-minute input it comes out of this call.
    start = T0 // (5 * MINUTE) * (5 * MINUTE)
    bars = random_bars(start + np.arange(5 * BLOCK, dtype=np.int64) * MINUTE, seed=8)
    live = Aggregator("5m", impl=impl)
    done = live.push_many(bars)["5m"]
    assert len(done) == BLOCK and live.partial("5m") is None
    assert_same_bars(done, oracle(bars, "5m"))
    waiting = Aggregator("5m", impl=impl, input_timeframe=None)
    assert len(waiting.push_many(bars)["5m"]) == BLOCK - 1
    assert waiting.partial("5m") is not None
