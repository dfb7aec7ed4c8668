"""How commands print: rich tables for people, JSON and CSV for scripts.

Tables go to stdout with `rich` (colour only on a terminal); `--json` prints one JSON document
(a list of objects, or an object) with stable keys; `--csv` one header line and a row per
object. Errors go to stderr as `harness COMMAND: error: ...`, never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO, cast

__all__ = [
    "PIPE_WIDTH",
    "WholeWrites",
    "error",
    "is_identifier",
    "print_csv",
    "print_json",
    "print_table",
    "printable",
    "table_cell",
    "unsafe_character",
]

PIPE_WIDTH = 240
"""Widest line a table is laid out to when stdout is not a terminal."""

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # C0 and C1 controls: ESC starts every terminal escape sequence
    "\u2028\u2029"  # line and paragraph separators: a line break to many viewers
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional overrides (reordering)
    "\ud800-\udfff]"  # lone surrogates: undecodable bytes of a command line
)
"""Characters a terminal (or a viewer) would act on instead of showing: what a person's text
may not hold (`harness.control.actions.person_text`) and what `printable` escapes."""


def unsafe_character(text: str) -> str | None:
    """The first character of `text` a screen would act on rather than show (a control
    character, a line separator, a bidirectional override), or None."""
    found = _UNSAFE.search(text)
    return None if found is None else found.group()


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every character `unsafe_character` finds written as an escape (`\\x1b`,
    `\\u202e`), so that text stored by an older version, or read from a broker, is shown and
    never replayed (a clear screen, a window title, a forged line)."""
    return _UNSAFE.sub(_escaped, text)


def error(command: str, message: object, stream: TextIO | None = None) -> None:
    """Print `harness COMMAND: error: MESSAGE` on stderr, one line: what the message quotes
    of the user's input (a path, a value) is shown `printable`, never acted on by the
    terminal."""
    print(f"harness {command}: error: {printable(str(message))}", file=stream or sys.stderr)


def print_json(data: Any, stream: TextIO | None = None) -> None:
    """One JSON document, indented, keys in the order given."""
    out = stream or sys.stdout
    out.write(json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")


def print_csv(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], stream: TextIO | None = None
) -> None:
    """A header line and one line per row (missing keys empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(row.get(k)) for k in columns})
    (stream or sys.stdout).write(buffer.getvalue())


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    return printable(value) if isinstance(value, str) else value


def is_identifier(column: str) -> bool:
    """Whether a column holds identifiers (`id`, `pid`, `order_id`, `account_id`, ...): numbers
    a person copies or searches for, shown as plain digits, never `7,000,000,046`."""
    return column in ("id", "pid") or column.endswith("_id")


def table_cell(value: Any, *, identifier: bool = False) -> str:
    """A value as a table shows it: None as '-', floats with up to 4 significant decimals,
    counts with thousands separators, identifiers (`identifier`) as plain digits, text with
    its control characters escaped (`printable`)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if identifier:
        return str(value)
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return printable(str(value))


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    stream: TextIO | None = None,
    right: Sequence[str] = (),
    min_width: int | None = None,
) -> None:
    """A table of `rows` under `columns` (numeric columns named in `right` align right;
    identifier columns, see `is_identifier`, print their numbers without separators).

    On a terminal the table fits its width (long cells fold; `min_width` widens it); into a
    pipe or a file it is laid out on lines as long as the content needs (up to `PIPE_WIDTH`),
    so a saved output or a `grep` sees each row on one line.
    """
    from rich.console import Console
    from rich.table import Table

    out = stream or sys.stdout
    console = Console(file=out, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    elif min_width is not None and console.width < min_width:
        console.width = min_width
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", overflow="fold")
    plain = [is_identifier(name) for name in columns]
    for row in rows:
        cells = (table_cell(row.get(n), identifier=p) for n, p in zip(columns, plain, strict=True))
        table.add_row(*cells)
    console.print(table)


class WholeWrites:
    """A text stream (stdout) whose every `write` reaches the file whole, signals or not.

    CPython's text layer drops the rest of a write that a signal interrupted part-way (the
    binary layer returns the short count; `TextIOWrapper` ignores it: cpython gh-85393): a
    summary being written into a full pipe lost its tail to a Ctrl-C whose handler returned.
    Here the text is encoded and handed to the binary layer until every byte is taken. Other
    attributes (`isatty`, `fileno`, `encoding`) are the stream's, so rich lays out as before.
    POSIX newlines: the text is written as given."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    @classmethod
    def wrap(cls, stream: TextIO) -> TextIO:
        """`stream` wrapped, typed as the text stream it stands in for."""
        return cast(TextIO, cls(stream))

    def write(self, text: str) -> int:
        """Write all of `text`; its length."""
        stream = self._stream
        binary = getattr(stream, "buffer", None)
        if binary is None:  # a StringIO, a test's capture: no binary layer to go around
            return stream.write(text)
        stream.flush()  # what the text layer already holds goes first
        data = memoryview(text.encode(stream.encoding, stream.errors or "strict"))
        while data:
            data = data[binary.write(data) :]
        return len(text)

    def flush(self) -> None:
        """Flush the stream."""
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
