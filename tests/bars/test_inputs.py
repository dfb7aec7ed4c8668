"""Both input shapes (column arrays and the gateway's `{t, o, h, l, c, v}` records) and their
conversions: newest-first records, ISO timestamps with Z or offsets, epoch numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from harness.bars import Bars, aggregate, parse_time, records_to_columns

from .conftest import MINUTE, assert_same_bars, oracle, random_bars

T0 = 1_717_000_000 * 10**9 // MINUTE * MINUTE


def series(n: int = 50) -> dict[str, np.ndarray]:
    return random_bars(T0 + np.arange(n, dtype=np.int64) * MINUTE, seed=11)


def iso(ns: int, tz: timezone = UTC, z: bool = True) -> str:
    text = datetime.fromtimestamp(ns / 1e9, tz).isoformat()
    return text.replace("+00:00", "Z") if z else text


def test_gateway_records_newest_first_with_mixed_iso_offsets(impl):
    bars = series()
    plus2 = timezone(timedelta(hours=2))
    records = [
        {
            "t": iso(int(t), plus2 if i % 3 == 0 else UTC, z=i % 2 == 0),
            "o": o,
            "h": h,
            "l": l,
            "c": c,
            "v": int(v),
        }
        for i, (t, o, h, l, c, v) in enumerate(zip(*(bars[k] for k in "tohlcv"), strict=True))  # noqa: E741
    ]
    records.reverse()  # retrieveBars sends newest first
    assert_same_bars(aggregate(records, "5m", impl=impl), oracle(bars, "5m"))


def test_records_and_columns_give_the_same_bars(impl):
    bars = series()
    records = Bars(**bars).to_records()
    assert_same_bars(aggregate(records, "15m", impl=impl), aggregate(bars, "15m", impl=impl))


def test_a_bars_result_can_be_aggregated_again(impl):
    bars = series(300)
    five = aggregate(bars, "5m", impl=impl)
    assert_same_bars(aggregate(five, "15m", impl=impl), aggregate(bars, "15m", impl=impl))


def test_single_bar_and_empty_input(impl):
    one = series(1)
    out = aggregate(one, "1h", impl=impl)
    assert len(out) == 1 and out.t[0] == T0 // (60 * MINUTE) * (60 * MINUTE)
    empty = aggregate({k: v[:0] for k, v in one.items()}, ["5m", "1h"], impl=impl)
    assert all(
        len(b) == 0 and b.t.dtype == np.int64 and b.v.dtype == np.int64 for b in empty.values()
    )


def test_lists_datetime64_and_strided_columns_are_accepted(impl):
    bars = series(40)
    as_lists = {k: v.tolist() for k, v in bars.items()}
    as_dt64 = {**bars, "t": bars["t"].astype("datetime64[ns]")}
    doubled = {k: np.repeat(v, 2)[::2] for k, v in bars.items()}  # non-contiguous views
    want = aggregate(bars, "5m", impl="python")
    for variant in (as_lists, as_dt64, doubled):
        assert_same_bars(aggregate(variant, "5m", impl=impl), want)


def test_output_columns_have_the_documented_dtypes(impl):
    out = aggregate(series(), "5m", impl=impl)
    want = ["i8", "f8", "f8", "f8", "f8", "i8"]
    assert [out[k].dtype for k in "tohlcv"] == [np.dtype(x) for x in want]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T14:30:00Z", datetime(2024, 3, 1, 14, 30, tzinfo=UTC)),
        ("2024-03-01T14:30:00+00:00", datetime(2024, 3, 1, 14, 30, tzinfo=UTC)),
        ("2024-03-01T09:30:00-05:00", datetime(2024, 3, 1, 14, 30, tzinfo=UTC)),
        ("2024-03-01T14:30:00", datetime(2024, 3, 1, 14, 30, tzinfo=UTC)),
        ("2024-03-01T14:30:00.5Z", datetime(2024, 3, 1, 14, 30, 0, 500000, tzinfo=UTC)),
    ],
)
def test_iso_timestamps_parse_to_utc_ns(text, expected):
    assert parse_time(text) == int(expected.timestamp()) * 10**9 + expected.microsecond * 1000


def test_nanosecond_fraction_and_epoch_units():
    assert parse_time("1970-01-01T00:00:01.123456789Z") == 1_123_456_789
    second = 1_709_303_400
    for value in (second, second * 1000, second * 10**6, second * 10**9, str(second)):
        assert parse_time(value) == second * 10**9


def test_bad_records_name_the_record():
    with pytest.raises(Exception, match=r"o: missing field at index 1"):
        records_to_columns([{"t": 0, "o": 1, "h": 1, "l": 1, "c": 1, "v": 1}, {"t": 60}])
    with pytest.raises(Exception, match=r"t: not an ISO-8601 timestamp or epoch number at index 0"):
        records_to_columns([{"t": "yesterday", "o": 1, "h": 1, "l": 1, "c": 1, "v": 1}])
    with pytest.raises(Exception, match=r"o: price is not a number at index 0"):
        records_to_columns([{"t": 0, "o": "x", "h": 1, "l": 1, "c": 1, "v": 1}])
