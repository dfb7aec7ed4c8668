"""The one equality of "same result" (harness.compare): what the shadow comparison and the
contract tests both decide with, and where it says two results part."""

from __future__ import annotations

import numpy as np
import pytest

from harness.bars import Bars, aggregate
from harness.compare import (
    Difference,
    assert_same_bars,
    first_difference,
    first_result_difference,
    same_error,
)
from harness.errors import BarDataError, InvalidInputError

MINUTE = 60_000_000_000
# 2024-01-01T00:00Z: int64 ns near 1970 would be read as another unit by size (harness.bars)
T0 = 1_704_067_200 * 10**9


def series(n: int = 30, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    o = 4000 + rng.integers(-40, 40, n) * 0.25
    c = o + rng.integers(-4, 5, n) * 0.25
    return {
        "t": T0 + np.arange(n, dtype=np.int64) * MINUTE,
        "o": o,
        "h": np.maximum(o, c) + 0.5,
        "l": np.minimum(o, c) - 0.5,
        "c": c,
        "v": rng.integers(1, 100, n).astype(np.int64),
    }


def changed(bars: Bars, column: str, index: int, value: float) -> Bars:
    columns = {k: bars[k].copy() for k in "tohlcv"}
    columns[column][index] = value
    return Bars(**columns)


def test_equal_series_have_no_difference() -> None:
    five = aggregate(series(), "5m", impl="python")
    assert first_difference(five, aggregate(series(), "5m", impl="rust")) is None
    assert_same_bars(five, five)


def test_first_differing_bar_is_the_lowest_index_whatever_the_column() -> None:
    five = aggregate(series(), "5m")
    other = changed(changed(five, "v", 1, 10**6), "c", 4, 1.25)
    diff = first_difference(five, other)
    assert diff == Difference(None, 1, "v", int(five.v[1]), 10**6)


def test_same_index_reports_columns_in_ohlcv_order() -> None:
    five = aggregate(series(), "5m")
    other = changed(changed(five, "v", 2, 10**6), "h", 2, 9999.0)
    diff = first_difference(five, other)
    assert diff is not None and (diff.index, diff.field, diff.right) == (2, "h", 9999.0)


def test_shorter_series_reports_lengths_after_an_equal_prefix() -> None:
    five = aggregate(series(), "5m")
    shorter = Bars(*(five[k][:-1] for k in "tohlcv"))
    diff = first_difference(five, shorter)
    assert diff == Difference(None, len(five) - 1, "length", len(five), len(five) - 1)


def test_dtype_difference_is_reported_before_values() -> None:
    five = aggregate(series(), "5m")
    as_float = Bars(*(five[k] if k != "v" else five.v.astype(np.float64) for k in "tohlcv"))
    diff = first_difference(five, as_float)
    assert diff is not None and diff.field == "v.dtype" and diff.index is None


def test_assert_same_bars_names_bar_field_and_values() -> None:
    five = aggregate(series(), "5m")
    with pytest.raises(AssertionError, match=r"o differs at bar 3: 1\.5 != "):
        assert_same_bars(changed(five, "o", 3, 1.5), five)


def test_multi_timeframe_results_name_the_timeframe() -> None:
    both = aggregate(series(), ["5m", "15m"])
    broken = {"5m": both["5m"], "15m": changed(both["15m"], "l", 0, 0.25)}
    diff = first_result_difference(both, broken)
    assert diff is not None and (diff.timeframe, diff.index, diff.field) == ("15m", 0, "l")
    missing = first_result_difference(both, {"5m": both["5m"]})
    assert missing is not None and missing.field == "timeframes"


def test_errors_are_equal_by_class_and_message() -> None:
    a = BarDataError("t", 3, "duplicate timestamp")
    assert same_error(a, BarDataError("t", 3, "duplicate timestamp"))
    assert not same_error(a, BarDataError("t", 4, "duplicate timestamp"))
    assert not same_error(a, InvalidInputError("t", 3, "duplicate timestamp"))
    assert first_result_difference(a, BarDataError("t", 3, "duplicate timestamp")) is None


def test_an_error_against_a_result_is_a_difference() -> None:
    five = aggregate(series(), "5m")
    diff = first_result_difference(five, BarDataError("h", 2, "high below low"))
    assert diff is not None and diff.field == "error"
    assert diff.right == "BarDataError: h: high below low at index 2"


def test_both_implementations_agree_on_bad_input_by_this_equality() -> None:
    bad = series()
    bad["t"][5] = bad["t"][4]
    outcomes = []
    for impl in ("rust", "python"):
        with pytest.raises(BarDataError) as caught:
            aggregate(bad, "5m", impl=impl)
        outcomes.append(caught.value)
    assert first_result_difference(*outcomes) is None
