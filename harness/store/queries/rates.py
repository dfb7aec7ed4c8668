"""History: error and fallback rates per operation and routed side (`harness query rates`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine

from harness.gate.figures import share
from harness.operations import Operation
from harness.store.queries.filters import Filters
from harness.store.queries.groups import collect
from harness.store.queries.latency import iso_seconds


@dataclass(frozen=True, slots=True)
class RateRow:
    """One line of `harness query rates`: the calls routed to one side (`impl`) of one operation
    (in one bucket), how many failed for the caller and how many fell back to Python.

    The counts are the gate's (`SideFigures`): `error_rate` = errors / calls, `fallback_rate` =
    fallbacks / calls (None without calls; fallbacks are 0 on the Python side).
    `not_targeted` counts the calls routed to Python because the stage's targets left them out
    (not because of the hash: the hash sent the rest of `calls`); `migration` is the one the
    operation belonged to when called.
    """

    bucket: str | None
    op: str
    impl: str
    calls: int
    errors: int
    fallbacks: int
    migration: str | None = None
    not_targeted: int = 0

    @property
    def error_rate(self) -> float | None:
        """errors / calls (None without calls)."""
        return share(self.errors, self.calls)

    @property
    def fallback_rate(self) -> float | None:
        """fallbacks / calls (None without calls)."""
        return share(self.fallbacks, self.calls)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this row (stable keys)."""
        out: dict[str, Any] = {
            "migration": self.migration,
            "op": self.op,
            "impl": self.impl,
            "calls": self.calls,
            "not_targeted": self.not_targeted,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "error_rate": self.error_rate,
            "fallback_rate": self.fallback_rate,
        }
        if self.bucket is not None:
            out = {"bucket": self.bucket, **out}
        return out


def rates(engine: Engine, filters: Filters) -> list[RateRow]:
    """Calls, errors and fallbacks per (bucket,) op and ROUTED side, ordered by bucket, op, side.

    Unlike the other queries, `filters.impl` picks the side the calls were routed to (a rate
    is judged per routed side); counts come from the rollups as the gate's do.
    """
    with engine.connect() as conn:
        groups = collect(conn, replace(filters, impl=None), sketches=False)
    counts: dict[tuple[Any, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (bucket, op, routed, _served, fell_back, ok, targeted, migration), group in groups.items():
        if filters.impl is not None and routed != filters.impl.value:
            continue
        row = counts[(bucket, op, migration, routed)]
        row[0] += group.n
        row[1] += 0 if ok else group.n
        row[2] += group.n if fell_back else 0
        row[3] += 0 if targeted else group.n
    order = {op.value: i for i, op in enumerate(Operation)}
    return [
        RateRow(
            bucket=None if bucket is None else iso_seconds(bucket),
            op=op,
            impl=routed,
            calls=calls,
            errors=failed,
            fallbacks=fell,
            migration=migration or None,
            not_targeted=untargeted,
        )
        for (bucket, op, migration, routed), (calls, failed, fell, untargeted) in sorted(
            counts.items(), key=lambda kv: (kv[0][0] or 0, order.get(kv[0][1], 99), *kv[0][1:])
        )
    ]
