"""What a reader hands to the command: `InputTable` (the six columns and where each row came
from) and `InputFileError` (the one line printed for a bad input file or option)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import BarDataError


class InputFileError(Exception):
    """Bad input file or options: the one line `run` prints before exiting with status 2."""


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
