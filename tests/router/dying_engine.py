"""An aggregation engine whose process dies mid-run (test hook for the shadow worker pool)."""

from __future__ import annotations

import os
from typing import Any

from harness.bars.python import Aggregator as Aggregator


def aggregate_columns(*args: Any) -> list[Any]:
    os._exit(3)
