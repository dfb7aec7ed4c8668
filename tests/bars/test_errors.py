"""Bad input is a clear error naming the problem and the row, identical on both sides."""

from __future__ import annotations

import warnings
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.bars import Aggregator, aggregate, parse_offset, parse_timeframe
from harness.errors import BarDataError, InvalidInputError

from .conftest import IMPLS, MINUTE, minute_series, random_bars


def base(n: int = 6) -> dict[str, np.ndarray]:
    return random_bars(1_700_000_000 * 10**9 + np.arange(n, dtype=np.int64) * MINUTE, seed=3)


def error_of(impl: str, bars: dict, timeframe: str = "5m") -> BaseException:
    with pytest.raises(InvalidInputError) as caught:
        aggregate(bars, timeframe, impl=impl)
    return caught.value


def with_(bars: dict, column: str, index: int, value: object) -> dict:
    out = {k: v.copy() for k, v in bars.items()}
    out[column][index] = value
    return out


CASES = [
    ("o shorter", lambda b: {**b, "o": b["o"][:-1]}, "o: length 5 differs from t length 6"),
    ("v longer", lambda b: {**b, "v": np.append(b["v"], 1)}, "v: length 7 differs from t length 6"),
    ("t duplicate", lambda b: with_(b, "t", 3, b["t"][2]), "t: duplicate timestamp at index 3"),
    (
        "t backwards",
        lambda b: with_(b, "t", 4, b["t"][1]),
        "t: timestamp goes backwards (bars must be sorted ascending) at index 4",
    ),
    (
        "t out of range",
        lambda b: with_(b, "t", 0, -(2**62) - 1),
        "t: timestamp outside the supported range (years 1823 to 2116) at index 0",
    ),
    ("o NaN", lambda b: with_(b, "o", 2, np.nan), "o: price is NaN at index 2"),
    ("h inf", lambda b: with_(b, "h", 5, np.inf), "h: price is infinite at index 5"),
    ("l -inf", lambda b: with_(b, "l", 1, -np.inf), "l: price is infinite at index 1"),
    ("c NaN", lambda b: with_(b, "c", 0, np.nan), "c: price is NaN at index 0"),
    (
        "high below low",
        lambda b: with_(b, "h", 4, b["l"][4] - 0.25),
        "h: high below low at index 4",
    ),
    ("negative volume", lambda b: with_(b, "v", 3, -1), "v: negative volume at index 3"),
    (
        "volume overflow",
        lambda b: {**b, "v": np.full(6, 2**62, dtype=np.int64)},
        "v: total volume overflows int64 at index 1",
    ),
    ("missing column", lambda b: {k: v for k, v in b.items() if k != "c"}, "c: missing column"),
    (
        "fractional volume",
        lambda b: {**b, "v": b["v"] + 0.5},
        "v: volume is not an integer at index 0",
    ),
]


@pytest.mark.parametrize(("name", "corrupt", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_the_same_error_on_both_sides(name, corrupt, message):
    errors = [error_of(impl, corrupt(base())) for impl in IMPLS]
    for error in errors:
        assert type(error) is BarDataError
        assert str(error) == message
    assert errors[0].field == errors[1].field
    assert errors[0].index == errors[1].index


@pytest.mark.parametrize("at", [1, 2047, 2048, 2049, 4095, 4096, 4999])
@pytest.mark.parametrize("problem", ["duplicate", "nan", "negative", "low"])
def test_errors_at_block_boundaries_name_the_exact_row(at, problem):
    bars = base(5000)
    if problem == "duplicate":
        bars = with_(bars, "t", at, bars["t"][at - 1])
    elif problem == "nan":
        bars = with_(bars, "c", at, np.nan)
    elif problem == "negative":
        bars = with_(bars, "v", at, -5)
    else:
        bars = with_(bars, "l", at, bars["h"][at] + 1)
    messages = {str(error_of(impl, bars)) for impl in IMPLS}
    assert len(messages) == 1
    assert messages.pop().endswith(f" at index {at}")


@given(
    bars=minute_series(max_size=300),
    column=st.sampled_from("tohlcv"),
    where=st.floats(0, 1),
    value=st.sampled_from(["nan", "inf", "-inf", "neg", "dup", "back", "huge"]),
)
def test_any_corruption_gives_identical_errors(bars, column, where, value):
    n = len(bars["t"])
    i = min(int(where * n), n - 1)
    bars = {k: v.copy() for k, v in bars.items()}
    if column == "t":
        if i == 0 or value in ("nan", "inf", "-inf", "neg"):
            bars["t"][i] = 2**62 + 1
        else:
            bars["t"][i] = bars["t"][i - 1] - (0 if value == "dup" else MINUTE)
    elif column == "v":
        bars["v"][i] = 2**63 - 1 if value == "huge" else -1
    else:
        bars[column][i] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}.get(value, -1e300)
    outcomes = []
    for impl in IMPLS:
        try:
            aggregate(bars, ["5m", "1h"], impl=impl, unit="ns")
            outcomes.append(None)
        except BarDataError as error:
            outcomes.append((type(error), str(error), error.index))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("timeframe", ["5x", "0m", "m", "", "5", "1w", "5M", " 5m", "1.5h", 5])
def test_unknown_timeframe_is_invalid_input(impl, timeframe):
    with pytest.raises(InvalidInputError) as caught:
        aggregate(base(), timeframe, impl=impl)
    assert type(caught.value) is InvalidInputError
    assert str(caught.value) == (
        f"invalid timeframe={timeframe!r}: unknown timeframe: expected <N>m, <N>h or <N>d, "
        "e.g. 5m, 1h, 1d"
    )


def test_too_long_timeframe_and_bad_offset_and_impl_are_invalid_input():
    with pytest.raises(InvalidInputError, match="longer than 10000d"):
        parse_timeframe("10001d")
    with pytest.raises(InvalidInputError, match="invalid offset='5x'"):
        aggregate(base(), "5m", offset="5x")
    with pytest.raises(InvalidInputError, match="invalid impl='go'"):
        aggregate(base(), "5m", impl="go")  # type: ignore[arg-type]


def test_offset_forms_agree():
    assert parse_offset("17h") == parse_offset(timedelta(hours=17)) == 17 * 3600 * 10**9
    assert parse_offset("-7h") == -7 * 3600 * 10**9
    assert parse_offset("22h30m") == parse_offset(timedelta(hours=22, minutes=30))
    assert parse_offset(None) == parse_offset("0") == 0
    assert parse_offset(123) == 123


def test_incremental_rejects_like_batch_and_changes_nothing(impl):
    bars = base()
    live = Aggregator(["5m", "15m"], impl=impl)
    live.push_many({k: v[:3] for k, v in bars.items()})
    before = (live.count, live.partial("5m"))
    with pytest.raises(BarDataError) as caught:
        live.push_many({k: v[2:] for k, v in bars.items()})  # re-sends index 2
    assert str(caught.value) == "t: duplicate timestamp at index 3"
    with pytest.raises(BarDataError) as caught:
        live.push(int(bars["t"][2]) + MINUTE // 2, 1.0, 2.0, 0.5, 1.0, 1)
    assert str(caught.value) == (
        "t: bar starts before the previous one ends (closer than the input timeframe) at index 3"
    )
    with pytest.raises(BarDataError, match="o: price is NaN at index 3"):
        live.push(int(bars["t"][3]), float("nan"), 2.0, 0.5, 1.0, 1)
    assert (live.count, live.partial("5m")) == before
    live.push_many({k: v[3:] for k, v in bars.items()})
    assert live.count == 6
    with pytest.raises(InvalidInputError, match="not one of"):
        live.partial("1h")


def test_pushed_values_beyond_int64_are_bar_errors_on_both_sides():
    messages = []
    for impl in IMPLS:
        live = Aggregator("5m", impl=impl)
        with pytest.raises(BarDataError) as big_t:
            live.push(2**70, 1.0, 1.0, 1.0, 1.0, 1)
        with pytest.raises(BarDataError) as big_v:
            live.push(0, 1.0, 1.0, 1.0, 1.0, 2**64)
        messages.append((str(big_t.value), str(big_v.value)))
    assert messages[0] == messages[1]
    assert messages[0][1] == "v: total volume overflows int64 at index 0"


def gateway_records(n: int = 10) -> list[dict]:
    """`retrieveBars` answers newest first: caller index 0 is the latest bar."""
    bars = base(n)
    rows = [{k: bars[k][i].item() for k in "tohlcv"} for i in range(n)]
    return rows[::-1]


def test_errors_on_records_name_the_callers_index_not_the_sorted_one(impl):
    rows = gateway_records(11)
    rows[5] = {**rows[4], "v": 3}  # the answer repeats the bar at 4: a duplicate at 4 and 5
    with pytest.raises(BarDataError) as caught:
        aggregate(rows, "5m", impl=impl)
    # The rows are sorted oldest first (stable), so the caller's later copy is the duplicate;
    # in the sorted copy it is row 6.
    assert str(caught.value) == "t: duplicate timestamp at index 5"
    rows = gateway_records()
    rows[7] = {**rows[7], "c": float("nan")}
    rows[2] = {**rows[2], "h": rows[2]["l"] - 1}
    with pytest.raises(BarDataError) as caught:
        aggregate(rows, ["5m", "1h"], impl=impl)
    assert str(caught.value) == "c: price is NaN at index 7"  # the oldest bad row, as given


def test_errors_on_pushed_records_name_count_plus_the_callers_index(impl):
    live = Aggregator("5m", impl=impl)
    live.push_many(gateway_records(10)[7:])  # the three oldest bars
    rows = gateway_records(10)[:7]
    rows[4] = {**rows[4], "o": float("inf")}
    with pytest.raises(BarDataError) as caught:
        live.push_many(rows)
    assert str(caught.value) == "o: price is infinite at index 7"  # 3 accepted + caller's 4
    rows = gateway_records(10)[:7]
    rows[6] = {**rows[6], "t": "not a time"}
    with pytest.raises(BarDataError, match=r"t: not an ISO-8601 .* at index 9"):
        live.push_many(rows)
    assert live.count == 3


@pytest.mark.parametrize("empty", [[], ()])
def test_an_empty_timeframe_list_is_invalid_input(impl, empty):
    with pytest.raises(InvalidInputError) as caught:
        aggregate(base(), empty, impl=impl)
    assert type(caught.value) is InvalidInputError
    assert caught.value.field == "timeframe"
    assert str(caught.value) == f"invalid timeframe={empty!r}: at least one timeframe is required"
    with pytest.raises(InvalidInputError, match="at least one timeframe is required"):
        Aggregator(empty, impl=impl)


@pytest.mark.parametrize(
    ("volume", "reason"),
    [
        (2**63, "total volume overflows int64"),
        (2**64, "total volume overflows int64"),
        (1e30, "total volume overflows int64"),
        (float(2**63), "total volume overflows int64"),
        (-1e30, "negative volume"),
        (-(2**63) - 1, "negative volume"),
    ],
)
def test_a_volume_beyond_int64_is_a_bar_error_in_every_input_form(impl, volume, reason):
    """Records, columns (a list, a float array) and pushes alike: the overflow named at the
    caller's row with the value given, never an OverflowError or a volume wrapped negative."""
    bars = base(4)
    records = [{k: bars[k][i].item() for k in "tohlcv"} for i in range(4)]
    records[2]["v"] = volume
    column = [int(v) for v in bars["v"]]
    column[2] = volume  # type: ignore[call-overload]
    floats = bars["v"].astype(np.float64)
    floats[2] = float(volume)
    forms = [records, {**bars, "v": column}]
    if isinstance(volume, float):
        forms.append({**bars, "v": floats})
    for form in forms:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no numpy cast warning on the way
            with pytest.raises(BarDataError) as refused:
                aggregate(form, "5m", impl=impl)
        assert (refused.value.field, refused.value.index, refused.value.reason) == ("v", 2, reason)
        assert refused.value.value == volume
    live = Aggregator("5m", impl=impl)
    with pytest.raises(BarDataError, match=reason):
        live.push(int(bars["t"][0]), 1.0, 1.0, 1.0, 1.0, volume)
    assert live.count == 0
