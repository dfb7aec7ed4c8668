"""A correct but slow aggregation engine (test hook): inside `held()` every call waits until the
block ends (at most `HOLD_LIMIT_S`), so a test decides when it answers, not the machine's load."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from harness.bars import python as _python
from harness.bars.python import Aggregator as Aggregator

HOLD_LIMIT_S = 60.0
"""A held call answers after this at the latest (a failed test must not hang the suite)."""

_released = threading.Event()
_released.set()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Calls made inside the block (on threads of this process) wait until it ends."""
    _released.clear()
    try:
        yield
    finally:
        _released.set()


def aggregate_columns(*args: Any) -> list[Any]:
    _released.wait(HOLD_LIMIT_S)
    return _python.aggregate_columns(*args)
