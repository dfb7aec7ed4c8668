"""`harness bars`: aggregate a file of 1-minute bars into one file per higher timeframe.

CSV in (columns t,o,h,l,c,v; t as ISO-8601 or epoch s/ms/us/ns), one CSV per timeframe out
(`DIR/5m.csv`, same columns, t as ISO-8601 UTC). Parquet in and out when pyarrow is installed.
A progress line goes to stderr on large files (or with --progress).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np

from harness.bars import COLUMNS, Bars, aggregate, parse_time
from harness.errors import HarnessError

# Files at least this large show progress by default (when stderr is a terminal).
PROGRESS_BYTES = 8 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `harness bars`."""
    parser.add_argument("--input", required=True, type=Path, help="CSV or Parquet of 1m bars")
    parser.add_argument(
        "--timeframe", required=True, help="comma-separated timeframes, e.g. 5m,15m,1h,1d"
    )
    parser.add_argument(
        "--impl",
        choices=("rust", "python"),
        default="rust",
        help="implementation that aggregates: the Rust core or the pure-Python reference "
        "(default rust; both give the same bars)",
    )
    parser.add_argument("--offset", default=None, help="bucket offset: --offset 17h, --offset=-7h")
    parser.add_argument("--output", type=Path, default=Path("."), help="directory (default .)")
    parser.add_argument(
        "--format", choices=("csv", "parquet"), default=None, help="default: that of the input"
    )
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show a progress line on stderr (default: only for inputs of 8 MiB or "
        "more, when stderr is a terminal)",
    )
    progress.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show progress"
    )


def run(args: argparse.Namespace) -> int:
    """Read, aggregate in one pass, write one file per timeframe; 0 on success, 2 on bad input."""
    timeframes = [tf.strip() for tf in str(args.timeframe).split(",") if tf.strip()]
    source: Path = args.input
    out_format = args.format or ("parquet" if source.suffix == ".parquet" else "csv")
    try:
        if not source.is_file():
            raise FileNotFoundError(f"no such file: {source}")
        show = args.progress
        if show is None:
            show = sys.stderr.isatty() and source.stat().st_size >= PROGRESS_BYTES
        progress = Progress(sys.stderr if show else None)
        columns = (
            read_parquet(source) if source.suffix == ".parquet" else read_csv(source, progress)
        )
        progress.stage(f"aggregating {len(columns['t']):,} bars")
        results = aggregate(columns, timeframes, impl=args.impl, offset=args.offset)
        args.output.mkdir(parents=True, exist_ok=True)
        for timeframe, bars in results.items():
            target = args.output / f"{timeframe}.{out_format}"
            progress.stage(f"writing {target}")
            if out_format == "parquet":
                write_parquet(bars, target)
            else:
                write_csv(bars, target)
            print(f"{timeframe}: {len(bars):,} bars -> {target}")
        progress.done()
    except (HarnessError, OSError, RuntimeError) as error:
        print(f"harness bars: error: {error}", file=sys.stderr)
        return 2
    return 0


class Progress:
    """A one-line text progress display on stderr (silent when `stream` is None)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.started = time.perf_counter()
        self._last = 0.0

    def update(self, text: str, fraction: float) -> None:
        """Redraw the line at most ten times a second."""
        now = time.perf_counter()
        if self.stream is None or now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * min(max(fraction, 0.0), 1.0))
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r[{bar}] {fraction:4.0%} {text}   ")
        self.stream.flush()

    def stage(self, text: str) -> None:
        """Show a stage that has no percentage."""
        if self.stream is not None:
            self.stream.write(f"\r{text:<70}")
            self.stream.flush()

    def done(self) -> None:
        """End the progress line."""
        if self.stream is not None:
            elapsed = time.perf_counter() - self.started
            self.stream.write(f"\r{'done in ' + format(elapsed, '.2f') + ' s':<70}\n")
            self.stream.flush()


def read_csv(path: Path, progress: Progress) -> dict[str, np.ndarray]:
    """Columns of a CSV with a header naming t,o,h,l,c,v (any order, extra columns ignored)."""
    size = max(path.stat().st_size, 1)
    read = [0]

    def counted(handle: TextIO) -> Iterator[str]:
        for line in handle:
            read[0] += len(line)
            yield line

    # utf-8-sig: a byte-order mark (as spreadsheets write) is not part of the first name.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(counted(handle))
        header = [name.strip().lower() for name in next(reader, [])]
        missing = [k for k in COLUMNS if k not in header]
        if missing:
            raise RuntimeError(f"{path}: missing column(s) {', '.join(missing)} in the header")
        at = [header.index(k) for k in COLUMNS]
        width = max(at) + 1
        cells: list[list[str]] = [[] for _ in COLUMNS]
        for n, row in enumerate(reader):
            if not row:
                continue  # a blank line
            if len(row) < width:
                line = reader.line_num
                raise RuntimeError(
                    f"{path}: line {line}: {len(row)} cells, the header names {width}"
                )
            for column, i in zip(cells, at, strict=True):
                column.append(row[i])
            if n % 65536 == 0:
                progress.update(f"reading {path.name} ({n:,} rows)", read[0] / size)
    numbers = {k: _numbers(path, k, v) for k, v in zip("ohlcv", cells[1:], strict=True)}
    return {"t": _times(cells[0]), **numbers}


def _numbers(path: Path, field: str, cells: list[str]) -> np.ndarray:
    """A numeric column parsed by numpy (volumes as int64 when they are integers)."""
    try:
        if field == "v":
            try:
                return np.array(cells, dtype=np.int64)
            except ValueError:
                pass  # e.g. "12.0": parsed as float, then checked to be whole
        return np.array(cells, dtype=np.float64)
    except ValueError as error:
        raise RuntimeError(f"{path}: column {field}: {error}") from None


def _times(cells: list[str]) -> np.ndarray:
    """Timestamps in ns: integers (epoch, unit by size) vectorized, anything else one by one."""
    try:
        raw = np.array(cells, dtype=np.int64)
    except ValueError:
        return np.array([parse_time(x, "t", i) for i, x in enumerate(cells)], dtype=np.int64)
    size = np.abs(raw)
    scale = np.where(
        size < 10**11, 10**9, np.where(size < 10**14, 10**6, np.where(size < 10**17, 1000, 1))
    )
    return raw * scale


def write_csv(bars: Bars, path: Path) -> None:
    """Write bars as CSV with t in ISO-8601 UTC (seconds unless sub-second labels occur)."""
    stamps = bars.t.view("datetime64[ns]")
    unit: Literal["s", "ns"] = "s" if not np.any(bars.t % 1_000_000_000) else "ns"
    iso = [s + "Z" for s in np.datetime_as_string(stamps, unit=unit).tolist()]
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        columns = [bars[k].tolist() for k in "ohlcv"]
        writer.writerows(zip(iso, *columns, strict=True))
    os.replace(tmp, path)


def _pyarrow() -> Any:
    try:
        import pyarrow as pa  # optional dependency, imported on demand
        import pyarrow.parquet as pq
    except ImportError:
        raise RuntimeError("Parquet needs pyarrow: pip install pyarrow") from None
    return pa, pq


def read_parquet(path: Path) -> dict[str, np.ndarray]:
    """Columns t,o,h,l,c,v of a Parquet file (t as timestamp, epoch number or ISO text)."""
    _, pq = _pyarrow()
    table = pq.read_table(path, columns=list(COLUMNS))
    columns = {k: table.column(k).to_numpy() for k in COLUMNS}
    if columns["t"].dtype.kind == "M":
        columns["t"] = columns["t"].astype("datetime64[ns]").view(np.int64)
    elif columns["t"].dtype.kind in "iu":
        columns["t"] = _times([str(x) for x in columns["t"].tolist()])
    return columns


def write_parquet(bars: Bars, path: Path) -> None:
    """Write bars as Parquet with t as timestamp[ns, UTC]."""
    pa, pq = _pyarrow()
    table = pa.table(
        {
            "t": pa.array(bars.t, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            **{k: pa.array(bars[k]) for k in "ohlcv"},
        }
    )
    pq.write_table(table, path)
