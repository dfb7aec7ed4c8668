"""`run`: the command itself. The options checked, the file read, one call of
`harness.bars.aggregate` for every timeframe, the outputs written; the exit status says how it
went (0, 2 on bad input, 143 stopped by SIGTERM)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

import pyarrow as pa

from harness.bars import aggregate, parse_offset
from harness.bars.cli.args import check_input_file, check_output_dir, parse_timeframes
from harness.bars.cli.progress import Progress
from harness.bars.cli.read import read_csv, read_parquet
from harness.bars.cli.table import InputFileError
from harness.bars.cli.write import write_all
from harness.errors import BarDataError, HarnessError

# Files at least this large show progress by default (when stderr is a terminal).
PROGRESS_BYTES = 8 * 1024 * 1024
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, as a shell reports a process ended by SIGTERM


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
        timeframes = parse_timeframes(args.timeframe)
        parse_offset(args.offset)  # refused before a large file is read
        source = check_input_file(args.input)
        out_dir = check_output_dir(args.output)
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
