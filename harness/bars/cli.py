"""`harness bars`: aggregate a file of 1-minute bars into one file per higher timeframe.

CSV in (header naming t,o,h,l,c,v in any order, extra columns ignored; t as ISO-8601 or epoch
numbers read by the rules of `harness.bars.timestamps`), one CSV per timeframe out
(`DIR/5m.csv`, same columns, t as ISO-8601 UTC); Parquet in and out. Files are read by
pyarrow's multi-threaded CSV and Parquet readers. Bad input is one line on stderr naming the
file and its line (1-based, header = line 1, as an editor counts) and exit status 2; the
outputs are written all or nothing, also when the command is stopped: SIGINT exits 130 and
SIGTERM 143, each with one line on stderr and no new file or temporary left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from harness.bars import COLUMNS, R_NO_TIMEFRAME, Bars, aggregate, parse_offset, parse_timeframe
from harness.bars.python import INT64_MAX, R_VOLUME_OVERFLOW
from harness.bars.timestamps import UNITS
from harness.errors import BarDataError, HarnessError, InvalidInputError

# Files at least this large show progress by default (when stderr is a terminal).
PROGRESS_BYTES = 8 * 1024 * 1024
_END = 2**31 - 1  # a string position past any end
_BLOCK_BYTES = 16 * 1024 * 1024  # pyarrow's CSV block size (see _read_csv)
_I64 = np.dtype(np.int64)
_F64 = np.dtype(np.float64)
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)


EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, as a shell reports a process ended by SIGTERM


class InputFileError(Exception):
    """Bad input file or options: the one line `run` prints before exiting with status 2."""


class Terminated(BaseException):
    """SIGTERM arrived: raised where the command stands, like KeyboardInterrupt for SIGINT, so
    that the same clean-up runs (`write_all` removes its temporaries)."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises `Terminated` in the main thread while the block runs (the default action
    would end the process at once, leaving the temporaries of an unfinished write); a second
    SIGTERM is ignored so that it cannot cut the clean-up short. The previous handler is put
    back afterwards. Outside the main thread (no signal handlers there) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    parser.add_argument(
        "--unit",
        choices=UNITS,
        default=None,
        help="unit of epoch-number timestamps (default: told apart by size, see docs/bars.md)",
    )
    parser.add_argument(
        "--output", type=Path, default=Path("."), help="directory for the outputs (default .)"
    )
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
    """Read, aggregate in one pass, write one file per timeframe; 0 on success, 2 on bad input,
    143 stopped by SIGTERM (SIGINT: KeyboardInterrupt, 130 from `harness.cli`)."""
    try:
        with _sigterm_raises():
            return _run(args)
    except Terminated:
        print("harness bars: error: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED


def _run(args: argparse.Namespace) -> int:
    progress = Progress(None)
    try:
        timeframes = _timeframes(args.timeframe)
        parse_offset(args.offset)  # refused before a large file is read
        source = _input_file(args.input)
        out_dir = _output_dir(args.output)
        out_format = args.format or ("parquet" if source.suffix == ".parquet" else "csv")
        show = args.progress
        if show is None:
            show = sys.stderr.isatty() and source.stat().st_size >= PROGRESS_BYTES
        progress = Progress(sys.stderr if show else None)
        progress.stage(f"reading {source.name}")
        table = read_parquet(source) if source.suffix == ".parquet" else read_csv(source)
        progress.stage(f"aggregating {len(table.columns['t']):,} bars")
        try:
            results = aggregate(
                table.columns, timeframes, impl=args.impl, offset=args.offset, unit=args.unit
            )
        except BarDataError as error:
            raise InputFileError(table.locate(error)) from None
        written = write_all(results, out_dir, out_format, progress)
        progress.done()
    except (InputFileError, HarnessError, OSError) as error:
        progress.end_line()
        print(f"harness bars: error: {error}", file=sys.stderr)
        return 2
    except pa.ArrowException as error:  # a file pyarrow cannot read, beyond the cases above
        progress.end_line()
        print(f"harness bars: error: {args.input}: {error}", file=sys.stderr)
        return 2
    for timeframe, count, target in written:
        print(f"{timeframe}: {count:,} bars -> {target}")
    return 0


def _timeframes(text: str) -> list[str]:
    """The comma-separated timeframes, each checked, at least one, none empty."""
    items = [tf.strip() for tf in str(text).split(",")]
    timeframes = [tf for tf in items if tf]
    if not timeframes:
        raise InvalidInputError("timeframe", text, R_NO_TIMEFRAME)
    if len(timeframes) < len(items):  # "5m,,1h" or "5m,": a typo, not a shorthand
        empty = items.index("") + 1
        raise InputFileError(
            f"--timeframe {text!r}: item {empty} is empty; give timeframes separated by single "
            "commas, e.g. 5m,15m,1h"
        )
    for timeframe in timeframes:
        parse_timeframe(timeframe)
    return timeframes


def _input_file(path: Path) -> Path:
    if path.is_dir():
        raise InputFileError(f"--input {path} is a directory; give a CSV or Parquet file")
    if not path.exists():
        raise InputFileError(f"--input {path}: no such file")
    return path


def _output_dir(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise InputFileError(
            f"--output {path} is an existing file; give a directory (the outputs are "
            "DIR/5m.csv, DIR/1h.csv, ...)"
        )
    return path


class Progress:
    """A one-line text progress display on stderr (silent when `stream` is None)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.started = time.perf_counter()

    def stage(self, text: str) -> None:
        """Show the stage now running."""
        if self.stream is not None:
            elapsed = time.perf_counter() - self.started
            self.stream.write(f"\r{f'[{elapsed:6.2f} s] {text}':<70}")
            self.stream.flush()

    def end_line(self) -> None:
        """Leave the progress line as it is, so that a message can follow on its own line."""
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()

    def done(self) -> None:
        """End the progress line."""
        if self.stream is not None:
            elapsed = time.perf_counter() - self.started
            self.stream.write(f"\r{'done in ' + format(elapsed, '.2f') + ' s':<70}\n")
            self.stream.flush()


class InputTable:
    """The six columns read from a file, and where each row came from (for error messages)."""

    def __init__(
        self, path: Path, columns: dict[str, Any], where: Callable[[int, str], tuple[str, Any]]
    ) -> None:
        self.path = path
        self.columns = columns
        # (row index, column key) -> ("line 7", the cell's text) for a CSV, ("row 7", the
        # cell's value) for Parquet.
        self.where = where

    def locate(self, error: BarDataError) -> str:
        """The error of row `error.index` as `FILE: line N: field='cell': reason`."""
        if error.index < 0:
            return f"{self.path}: {error}"
        place, cell = self.where(error.index, error.field)
        shown = error.field if cell is None else f"{error.field}={cell!r}"
        return f"{self.path}: {place}: {shown}: {error.reason}"


# --- CSV ---------------------------------------------------------------------------------


def read_csv(path: Path) -> InputTable:
    """Columns t,o,h,l,c,v of a CSV whose header names them (any order, any case, extra
    columns ignored; a UTF-8 byte-order mark as Excel writes it is fine; blank lines are
    skipped). Raises `InputFileError` naming the line of the first bad row."""
    names, first_t = _csv_header(path)
    # Types are declared where the file shows them (reading is cheaper than inferring): prices
    # float64, volume int64, and t a timestamp when the first row's is ISO-8601 with a time.
    # Anything else (epoch numbers, dates) is inferred.
    declared: dict[str, pa.DataType] = {names[k]: pa.float64() for k in "ohlc"}
    declared[names["v"]] = pa.int64()
    iso = _ISO_TIME.fullmatch(first_t or "")
    if iso:
        declared[names["t"]] = pa.timestamp("ns", "UTC" if iso["zone"] else None)
    try:
        table = _read_csv(path, names, declared)
    except pa.ArrowInvalid:
        try:  # a cell the declared type refuses ("12.0" volumes are fine) or a bad row
            table = _read_csv(path, names, {})
        except pa.ArrowInvalid as error:
            raise InputFileError(_csv_parse_error(path, error)) from None
    lines = _LineMap(path, names)
    columns: dict[str, Any] = {}
    for key, name in names.items():
        array = table.column(name).combine_chunks()
        try:
            columns[key] = _time_column(array) if key == "t" else _number_column(array, key)
        except _BadCell as bad:
            place, cell = lines.where(bad.row, key)
            raise InputFileError(f"{path}: {place}: {key}={cell!r}: {bad}") from None
    return InputTable(path, columns, lines.where)


def _read_csv(path: Path, names: dict[str, str], types: dict[str, pa.DataType]) -> pa.Table:
    """pyarrow's multi-threaded reader over the named columns (an empty cell is null; "NaN"
    stays a NaN for the checks to name)."""
    options = pa_csv.ConvertOptions(
        include_columns=list(names.values()),
        column_types=types,
        null_values=[""],
        strings_can_be_null=False,
    )
    # 16 MiB blocks instead of 1 MiB: on 2M rows, a third of the CPU time and most of the
    # system time (fewer buffers allocated and faulted in), and still one block per thread.
    blocks = pa_csv.ReadOptions(block_size=_BLOCK_BYTES)
    return pa_csv.read_csv(path, read_options=blocks, convert_options=options)


def _csv_header(path: Path) -> tuple[dict[str, str], str | None]:
    """Column key (t, o, ...) -> the header's own spelling of it, from the file's first line;
    and the first data row's t cell (None if there is none)."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        rows = _rows(handle)
        header = next(rows, None)
        first = next(rows, None)
    if header is None:
        raise InputFileError(
            f"{path}: line 1: the file is empty; expected a header naming {','.join(COLUMNS)}"
        )
    line, fields = header
    names: dict[str, str] = {}
    for field in fields:
        key = field.strip().lower()
        if key in COLUMNS and key in names:
            raise InputFileError(f"{path}: line {line}: column {key} appears twice in the header")
        if key in COLUMNS:
            names[key] = field
    missing = [k for k in COLUMNS if k not in names]
    if missing:
        shown = ",".join(fields)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise InputFileError(
            f"{path}: line {line}: missing column(s) {', '.join(missing)} in the header "
            f"{shown!r} (expected {','.join(COLUMNS)})"
        )
    at = fields.index(names["t"])
    first_t = first[1][at].strip() if first and at < len(first[1]) else None
    return {k: names[k] for k in COLUMNS}, first_t


def _rows(handle: TextIO) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank CSV row, as pyarrow reads them (blank
    lines skipped, a quoted field may span lines)."""
    reader = csv.reader(handle)
    end = 0
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if fields:
                yield start, fields
    except csv.Error as error:
        raise InputFileError(f"{handle.name}: line {reader.line_num}: {error}") from None


def _csv_parse_error(path: Path, error: pa.ArrowInvalid) -> str:
    """pyarrow's parse error as `FILE: line N: ...`: the first row with a wrong field count."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        rows = _rows(handle)
        header = next(rows, None)
        width = len(header[1]) if header else 0
        for line, fields in rows:
            if len(fields) != width:
                return (
                    f"{path}: line {line}: {len(fields)} field(s) where the header has "
                    f"{width}: {','.join(fields)!r}"
                )
    return f"{path}: {error}"


class _LineMap:
    """Data row index -> line of the file and cell text, found by reading the file again (only
    when an error is reported, so the fast read keeps no line numbers)."""

    def __init__(self, path: Path, names: dict[str, str]) -> None:
        self.path = path
        self.names = names  # column key -> header spelling

    def where(self, index: int, key: str) -> tuple[str, Any]:
        """("line N", the cell's text) of data row `index` (0-based) in column `key`."""
        with self.path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
            rows = _rows(handle)
            _, header = next(rows)
            for i, (line, fields) in enumerate(rows):
                if i == index:
                    name = self.names.get(key)
                    at = header.index(name) if name in header else len(fields)
                    return f"line {line}", fields[at] if at < len(fields) else None
        return f"data row {index + 1}", None  # not reached for a row pyarrow read


class _BadCell(Exception):
    """A cell of data row `row` that cannot be read as its column's type."""

    def __init__(self, row: int, reason: str) -> None:
        self.row = row
        super().__init__(reason)


def _first_null(array: pa.Array[Any]) -> None:
    if array.null_count:
        raise _BadCell(int(np.argmax(array.is_null().to_numpy(zero_copy_only=False))), "empty")


def _first_failing_cast(array: pa.Array[Any], to: pa.DataType) -> int:
    """Index of the first element `cast(to)` refuses (the whole array is known to fail):
    halves are cast in turn, so the search costs about two casts of the array."""
    lo, hi = 0, len(array)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(array.slice(lo, mid - lo), to)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
        else:
            lo = mid
    return lo


def _to_numpy(array: pa.Array[Any], as_type: pa.DataType) -> np.ndarray:
    """A column without nulls as int64 or float64 numpy, sharing pyarrow's buffer (read-only).

    pyarrow's own `to_numpy` and `pa.array` import pandas when it is installed (a quarter to
    half a second of the command's time), so values cross through their buffers instead.
    """
    if array.type != as_type:
        array = pc.cast(array, as_type)
    dtype = _I64 if as_type == pa.int64() else _F64
    data = array.buffers()[1]
    assert data is not None  # a fixed-width column always has a data buffer
    values: np.ndarray = np.frombuffer(
        memoryview(data), dtype=dtype, count=len(array), offset=array.offset * 8
    )
    return values


def _to_arrow(values: np.ndarray) -> pa.Array[Any]:
    """An int64 or float64 numpy column as a pyarrow array over the same memory."""
    values = np.ascontiguousarray(values)
    kind = pa.int64() if values.dtype.kind == "i" else pa.float64()
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values.data)])


def _number_column(array: pa.Array[Any], key: str) -> np.ndarray:
    """A price (float64) or volume (int64, or float64 checked whole later) column."""
    if not len(array):
        return np.empty(0, dtype=np.int64 if key == "v" else np.float64)
    if pa.types.is_null(array.type):
        raise _BadCell(0, "empty")
    _first_null(array)
    if pa.types.is_unsigned_integer(array.type) and key == "v":
        beyond = pc.greater(array, pa.scalar(INT64_MAX, array.type))
        if pc.any(beyond).as_py():  # a uint64 volume beyond int64: the overflow, named
            raise _BadCell(int(pc.index(beyond, True).as_py()), R_VOLUME_OVERFLOW)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        whole = key == "v" and pa.types.is_integer(array.type)
        return _to_numpy(array, pa.int64() if whole else pa.float64())
    want = "a whole number" if key == "v" else "a number"
    raise _BadCell(_first_failing_cast(_text(array), pa.float64()), f"not {want}")


def _text(array: pa.Array[Any]) -> pa.Array[Any]:
    """The column as strings (bytes that are not UTF-8 decoded with replacement marks)."""
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        return pa.array(
            [None if b is None else b.decode("utf-8", "replace") for b in array.to_pylist()],
            pa.string(),
        )
    return pc.cast(array, pa.string())


def _time_column(array: pa.Array[Any]) -> np.ndarray:
    """Timestamps as numpy for `harness.bars.aggregate`: datetime64 (UTC) when pyarrow parsed
    ISO-8601 itself, epoch numbers as they are, other text as Python strings (parsed one by
    one by the facade, which names the bad index)."""
    if not len(array):
        return np.empty(0, dtype=np.int64)
    if pa.types.is_null(array.type):
        raise _BadCell(0, "empty")
    _first_null(array)
    if pa.types.is_date(array.type):
        array = pc.cast(array, pa.timestamp("s"))
    if pa.types.is_timestamp(array.type):
        # The UTC instants (tz-aware or naive), in the column's unit.
        return _to_numpy(array, pa.int64()).view(f"datetime64[{array.type.unit}]")
    if pa.types.is_integer(array.type):
        return _to_numpy(array, pa.int64())
    if pa.types.is_floating(array.type):
        return _to_numpy(array, pa.float64())
    text = _text(array)
    for target in (pa.timestamp("ns", "UTC"), pa.timestamp("ns")):
        with contextlib.suppress(pa.ArrowInvalid):
            # All with an offset, or all naive (= UTC): pyarrow parses them in C.
            return _to_numpy(pc.cast(text, target), pa.int64()).view("datetime64[ns]")
    return np.asarray(text.to_pylist(), dtype=object)  # mixed forms: one by one


# --- Parquet -----------------------------------------------------------------------------


def read_parquet(path: Path) -> InputTable:
    """Columns t,o,h,l,c,v of a Parquet file (t as timestamp of any unit or zone, epoch
    numbers or ISO text). Errors name the row, counted from 1."""
    try:
        schema = pq.read_schema(path)
    except pa.ArrowInvalid as error:
        raise InputFileError(f"{path}: not a Parquet file ({error})") from None
    missing = [k for k in COLUMNS if k not in schema.names]
    if missing:
        raise InputFileError(
            f"{path}: missing column(s) {', '.join(missing)} (it has {', '.join(schema.names)})"
        )
    table = pq.read_table(path, columns=list(COLUMNS))

    def where(index: int, key: str) -> tuple[str, Any]:
        """("row N", the cell's value) of data row `index` (0-based) in column `key`."""
        return f"row {index + 1}", table.column(key)[index].as_py()

    columns: dict[str, Any] = {}
    for key in COLUMNS:
        array = table.column(key).combine_chunks()
        try:
            columns[key] = _time_column(array) if key == "t" else _number_column(array, key)
        except _BadCell as bad:
            place, cell = where(bad.row, key)
            raise InputFileError(f"{path}: {place}: {key}={cell!r}: {bad}") from None
    return InputTable(path, columns, where)


# --- output ------------------------------------------------------------------------------


def write_csv(bars: Bars, path: Path) -> None:
    """Write bars as CSV with t in ISO-8601 UTC (seconds unless sub-second labels occur)."""
    table = pa.table({"t": _iso_utc(bars.t), **{k: _to_arrow(bars[k]) for k in "ohlcv"}})
    with path.open("wb") as handle:
        handle.write((",".join(COLUMNS) + "\n").encode())  # pyarrow would quote the names
        options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
        pa_csv.write_csv(table, handle, options)


def _iso_utc(t: np.ndarray) -> pa.Array[Any]:
    """int64 ns as ISO-8601 text ending in Z: "2025-11-19T00:05:00Z" (with ".123456789" only
    if some label has a fraction), formatted by pyarrow in C."""
    stamps: pa.Array[Any]
    if np.any(t % 1_000_000_000):
        stamps = _to_arrow(t).cast(pa.timestamp("ns"))
    else:
        stamps = _to_arrow(t // 1_000_000_000).cast(pa.timestamp("s"))
    text = pc.cast(stamps, pa.string())  # "2025-11-19 00:05:00"
    text = pc.utf8_replace_slice(text, start=10, stop=11, replacement="T")
    return pc.utf8_replace_slice(text, start=_END, stop=_END, replacement="Z")  # appended


def write_parquet(bars: Bars, path: Path) -> None:
    """Write bars as Parquet with t as timestamp[ns, UTC]."""
    table = pa.table(
        {
            "t": _to_arrow(bars.t).cast(pa.timestamp("ns", tz="UTC")),
            **{k: _to_arrow(bars[k]) for k in "ohlcv"},
        }
    )
    pq.write_table(table, path)


WRITERS: dict[str, Callable[[Bars, Path], None]] = {"csv": write_csv, "parquet": write_parquet}


def write_all(
    results: dict[str, Bars], out_dir: Path, out_format: str, progress: Progress
) -> list[tuple[str, int, Path]]:
    """Write every timeframe, all or nothing: each to a temporary file beside its target, then
    all renamed into place; on any failure the temporaries are removed and files that were
    there before are left as they were. Returns (timeframe, bars, path) per output."""
    targets = {tf: out_dir / f"{tf}.{out_format}" for tf in results}
    for target in targets.values():
        if target.is_dir():
            raise InputFileError(f"{target} is a directory; the output file cannot replace it")
    created = [d for d in (out_dir, *out_dir.parents) if not d.exists()]  # deepest first
    out_dir.mkdir(parents=True, exist_ok=True)
    temps: list[tuple[Path, Path]] = []
    try:
        for timeframe, bars in results.items():
            target = targets[timeframe]
            progress.stage(f"writing {target}")
            temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            temps.append((temp, target))
            WRITERS[out_format](bars, temp)
        replace_all(temps)
    except BaseException:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)
        for directory in created:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if still empty
        raise
    return [(tf, len(bars), targets[tf]) for tf, bars in results.items()]


def replace_all(moves: list[tuple[Path, Path]]) -> None:
    """Rename each (temporary, target) pair, all or none: a target that existed is kept as a
    hard link until every rename is done, and put back if a later rename fails."""
    done: list[tuple[Path, Path | None]] = []  # (target, link to its former content)
    try:
        for temp, target in moves:
            backup = None
            if target.exists():
                backup = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
                try:
                    os.link(target, backup)
                except OSError:  # a file system without hard links: keep a copy
                    backup.write_bytes(target.read_bytes())
            try:
                os.replace(temp, target)
            except BaseException:
                if backup is not None:
                    backup.unlink(missing_ok=True)
                raise
            done.append((target, backup))
    except BaseException:
        for target, backup in reversed(done):
            if backup is None:
                target.unlink(missing_ok=True)
            else:
                os.replace(backup, target)
        raise
    for _, backup in done:
        if backup is not None:
            backup.unlink(missing_ok=True)
