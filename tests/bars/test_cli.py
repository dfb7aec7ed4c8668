"""`harness bars` end to end: a CSV of 1-minute bars in, one CSV per timeframe out."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from harness.bars import aggregate, parse_time
from harness.cli import main

from .conftest import MINUTE, random_bars

T0 = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z


def write_input(path: Path, epoch_unit: str | None) -> dict[str, np.ndarray]:
    t = T0 + np.cumsum(np.r_[0, np.where(np.arange(1, 700) % 97 == 0, 61, 1)]) * MINUTE
    bars = random_bars(t.astype(np.int64), seed=5)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t", "o", "h", "l", "c", "v"])
        for i in range(len(t)):
            ns = int(bars["t"][i])
            stamp = {
                None: np.datetime_as_string(np.datetime64(ns, "ns"), unit="s") + "Z",
                "s": str(ns // 10**9),
                "ms": str(ns // 10**6),
            }[epoch_unit]
            writer.writerow([stamp, *(bars[k][i].item() for k in "ohlcv")])
    return bars


def read_output(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(row["t"].endswith("Z") for row in rows)
    return {
        "t": np.array([parse_time(row["t"]) for row in rows], dtype=np.int64),
        **{k: np.array([float(row[k]) for row in rows]) for k in "ohlc"},
        "v": np.array([int(row["v"]) for row in rows], dtype=np.int64),
    }


@pytest.mark.parametrize("epoch_unit", [None, "s", "ms"])
@pytest.mark.parametrize("impl", ["rust", "python"])
def test_csv_in_one_csv_per_timeframe_out(tmp_path, capsys, epoch_unit, impl):
    bars = write_input(tmp_path / "in.csv", epoch_unit)
    out_dir = tmp_path / "out"
    argv = ["bars", "--input", str(tmp_path / "in.csv"), "--timeframe", "5m,15m,1h"]
    status = main([*argv, "--impl", impl, "--output", str(out_dir), "--progress"])
    assert status == 0
    printed = capsys.readouterr()
    assert "5m: " in printed.out and "done in" in printed.err
    for timeframe in ("5m", "15m", "1h"):
        assert (out_dir / f"{timeframe}.csv").read_text().startswith("t,o,h,l,c,v\n")
        got = read_output(out_dir / f"{timeframe}.csv")
        want = aggregate(bars, timeframe, impl="python")
        for k in "tohlcv":
            assert np.array_equal(got[k], want[k]), (timeframe, k)


def test_offset_option_and_daily_bars(tmp_path):
    bars = write_input(tmp_path / "in.csv", None)
    argv = ["bars", "--input", str(tmp_path / "in.csv"), "--timeframe", "1d"]
    status = main([*argv, "--offset=-7h", "--output", str(tmp_path)])  # "=": -7h is no option
    assert status == 0
    got = read_output(tmp_path / "1d.csv")
    assert np.array_equal(got["t"], aggregate(bars, "1d", offset="-7h").t)


def test_bad_input_is_a_clear_error_and_exit_status_2(tmp_path, capsys):
    path = tmp_path / "in.csv"
    write_input(path, "s")
    lines = path.read_text().splitlines()
    lines[5] = lines[4]  # line 6 repeats line 5
    path.write_text("\n".join(lines) + "\n")
    assert main(["bars", "--input", str(path), "--timeframe", "5m", "--output", str(tmp_path)]) == 2
    assert f"{path}: line 6: t='{lines[5].split(',')[0]}': duplicate timestamp" in (
        capsys.readouterr().err
    )
    assert main(["bars", "--input", str(path), "--timeframe", "5q"]) == 2
    assert "unknown timeframe" in capsys.readouterr().err
    assert main(["bars", "--input", str(tmp_path / "nope.csv"), "--timeframe", "5m"]) == 2


def test_parquet_in_and_out_round_trips(tmp_path):
    import pyarrow as pa  # in the test extra: the Parquet path is tested, not assumed
    import pyarrow.parquet as pq

    bars = write_input(tmp_path / "in.csv", None)
    argv = ["bars", "--input", str(tmp_path / "in.csv"), "--timeframe", "5m,1h"]
    assert main([*argv, "--format", "parquet", "--output", str(tmp_path / "pq")]) == 0
    for timeframe in ("5m", "1h"):
        table = pq.read_table(tmp_path / "pq" / f"{timeframe}.parquet")
        assert table.column_names == ["t", "o", "h", "l", "c", "v"]
        assert table.schema.field("t").type == pa.timestamp("ns", tz="UTC")
        want = aggregate(bars, timeframe, impl="python")
        assert np.array_equal(table.column("t").cast(pa.int64()).to_numpy(), want.t)
        for k in "ohlcv":
            assert np.array_equal(table.column(k).to_numpy(), want[k]), (timeframe, k)

    t = pa.array(bars["t"]).cast(pa.timestamp("ns", tz="UTC"))
    minute_table = pa.table({"t": t, **{k: pa.array(bars[k]) for k in "ohlcv"}})
    pq.write_table(minute_table, tmp_path / "in.parquet")
    argv = ["bars", "--input", str(tmp_path / "in.parquet"), "--timeframe", "15m"]
    assert main([*argv, "--format", "csv", "--output", str(tmp_path / "csv")]) == 0
    got = read_output(tmp_path / "csv" / "15m.csv")
    want = aggregate(bars, "15m", impl="python")
    for k in "tohlcv":
        assert np.array_equal(got[k], want[k]), k
