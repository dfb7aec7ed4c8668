"""The options of `harness bars` and their checks before any file is read: the timeframes, the
input file, the output directory (each refused in one line naming the option and the value)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.bars import R_NO_TIMEFRAME, parse_timeframe
from harness.bars.cli.table import InputFileError
from harness.bars.timestamps import UNITS
from harness.errors import InvalidInputError


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


def parse_timeframes(text: str) -> list[str]:
    """The comma-separated timeframes of `--timeframe`, each checked, at least one, none empty.

    Raises `InvalidInputError` for none or one the bars module cannot parse, `InputFileError`
    for an empty item ("5m,,1h")."""
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


def check_input_file(path: Path) -> Path:
    """`--input` as given; `InputFileError` if it is a directory or does not exist."""
    if path.is_dir():
        raise InputFileError(f"--input {path} is a directory; give a CSV or Parquet file")
    if not path.exists():
        raise InputFileError(f"--input {path}: no such file")
    return path


def check_output_dir(path: Path) -> Path:
    """`--output` as given (created later, when the outputs are written); `InputFileError` if
    it is an existing file."""
    if path.exists() and not path.is_dir():
        raise InputFileError(
            f"--output {path} is an existing file; give a directory (the outputs are "
            "DIR/5m.csv, DIR/1h.csv, ...)"
        )
    return path
