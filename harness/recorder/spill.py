"""The spill file: rows the database could not take yet, on disk until it can.

One file per recorder, `harness-spill-<name>.jsonl`, created owner-only (0600: rows carry order
ids, tags and error texts) and held with `flock` while its recorder lives, so that another
recorder replays it only once its process is gone.

One row per line: `["o", id, ts_ns, ...]` (an outcome, the `outcomes` columns in table order)
or `["s", id, ...]` (a shadow comparison). A row per line, not a batch per line, so damage
costs what it touches: a write torn by a crash or a full disk loses that one row, and a
corrupted line loses its row, never the lines after it. Lines written before this format (a
whole batch per line, `{"b": id, "o": [rows], "s": [rows]}`) are still read.

A line that cannot be read is counted (its rows, as far as the ids left in it tell: at least
one) and the file is then never deleted: `set_aside` keeps it as
`harness-spill-<name>.jsonl.damaged-<UTC time>` and puts a clean file holding the readable rows
in its place. A failed append is undone (the file cut back to its length before), so a full
disk never leaves a torn line behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import orjson

from harness.operations import shipped_migration

__all__ = [
    "OUTCOME",
    "SHADOW",
    "SPILL_PREFIX",
    "SpillContents",
    "SpillFile",
    "encode",
]

SPILL_PREFIX: Final = "harness-spill-"
DAMAGED_SUFFIX: Final = ".damaged-"
OUTCOME: Final = "o"
SHADOW: Final = "s"
MODE: Final = 0o600
_ROW_START: Final = re.compile(rb'\["[0-9a-f]{32}",')
"""Where a row of a batch line starts (its id first): how many rows a damaged line held."""
_TAGGED_ROW_START: Final = re.compile(rb'\["[os]","[0-9a-f]{32}",')


def encode(kind: str, row: tuple[Any, ...]) -> bytes:
    """One row's line (TypeError when a value is not JSON: an int past 64 bits, a surrogate,
    an object; the caller fits the row and tries again)."""
    return orjson.dumps((kind, *row), option=orjson.OPT_APPEND_NEWLINE)


@dataclass(slots=True)
class SpillContents:
    """What a spill file held: its readable rows in file order, and what could not be read."""

    outcomes: list[tuple[Any, ...]] = field(default_factory=list)
    shadows: list[tuple[Any, ...]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    """`OUTCOME` or `SHADOW` per readable row, in file order."""
    damaged_lines: int = 0
    lost_rows: int = 0
    """Rows of the damaged lines, as far as they tell (at least one each)."""

    def __len__(self) -> int:
        return len(self.order)

    def rows(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """`(kind, row)` in file order."""
        outcomes, shadows = iter(self.outcomes), iter(self.shadows)
        for kind in self.order:
            yield kind, next(outcomes) if kind == OUTCOME else next(shadows)


def _parse(line: bytes, out: SpillContents, widths: tuple[int, int]) -> bool:
    """Add the rows of `line` to `out`; False if it cannot be read."""
    outcome_width, shadow_width = widths
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    rows: list[tuple[str, tuple[Any, ...]]] = []
    if isinstance(data, list):
        if not data or data[0] not in (OUTCOME, SHADOW):
            return False
        rows.append((data[0], tuple(data[1:])))
    elif isinstance(data, dict):  # a batch line of the first format
        batch_o, batch_s = data.get("o"), data.get("s")
        if not isinstance(batch_o, list) or not isinstance(batch_s, list):
            return False
        for kind, batch in ((OUTCOME, batch_o), (SHADOW, batch_s)):
            for row in batch:
                if not isinstance(row, list):
                    return False
                rows.append((kind, tuple(row)))
    else:
        return False
    checked = []
    for kind, row in rows:
        width = outcome_width if kind == OUTCOME else shadow_width
        # Rows spilled by an older version: the columns added since read as their upgrade
        # fills them (0002: not `reconciled`; 0005: the op's shipped migration, targeted).
        if kind == OUTCOME and len(row) == width - 3:
            row = (*row, False)
        if kind == OUTCOME and len(row) == width - 2 and isinstance(row[0], str):
            row = (*row, shipped_migration(str(row[3])), True)
        if kind == SHADOW and len(row) == width - 1 and isinstance(row[0], str):
            row = (*row, shipped_migration(str(row[3])))
        if len(row) != width or not isinstance(row[0], str):
            return False
        checked.append((kind, row))
    for kind, row in checked:
        (out.outcomes if kind == OUTCOME else out.shadows).append(row)
        out.order.append(kind)
    return True


def _rows_in(line: bytes) -> int:
    found = len(_TAGGED_ROW_START.findall(line)) or len(_ROW_START.findall(line))
    return max(1, found)


class SpillFile:
    """One spill file (see the module docstring); not thread-safe: its recorder serialises."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the file open and locked."""
        return self._handle is not None

    def lock(self, *, create: bool) -> bool:
        """Open the file and take its lock; False when another process holds it, or when it
        does not exist and not `create`. Raises OSError (a folder that cannot be written)."""
        if self._handle is not None:
            return True
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
        if create:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, flags, MODE)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        with contextlib.suppress(OSError):
            os.fchmod(fd, MODE)  # a file made by an older version, or under a loose umask
        self._handle = os.fdopen(fd, "r+b", buffering=0)
        return True

    def append(self, data: bytes) -> None:
        """Append whole lines and fsync; on OSError the file is cut back to its length before
        (no torn line is left) and the error raised."""
        handle = self._handle
        if handle is None:
            if not self.lock(create=True):
                raise OSError(f"{self.path} is held by another process")
            handle = self._handle
            assert handle is not None
        start = os.fstat(handle.fileno()).st_size
        try:
            view = memoryview(data)
            while view:
                written = handle.write(view)
                if not written:
                    raise OSError("spill file: nothing written")
                view = view[written:]
            os.fsync(handle.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                handle.truncate(start)
            raise

    def read(self, outcome_width: int, shadow_width: int) -> SpillContents:
        """Every row the file holds, in order, and what could not be read (a missing file
        holds nothing). `*_width`: the columns of a row, its id included."""
        out = SpillContents()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return out
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            if not _parse(line, out, (outcome_width, shadow_width)):
                out.damaged_lines += 1
                out.lost_rows += _rows_in(line)
        return out

    def replace(self, lines: Iterable[bytes]) -> None:
        """Put a file holding exactly `lines` in place, atomically (a locked temporary file
        renamed over it: the lock moves with it)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, MODE)
        handle = os.fdopen(fd, "r+b", buffering=0)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            handle.write(b"".join(lines))
            os.fsync(fd)
            os.replace(tmp, self.path)
        except BaseException:
            handle.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self.close()
        self._handle = handle

    def set_aside(self, lines: Iterable[bytes]) -> Path:
        """Keep the (damaged) file as `<name>.damaged-<UTC time>` and put a clean file holding
        `lines` in its place; the kept path."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}{DAMAGED_SUFFIX}{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}{DAMAGED_SUFFIX}{stamp}-{n}")
        try:
            os.link(self.path, aside)  # both names until the clean file replaces this one
        except OSError:
            shutil.copyfile(self.path, aside)  # a file system without hard links
        self.replace(lines)
        return aside

    def remove(self) -> None:
        """Delete the file (every row is in the store) and let go of it."""
        self.path.unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        """Let go of the file (its lock with it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
