"""History: latency per operation and side, from the merged sketches (`harness query latency`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
from sqlalchemy import Engine

from harness.operations import Operation
from harness.sketch import LatencySketch
from harness.store.queries.filters import Filters
from harness.store.queries.groups import Group, collect


@dataclass(frozen=True, slots=True)
class LatencyRow:
    """One line of `harness query latency`: a side's successful calls of one operation.

    Latencies are of successful calls served by `impl` without a fallback, in milliseconds;
    `count` counts them; `calls` counts every call served by `impl` (errors included), and
    `not_targeted` those of them that went to Python because the stage's targets left them out
    (not because of the hash); percentiles are nearest-rank within 1% (see the package
    docstring). `migration` is the one the operation belonged to when called.
    """

    bucket: str | None
    op: str
    impl: str
    calls: int
    count: int
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    migration: str | None = None
    not_targeted: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this row (stable keys)."""
        out: dict[str, Any] = {
            "migration": self.migration,
            "op": self.op,
            "impl": self.impl,
            "calls": self.calls,
            "not_targeted": self.not_targeted,
            "count": self.count,
            "mean_ms": self.mean_ms,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        }
        if self.bucket is not None:
            out = {"bucket": self.bucket, **out}
        return out


MS_DIGITS: Final = 12
"""Significant digits a figure in ms keeps: every digit a latency is measured with (1 ns over
1000 s), none of the noise of the division by 1000 (0.30000000000000004 is 0.3)."""


def to_ms(us: float | None) -> float | None:
    """Microseconds as milliseconds, to `MS_DIGITS` significant digits, never fixed decimals:
    4 decimals of a ms were 0.1 us, 2-5% of a 2-5 us call, beyond the sketch's 1%."""
    return None if us is None else float(f"{us / 1000.0:.{MS_DIGITS}g}")


def iso_seconds(ns: int) -> str:
    return (
        datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def percentile_ms(sketch: LatencySketch, q: float, peak_us: float | None) -> float | None:
    """The sketch's `q` quantile in ms, capped at the exact maximum `peak_us`: the sketch is
    within 1% of the true value, so it may land above the maximum, which no percentile can.
    Only what is shown is capped; the gate judges from the sketch itself. Significant digits,
    not decimals (see `to_ms`): what a table shows of it (4 significant digits) stays within the
    sketch's 1% from 1 us to hours."""
    value = sketch.quantile(q)
    if value is not None and peak_us is not None:
        value = min(value, peak_us)
    return to_ms(value)


def latency(engine: Engine, filters: Filters) -> list[LatencyRow]:
    """Latency per (bucket,) op and serving side over the filters, ordered by bucket, op, side."""
    with engine.connect() as conn:
        groups = collect(conn, filters, sketches=True)
    merged: dict[tuple[Any, str, str, str], list[Group]] = defaultdict(list)
    calls: dict[tuple[Any, str, str, str], int] = defaultdict(int)
    not_targeted: dict[tuple[Any, str, str, str], int] = defaultdict(int)
    for (bucket, op, _routed, served, fell_back, ok, targeted, migration), group in groups.items():
        key = (bucket, op, migration, served)
        calls[key] += group.n
        not_targeted[key] += 0 if targeted else group.n
        if ok and not fell_back:
            merged[key].append(group)
    order = {op.value: i for i, op in enumerate(Operation)}
    rows = []
    for key in sorted(calls, key=lambda k: (k[0] or 0, order.get(k[1], 99), k[1], k[2], k[3])):
        bucket, op, migration, served = key
        parts = merged.get(key, [])
        count = sum(g.n for g in parts)
        sketch = LatencySketch()
        for g in parts:
            sketch.merge(g.sketch())
        total = sum(g.latency_sum_us for g in parts)
        peak = max((g.latency_max_us for g in parts), default=None) if count else None
        rows.append(
            LatencyRow(
                bucket=None if bucket is None else iso_seconds(bucket),
                op=op,
                impl=served,
                calls=calls[key],
                count=count,
                mean_ms=to_ms(total / count) if count else None,
                p50_ms=percentile_ms(sketch, 0.50, peak),
                p95_ms=percentile_ms(sketch, 0.95, peak),
                p99_ms=percentile_ms(sketch, 0.99, peak),
                max_ms=to_ms(peak),
                migration=migration or None,
                not_targeted=not_targeted[key],
            )
        )
    return rows


def percentiles(values: Sequence[float], qs: Sequence[float]) -> list[float]:
    """Nearest-rank percentiles of raw values (numpy `inverted_cdf`): the reference the sketch's
    answers are tested against."""
    array = np.asarray(values, dtype=np.float64)
    return [float(np.quantile(array, q, method="inverted_cdf")) for q in qs]
