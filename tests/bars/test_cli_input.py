"""`harness bars` reads files as they come from the field: Excel's byte-order mark, blank lines,
epoch numbers in any unit, ISO text with mixed zones; and every bad file is one line on stderr
naming the file's line (header = line 1), exit status 2, never a traceback."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.bars import aggregate
from harness.bars.cli import add_arguments
from harness.cli import main

from .conftest import MINUTE, random_bars
from .test_cli import read_output

T0 = 1_763_510_400 * 10**9  # 2025-11-19T00:00:00Z


def minute_bars(n: int = 200) -> dict[str, np.ndarray]:
    return random_bars(T0 + np.arange(n, dtype=np.int64) * MINUTE, seed=9)


def iso(ns: int) -> str:
    return np.datetime_as_string(np.datetime64(ns, "ns"), unit="s") + "Z"


def csv_lines(bars: dict[str, np.ndarray], stamp=iso) -> list[str]:
    rows = ["t,o,h,l,c,v"]
    for i in range(len(bars["t"])):
        cells = [stamp(int(bars["t"][i])), *(str(bars[k][i].item()) for k in "ohlcv")]
        rows.append(",".join(cells))
    return rows


def run_bars(tmp_path: Path, lines: list[str] | bytes, *extra: str, impl: str = "rust") -> int:
    path = tmp_path / "in.csv"
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("\n".join(lines) + "\n")
    argv = ["bars", "--input", str(path), "--timeframe", "5m,1h", "--output", str(tmp_path)]
    return main([*argv, "--impl", impl, *extra])


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def assert_outputs_equal(tmp_path: Path, bars: dict[str, np.ndarray]) -> None:
    for timeframe in ("5m", "1h"):
        got = read_output(tmp_path / f"{timeframe}.csv")
        want = aggregate(bars, timeframe, impl="python")
        for k in "tohlcv":
            assert np.array_equal(got[k], want[k]), (timeframe, k)


def test_a_csv_saved_by_excel_with_a_byte_order_mark_is_read(tmp_path, impl):
    bars = minute_bars()
    text = "\r\n".join(csv_lines(bars)) + "\r\n"
    assert run_bars(tmp_path, b"\xef\xbb\xbf" + text.encode(), impl=impl) == 0
    assert_outputs_equal(tmp_path, bars)


def test_blank_lines_are_skipped_and_later_errors_still_name_the_right_line(tmp_path, capsys, impl):
    bars = minute_bars()
    lines = csv_lines(bars)
    lines[10:10] = ["", ""]  # two blank lines after line 10
    assert run_bars(tmp_path, lines, impl=impl) == 0
    assert_outputs_equal(tmp_path, bars)
    lines[40] = lines[39]  # line 41 of the file repeats line 40
    assert run_bars(tmp_path, lines, impl=impl) == 2
    stamp = lines[40].split(",")[0]
    assert error_line(capsys).endswith(f"in.csv: line 41: t='{stamp}': duplicate timestamp")


def set_cell(lines: list[str], line: int, column: str, text: str) -> None:
    """Replace one cell; `line` counts as an editor does (header = 1)."""
    fields = lines[line - 1].split(",")
    fields["tohlcv".index(column)] = text
    lines[line - 1] = ",".join(fields)


def set_line(lines: list[str], line: int, text: str) -> None:
    lines[line - 1] = text


BAD_ROWS = [
    (
        "too few fields",
        lambda lines: set_line(lines, 7, "2025-11-19T00:50:00Z,1,2,3"),
        "in.csv: line 7: 4 field(s) where the header has 6: '2025-11-19T00:50:00Z,1,2,3'",
    ),
    (
        "too many fields",
        lambda lines: set_line(lines, 9, lines[8] + ",9"),
        "in.csv: line 9: 7 field(s) where the header has 6",
    ),
    (
        "text price",
        lambda lines: set_cell(lines, 13, "o", "abc"),
        "in.csv: line 13: o='abc': not a number",
    ),
    (
        "text volume",
        lambda lines: set_cell(lines, 21, "v", "12x"),
        "in.csv: line 21: v='12x': not a whole number",
    ),
    ("empty cell", lambda lines: set_cell(lines, 31, "l", ""), "in.csv: line 31: l='': empty"),
    (
        "bad time",
        lambda lines: set_cell(lines, 4, "t", "yesterday"),
        "in.csv: line 4: t='yesterday': not an ISO-8601 timestamp or epoch number",
    ),
    ("NaN price", lambda lines: set_cell(lines, 16, "c", "nan"), "line 16: c='nan': price is NaN"),
    (
        "missing column",
        lambda lines: set_line(lines, 1, "time,o,h,l,c,v"),
        "in.csv: line 1: missing column(s) t in the header 'time,o,h,l,c,v' (expected t,o,h,l,c,v)",
    ),
]


@pytest.mark.parametrize(("name", "corrupt", "message"), BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_bad_rows_name_the_files_line_and_exit_2(tmp_path, capsys, impl, name, corrupt, message):
    lines = csv_lines(minute_bars())
    corrupt(lines)
    assert run_bars(tmp_path, lines, impl=impl) == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "5m.csv").exists()


def test_an_empty_file_and_a_header_only_file(tmp_path, capsys, impl):
    assert run_bars(tmp_path, b"", impl=impl) == 2
    assert "in.csv: line 1: the file is empty; expected a header naming t,o,h,l,c,v" in (
        error_line(capsys)
    )
    assert run_bars(tmp_path, ["t,o,h,l,c,v"], impl=impl) == 0
    assert read_output(tmp_path / "5m.csv")["t"].size == 0


def test_a_directory_as_input_and_a_file_as_output_have_their_own_messages(tmp_path, capsys):
    argv = ["bars", "--timeframe", "5m"]
    assert main([*argv, "--input", str(tmp_path)]) == 2
    assert f"--input {tmp_path} is a directory; give a CSV or Parquet file" in error_line(capsys)
    path = tmp_path / "in.csv"
    path.write_text("\n".join(csv_lines(minute_bars())) + "\n")
    assert main([*argv, "--input", str(path), "--output", str(path)]) == 2
    assert f"--output {path} is an existing file; give a directory" in error_line(capsys)
    assert main([*argv, "--input", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv: no such file" in error_line(capsys)


@pytest.mark.parametrize("timeframe", ["", ",", " , "])
def test_an_empty_timeframe_list_is_an_error(tmp_path, capsys, impl, timeframe):
    lines = csv_lines(minute_bars())
    path = tmp_path / "in.csv"
    path.write_text("\n".join(lines) + "\n")
    argv = ["bars", "--input", str(path), "--timeframe", timeframe, "--output", str(tmp_path)]
    assert main([*argv, "--impl", impl]) == 2
    assert f"invalid timeframe={timeframe!r}: at least one timeframe is required" in (
        error_line(capsys)
    )
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_epoch_numbers_in_any_unit_follow_the_size_rule_or_unit(tmp_path, impl, unit):
    bars = minute_bars()
    scale = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    lines = csv_lines(bars, stamp=lambda ns: str(ns // scale))
    assert run_bars(tmp_path, lines, impl=impl) == 0
    assert_outputs_equal(tmp_path, bars)
    assert run_bars(tmp_path, lines, "--unit", unit, impl=impl) == 0
    assert_outputs_equal(tmp_path, bars)


def test_pandas_written_microseconds_and_mixed_units_in_a_csv(tmp_path, capsys, impl):
    bars = minute_bars()
    frame = pd.DataFrame({"t": pd.to_datetime(bars["t"], utc=True).as_unit("us")})
    frame = frame.assign(t=frame.t.astype("int64"), **{k: bars[k] for k in "ohlcv"})
    frame.to_csv(tmp_path / "in.csv", index=False)
    argv = ["bars", "--input", str(tmp_path / "in.csv"), "--timeframe", "5m,1h"]
    assert main([*argv, "--output", str(tmp_path), "--impl", impl]) == 0
    assert_outputs_equal(tmp_path, bars)
    lines = csv_lines(bars, stamp=lambda ns: str(ns // 10**9))
    lines[50] = str(int(bars["t"][49]) // 10**6) + "," + lines[50].split(",", 1)[1]
    assert run_bars(tmp_path, lines, impl=impl) == 2
    assert "in.csv: line 51: t=" in (err := error_line(capsys))
    assert "its size says ms, the column's says s" in err


ISO_FORMS = {
    "Z": lambda ns: iso(ns),
    "naive": lambda ns: iso(ns)[:-1],  # naive = UTC
    "offset": lambda ns: pd.Timestamp(ns, tz="UTC").tz_convert("America/Chicago").isoformat(),
    "fraction": lambda ns: iso(ns)[:-1] + ".000000000+00:00",
}


@pytest.mark.parametrize(
    "forms", [["Z"], ["naive"], ["offset"], ["fraction"], ["naive", "Z", "offset"]]
)
def test_iso_text_in_each_form_and_mixed(tmp_path, impl, forms):
    bars = minute_bars()
    lines = csv_lines(bars)
    for i in range(1, len(lines)):
        stamp = ISO_FORMS[forms[i % len(forms)]](int(bars["t"][i - 1]))
        lines[i] = stamp + "," + lines[i].split(",", 1)[1]
    assert run_bars(tmp_path, lines, impl=impl) == 0
    assert_outputs_equal(tmp_path, bars)


def test_parquet_with_a_zoned_timestamp_column(tmp_path, impl):
    bars = minute_bars()
    t = pa.array(bars["t"] // 1000).cast(pa.timestamp("us", tz="America/Chicago"))
    pq.write_table(
        pa.table({"t": t, **{k: pa.array(bars[k]) for k in "ohlcv"}}), tmp_path / "in.parquet"
    )
    argv = ["bars", "--input", str(tmp_path / "in.parquet"), "--timeframe", "1h", "--format", "csv"]
    assert main([*argv, "--output", str(tmp_path), "--impl", impl]) == 0
    got = read_output(tmp_path / "1h.csv")
    want = aggregate(bars, "1h", impl="python")
    for k in "tohlcv":
        assert np.array_equal(got[k], want[k]), k


def test_every_option_of_harness_bars_has_help_text():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    undocumented = [a.option_strings for a in parser._actions if not a.help]
    assert undocumented == []


def test_whole_volumes_written_as_floats_are_read_and_fractions_named(tmp_path, capsys, impl):
    bars = minute_bars()
    lines = csv_lines(bars)
    for line in range(2, len(lines) + 1):
        set_cell(lines, line, "v", lines[line - 1].rsplit(",", 1)[1] + ".0")  # "385.0"
    assert run_bars(tmp_path, lines, impl=impl) == 0
    assert_outputs_equal(tmp_path, bars)
    set_cell(lines, 17, "v", "3.5")
    assert run_bars(tmp_path, lines, impl=impl) == 2
    assert "in.csv: line 17: v='3.5': volume is not an integer" in error_line(capsys)


@pytest.mark.parametrize(("timeframe", "item"), [("5m,,1h", 2), ("5m,", 2), (",5m", 1)])
def test_an_empty_item_in_the_timeframes_is_an_error_naming_the_option(
    tmp_path, capsys, impl, timeframe, item
):
    path = tmp_path / "in.csv"
    path.write_text("\n".join(csv_lines(minute_bars())) + "\n")
    argv = ["bars", "--input", str(path), "--timeframe", timeframe, "--output", str(tmp_path)]
    assert main([*argv, "--impl", impl]) == 2
    assert error_line(capsys) == (
        f"harness bars: error: --timeframe {timeframe!r}: item {item} is empty; give timeframes "
        "separated by single commas, e.g. 5m,15m,1h"
    )
    assert list(tmp_path.iterdir()) == [path]


# ----- a volume beyond int64 is an overflow, named, never a wrapped "negative volume" ----------

OVERFLOW = "total volume overflows int64"
BEYOND_INT64 = [
    ("9223372036854775808", OVERFLOW),  # 2**63: one past the largest int64
    ("18446744073709551616", OVERFLOW),  # 2**64: beyond uint64 too
    ("1e30", OVERFLOW),
    ("9.3e18", OVERFLOW),
    ("-1e30", "negative volume"),
]


@pytest.mark.parametrize(("cell", "reason"), BEYOND_INT64)
def test_a_csv_volume_beyond_int64_is_named_with_its_line_and_value(
    tmp_path, capsys, impl, cell, reason
):
    lines = csv_lines(minute_bars())
    set_cell(lines, 17, "v", cell)
    assert run_bars(tmp_path, lines, impl=impl) == 2
    assert error_line(capsys).endswith(f"in.csv: line 17: v={cell!r}: {reason}")  # no warning
    assert not (tmp_path / "5m.csv").exists()


@pytest.mark.parametrize(
    ("volumes", "shown"),
    [
        (pa.array([1] * 15 + [2**64 - 1] + [1] * 184, pa.uint64()), "18446744073709551615"),
        (pa.array([1.0] * 15 + [1e30] + [1.0] * 184, pa.float64()), "1e+30"),
    ],
)
def test_a_parquet_volume_beyond_int64_is_named_with_its_row_and_value(
    tmp_path, capsys, impl, volumes, shown
):
    bars = minute_bars()
    t = pa.array(bars["t"]).cast(pa.timestamp("ns", tz="UTC"))
    table = pa.table({"t": t, **{k: pa.array(bars[k]) for k in "ohlc"}, "v": volumes})
    pq.write_table(table, tmp_path / "in.parquet")
    argv = ["bars", "--input", str(tmp_path / "in.parquet"), "--timeframe", "5m"]
    assert main([*argv, "--output", str(tmp_path), "--impl", impl]) == 2
    assert error_line(capsys).endswith(f"in.parquet: row 16: v={shown}: {OVERFLOW}")
    assert not (tmp_path / "5m.parquet").exists()
