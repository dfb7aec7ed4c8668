"""`harness bars`: aggregate a file of 1-minute bars into one file per higher timeframe.

CSV in (header naming t,o,h,l,c,v in any order, extra columns ignored; t as ISO-8601 or epoch
numbers read by the rules of `harness.bars.timestamps`), one CSV per timeframe out
(`DIR/5m.csv`, same columns, t as ISO-8601 UTC); Parquet in and out. Files are read by
pyarrow's multi-threaded CSV and Parquet readers. Bad input is one line on stderr naming the
file and its line (1-based, header = line 1, as an editor counts) and exit status 2; the
outputs are written all or nothing, also when the command is stopped: SIGINT exits 130 and
SIGTERM 143, each with one line on stderr and no new file or temporary left behind.

The files, in the order the command runs them: `args.py` (the options and their checks),
`command.py` (`run`: read, aggregate, write, the exit status), `read.py` (the CSV and Parquet
readers) over `columns.py` (pyarrow columns to numpy and back) into `table.py` (`InputTable`,
`InputFileError`), `write.py` (the writers, all or nothing) and `progress.py` (the progress
line). `harness.cli` calls `add_arguments` and `run`.
"""

from harness.bars.cli.args import add_arguments
from harness.bars.cli.command import EXIT_TERMINATED, PROGRESS_BYTES, Terminated, run
from harness.bars.cli.progress import Progress
from harness.bars.cli.read import read_csv, read_parquet
from harness.bars.cli.table import InputFileError, InputTable
from harness.bars.cli.write import WRITERS, replace_all, write_all, write_csv, write_parquet

__all__ = [
    "EXIT_TERMINATED",
    "PROGRESS_BYTES",
    "WRITERS",
    "InputFileError",
    "InputTable",
    "Progress",
    "Terminated",
    "add_arguments",
    "read_csv",
    "read_parquet",
    "replace_all",
    "run",
    "write_all",
    "write_csv",
    "write_parquet",
]
