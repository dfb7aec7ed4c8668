"""The Rust engine, made to panic on purpose (test hook): `aggregate_columns` always raises
`NativePanicError`; the live `Aggregator` raises it on push number `PANIC_AT` (counting from 0,
`push` and every bar of `push_many` alike) after changing nothing it can be trusted with."""

from __future__ import annotations

from typing import Any

from harness import _native
from harness.errors import NativePanicError

PANIC_AT: int | None = None


def aggregate_columns(*args: Any) -> list[Any]:
    raise NativePanicError("rust panicked: deliberately, in a test")


class Aggregator:
    def __init__(self, periods: list[int], offsets: list[int], input_period: int) -> None:
        self._inner = _native.Aggregator(periods, offsets, input_period)
        self._seen = 0

    @property
    def count(self) -> int:
        return int(self._inner.count)

    def partial(self, k: int) -> Any:
        return self._inner.partial(k)

    def _maybe_panic(self, n: int) -> None:
        if PANIC_AT is not None and self._seen <= PANIC_AT < self._seen + n:
            self._seen += n
            raise NativePanicError("rust panicked: deliberately, in a test")
        self._seen += n

    def push(self, *bar: Any) -> Any:
        self._maybe_panic(1)
        return self._inner.push(*bar)

    def push_many(self, *columns: Any) -> Any:
        self._maybe_panic(len(columns[0]))
        return self._inner.push_many(*columns)
