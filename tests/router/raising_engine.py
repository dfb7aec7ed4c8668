"""An aggregation engine that always raises an unexpected error (test hook)."""

from __future__ import annotations

from typing import Any

from harness.bars.python import Aggregator as Aggregator


def aggregate_columns(*args: Any) -> list[Any]:
    raise RuntimeError("shadow engine exploded")
