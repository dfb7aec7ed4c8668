"""Writing a file whole or not at all: a temporary file in the target's folder, renamed over
the target once complete (`os.replace` is atomic within one file system)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` to write; renamed to `target` when the block ends
    without an error, removed otherwise (the target is then as it was)."""
    folder = target.parent
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_atomically(target: Path, write: Callable[[IO[bytes]], None]) -> None:
    """`write(stream)` into a temporary file, then the rename (see `atomic_path`)."""
    with atomic_path(target) as temp, temp.open("wb") as stream:
        write(stream)
        stream.flush()
        os.fsync(stream.fileno())
