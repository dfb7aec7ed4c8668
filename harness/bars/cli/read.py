"""The readers of `harness bars`: a CSV (header naming t,o,h,l,c,v in any order, extra columns
ignored) by pyarrow's multi-threaded reader, or a Parquet file, into an `InputTable`. A bad
file raises `InputFileError` naming its line (CSV, 1-based, header = line 1, as an editor
counts) or row (Parquet, from 1)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from harness.bars import COLUMNS
from harness.bars.cli.columns import BadCell, number_column, time_column
from harness.bars.cli.table import InputFileError, InputTable

_BLOCK_BYTES = 16 * 1024 * 1024  # pyarrow's CSV block size (see _read_csv)
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)


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
            columns[key] = time_column(array) if key == "t" else number_column(array, key)
        except BadCell as bad:
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
            columns[key] = time_column(array) if key == "t" else number_column(array, key)
        except BadCell as bad:
            place, cell = where(bad.row, key)
            raise InputFileError(f"{path}: {place}: {key}={cell!r}: {bad}") from None
    return InputTable(path, columns, where)
