"""A correct but slow aggregation engine (test hook): sleeps `DELAY_S` first."""

from __future__ import annotations

import time
from typing import Any

from harness.bars import python as _python
from harness.bars.python import Aggregator as Aggregator

DELAY_S = 1.5


def aggregate_columns(*args: Any) -> list[Any]:
    time.sleep(DELAY_S)
    return _python.aggregate_columns(*args)
