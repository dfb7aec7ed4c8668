"""Timestamps mean the same whatever shape they come in: epoch numbers in one unit per column
(given, or told apart by size) for arrays, records, pushes and batches alike; a unit that cannot
be right is an error, never bars dated 1970; datetime64 of any unit or zone in vectorised time."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import polars as pl
import pytest

from harness.bars import Aggregator, Bars, aggregate, parse_time
from harness.errors import BarDataError, InvalidInputError

from .conftest import MINUTE, assert_same_bars, random_bars

T0 = 1_717_000_000 * 10**9 // MINUTE * MINUTE  # 2024-05-29
SCALE = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def series(n: int = 500) -> dict[str, np.ndarray]:
    return random_bars(T0 + np.arange(n, dtype=np.int64) * MINUTE, seed=7)


def in_unit(bars: dict[str, np.ndarray], unit: str) -> dict[str, np.ndarray]:
    return {**bars, "t": bars["t"] // SCALE[unit]}


def records(bars: dict[str, np.ndarray]) -> list[dict]:
    return [
        {k: bars[k][i].item() for k in "tohlcv"} for i in range(len(bars["t"]) - 1, -1, -1)
    ]  # newest first, as retrieveBars answers


def test_pandas_int64_of_a_parsed_csv_is_microseconds_and_gives_the_right_bars(impl):
    """The report: pandas 3 `df.t.astype("int64")` is us, and became 2 bars dated 1970."""
    bars = series(3823)
    frame = pd.DataFrame({"t": pd.to_datetime(bars["t"], utc=True).as_unit("us")})
    as_int = frame["t"].astype("int64").to_numpy()
    assert as_int[0] == bars["t"][0] // 1000  # the premise: microseconds
    got = aggregate({**bars, "t": as_int}, "5m", impl=impl)
    assert_same_bars(got, aggregate(bars, "5m", impl="python"))
    assert len(got) == 765 and got.t[0] // 10**9 > 1_700_000_000


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_each_epoch_unit_reads_alike_in_arrays_lists_floats_records_and_text(impl, unit):
    bars = series()
    want = aggregate(bars, "15m", impl="python", unit="ns")
    ints = in_unit(bars, unit)
    shapes = {
        "int64 array": ints,
        "int32/uint64 array": {**ints, "t": ints["t"].astype(np.uint64)},
        "list": {**ints, "t": ints["t"].tolist()},
        "float array": {**ints, "t": ints["t"].astype(np.float64)} if unit != "ns" else ints,
        "text": {**ints, "t": [str(x) for x in ints["t"]]},
        "records": records(ints),
    }
    for name, shape in shapes.items():
        assert_same_bars(aggregate(shape, "15m", impl=impl), want), name
        assert_same_bars(aggregate(shape, "15m", impl=impl, unit=unit), want), name


def test_the_same_numbers_pushed_one_by_one_and_in_batches_agree(impl):
    bars = series(120)
    ms = in_unit(bars, "ms")
    live = Aggregator(["5m"], impl=impl)
    for i in range(60):
        live.push(*(ms[k][i].item() for k in "tohlcv"))
    live.push_many({k: v[60:90] for k, v in ms.items()})
    live.push_many(records({k: v[90:] for k, v in ms.items()}))
    batch = aggregate(bars, "5m", impl="python")
    assert live.count == 120
    assert live.partial("5m") == batch.bar(len(batch) - 1)


def test_fractional_epoch_seconds_keep_their_fraction(impl):
    bars = series(30)
    seconds = bars["t"] / 1e9 + 0.5  # every bar half a second late: same 5m buckets
    got = aggregate({**bars, "t": seconds}, "5m", impl=impl)
    assert_same_bars(got, aggregate(bars, "5m", impl="python"))
    assert parse_time(1_709_303_400.25) == 1_709_303_400_250_000_000


MIXED = [
    ("seconds then milliseconds", "s", 7, "ms"),
    ("nanoseconds then seconds", "ns", 3, "s"),
    ("microseconds then nanoseconds", "us", 10, "ns"),
]


@pytest.mark.parametrize(("name", "unit", "at", "other"), MIXED, ids=[m[0] for m in MIXED])
def test_a_column_mixing_units_is_an_error_naming_the_row(impl, name, unit, at, other):
    bars = in_unit(series(20), unit)
    t = bars["t"].copy()
    t[at:] = series(20)["t"][at:] // SCALE[other]
    with pytest.raises(BarDataError) as caught:
        aggregate({**bars, "t": t}, "5m", impl=impl)
    assert (caught.value.field, caught.value.index) == ("t", at)
    assert f"its size says {other}, the column's says {unit}" in str(caught.value)
    listed = [{k: bars[k][i].item() for k in "ohlcv"} | {"t": int(t[i])} for i in range(20)]
    with pytest.raises(BarDataError) as caught:
        aggregate(listed, "5m", impl=impl)
    assert (caught.value.field, caught.value.index) == ("t", at)


def test_live_pushes_of_another_unit_are_refused_and_change_nothing(impl):
    bars = series(10)
    live = Aggregator("5m", impl=impl)
    live.push(*(in_unit(bars, "s")[k][0].item() for k in "tohlcv"))
    before = (live.count, live.partial("5m"))
    ms_row = [in_unit(bars, "ms")[k][1].item() for k in "tohlcv"]
    with pytest.raises(BarDataError, match=r"its size says ms, the column's says s.* index 1"):
        live.push(*ms_row)
    with pytest.raises(BarDataError, match=r"index 1$"):
        live.push_many({k: v[1:] for k, v in in_unit(bars, "ms").items()})
    assert (live.count, live.partial("5m")) == before
    live.push(datetime(2024, 5, 29, 16, 27, tzinfo=UTC), 1.0, 1.0, 1.0, 1.0, 1)  # no unit
    later = Bars(*(bars[k][2:4].copy() for k in "tohlcv"))  # a Bars: ns by definition
    live.push_many(later)
    live.push(*(in_unit(bars, "s")[k][4].item() for k in "tohlcv"))  # still seconds
    assert live.count == 5


def test_numbers_whose_unit_lands_outside_1823_to_2116_are_errors_not_wrapped(impl):
    bars = series(6)
    cases = [
        (bars["t"], "s", 0),  # ns read as seconds: year 5e10
        (np.r_[bars["t"][:4] // 10**9, [5 * 10**9, 5 * 10**9 + 60]], None, 4),  # 2128 in s
        (bars["t"] // 1000, "ms", 0),  # us read as ms: year ~56,000
    ]
    for t, unit, at in cases:
        with pytest.raises(BarDataError) as caught:
            aggregate({**bars, "t": t}, "5m", impl=impl, unit=unit)
        assert (caught.value.index, caught.value.reason) == (
            at,
            "timestamp outside the supported range (years 1823 to 2116)",
        )


def test_explicit_unit_reads_1970_dates_that_size_cannot(impl):
    t = np.arange(0, 30, dtype=np.int64) * MINUTE  # 1970-01-01 00:00 .. 00:29 in ns
    bars = random_bars(t, seed=1)
    got = aggregate(bars, "15m", impl=impl, unit="ns")
    assert got.t.tolist() == [0, 15 * MINUTE]
    with pytest.raises(BarDataError):  # by size, 60e9 is a second in the year 3871
        aggregate(bars, "15m", impl=impl)


def test_a_bars_result_is_nanoseconds_whatever_its_size(impl):
    t = np.arange(0, 30, dtype=np.int64) * MINUTE
    five = aggregate(random_bars(t, seed=2), "5m", impl=impl, unit="ns")
    assert isinstance(five, Bars)
    assert aggregate(five, "15m", impl=impl).t.tolist() == [0, 15 * MINUTE]


@pytest.mark.parametrize("unit", ["sec", "S", "", 1])
def test_unknown_unit_is_invalid_input(impl, unit):
    with pytest.raises(InvalidInputError) as caught:
        aggregate(series(5), "5m", impl=impl, unit=unit)  # type: ignore[arg-type]
    assert caught.value.field == "unit"
    with pytest.raises(InvalidInputError):
        Aggregator("5m", impl=impl, unit=unit)  # type: ignore[arg-type]


# --- datetime64 and tz-aware columns -----------------------------------------------------


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_datetime64_of_any_unit_naive_or_aware_gives_the_same_bars(impl, unit):
    bars = series()
    want = aggregate(bars, "1h", impl="python")
    naive = bars["t"].view("datetime64[ns]").astype(f"datetime64[{unit}]")
    utc = pd.Series(pd.to_datetime(bars["t"], utc=True).as_unit(unit))
    chicago = utc.dt.tz_convert("America/Chicago")
    columns = {
        "numpy naive": naive,
        "pandas naive": pd.Series(naive),
        "pandas UTC": utc,
        "pandas Chicago": chicago,
        "pandas index": pd.DatetimeIndex(chicago),
        "pandas pyarrow-backed": utc.astype(f"timestamp[{unit}, tz=UTC][pyarrow]"),
        "polars Chicago": pl.Series(naive.astype("datetime64[ms]") if unit == "s" else naive)
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone("America/Chicago"),  # polars has no seconds unit
    }
    for name, t in columns.items():
        assert_same_bars(aggregate({**bars, "t": t}, "1h", impl=impl), want), name
    frame = pd.DataFrame({**{k: bars[k] for k in "ohlcv"}, "t": chicago})
    assert_same_bars(aggregate(frame, "1h", impl=impl), want)


def count_python_calls(fn) -> int:
    calls = 0

    def profile(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_tz_aware_columns_convert_without_a_python_loop_per_row(impl):
    """2,000,000 tz-aware bars took 23.8 s (one Python call per row): the work must not grow
    with the rows in Python."""

    def run(n: int) -> int:
        bars = series(n)
        t = pd.Series(pd.to_datetime(bars["t"], utc=True).as_unit("us"))
        frame = pd.DataFrame({"t": t, **{k: bars[k] for k in "ohlcv"}})
        return count_python_calls(lambda: aggregate(frame, "5m", impl="rust"))

    small, large = run(1_000), run(50_000)
    assert large <= small + 50, (small, large)
    if impl == "python":  # the reference loops over rows by design; the conversion still not
        bars = series(200)
        utc = pd.Series(pd.to_datetime(bars["t"], utc=True))
        assert_same_bars(aggregate({**bars, "t": utc}, "5m", impl=impl), aggregate(bars, "5m"))


def test_datetime64_beyond_the_range_or_nat_is_an_error_not_a_wrapped_date(impl):
    bars = series(6)
    far = bars["t"].view("datetime64[ns]").astype("datetime64[s]")
    far[3] = np.datetime64("3000-01-01T00:00:00", "s")  # wraps silently when cast to ns
    with pytest.raises(BarDataError) as caught:
        aggregate({**bars, "t": far}, "5m", impl=impl)
    assert (caught.value.index, caught.value.reason) == (
        3,
        "timestamp outside the supported range (years 1823 to 2116)",
    )
    missing = pd.Series(pd.to_datetime(bars["t"], utc=True))
    missing[2] = pd.NaT
    with pytest.raises(BarDataError, match=r"t: timestamp is missing \(NaT\) at index 2"):
        aggregate({**bars, "t": missing}, "5m", impl=impl)
