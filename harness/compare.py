"""The one equality that decides "same result", and where two results part: bar aggregation,
and the build and read steps of an order call.

The router's shadow comparison and the contract tests both use it (polars ships
`polars.testing` the same way), so a shadow mismatch and a failing contract test mean the same
thing:

    diff = first_difference(rust_bars, python_bars)        # None, or the first differing bar
    assert_same_bars(got, want)                            # AssertionError with that text
    first_result_difference(a, b)                          # Bars, {timeframe: Bars} or an error

    first_request_difference(sent, built)               # an order request: path, then body fields
    first_read_difference(python_read, rust_read)       # what two read steps made of one answer

Bars are equal when they have the same number of bars, the same dtypes, and every value equal
exactly (prices are only copied or compared by aggregation, never computed, so no tolerance is
needed or allowed). Two errors are equal when they have the same class and the same message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Final

import numpy as np

from harness.bars import COLUMNS, Bars

__all__ = [
    "READ_FIELDS",
    "Difference",
    "assert_same_bars",
    "describe_error",
    "first_difference",
    "first_read_difference",
    "first_request_difference",
    "first_result_difference",
    "same_error",
]

LENGTH: Final = "length"
"""`Difference.field` when one series has more bars than the other (after an equal prefix)."""
TIMEFRAMES: Final = "timeframes"
"""`Difference.field` when two multi-timeframe results hold different timeframes."""
ERROR: Final = "error"
"""`Difference.field` when one side raised and the other did not, or they raised differently."""


@dataclass(frozen=True, slots=True)
class Difference:
    """Where two results first part.

    `timeframe` is set for multi-timeframe results; `index` is the bar index (None when the
    difference is not about one bar: a dtype, the set of timeframes, an error); `field` is a
    column name (`t o h l c v`), `length`, `timeframes`, `error`, or `<column>.dtype`; `left`
    and `right` are the two values, as Python scalars or text.
    """

    timeframe: str | None
    index: int | None
    field: str
    left: Any
    right: Any

    def __str__(self) -> str:
        where = f"timeframe {self.timeframe}: " if self.timeframe is not None else ""
        at = f" at bar {self.index}" if self.index is not None else ""
        return f"{where}{self.field} differs{at}: {self.left!r} != {self.right!r}"


def first_difference(left: Bars, right: Bars, *, timeframe: str | None = None) -> Difference | None:
    """The first bar (lowest index, then column order t o h l c v) where two series differ.

    A dtype difference is reported first (index None); then the first differing value within
    the common length; then the lengths (index = the shorter length). None when equal.
    """
    for k in COLUMNS:
        a, b = left[k], right[k]
        if a.dtype != b.dtype:
            return Difference(timeframe, None, f"{k}.dtype", str(a.dtype), str(b.dtype))
    n = min(len(left), len(right))
    first: tuple[int, str] | None = None
    for k in COLUMNS:
        a, b = left[k][:n], right[k][:n]
        unequal = a != b
        if a.dtype.kind == "f":
            unequal &= ~(np.isnan(a) & np.isnan(b))
        hits = np.flatnonzero(unequal[: n if first is None else first[0]])
        if hits.size and (first is None or int(hits[0]) < first[0]):
            first = (int(hits[0]), k)
    if first is not None:
        i, k = first
        return Difference(timeframe, i, k, left[k][i].item(), right[k][i].item())
    if len(left) != len(right):
        return Difference(timeframe, n, LENGTH, len(left), len(right))
    return None


def first_result_difference(left: Any, right: Any) -> Difference | None:
    """Compare two aggregation results: `Bars`, `{timeframe: Bars}`, or a raised exception.

    Exceptions are equal when `same_error` holds; an exception against a result is a
    difference in field `error`. Dicts must hold the same timeframes (in any order); they are
    compared timeframe by timeframe in `left`'s order.
    """
    left_error, right_error = isinstance(left, BaseException), isinstance(right, BaseException)
    if left_error or right_error:
        if left_error and right_error and same_error(left, right):
            return None
        return Difference(None, None, ERROR, _outcome_text(left), _outcome_text(right))
    if isinstance(left, Bars) and isinstance(right, Bars):
        return first_difference(left, right)
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        if set(left) != set(right):
            return Difference(None, None, TIMEFRAMES, sorted(left), sorted(right))
        for name, bars in left.items():
            diff = first_difference(bars, right[name], timeframe=name)
            if diff is not None:
                return diff
        return None
    return Difference(None, None, "type", type(left).__name__, type(right).__name__)


def describe_difference(left: Any, right: Any) -> str | None:
    """None when two results of one operation are equal, else one line saying how they differ:
    the default comparison of a registered operation's shadow (`left` is the Python side's).

    Bars and `{timeframe: Bars}` are compared as aggregation results are
    (`first_result_difference`), exceptions by `same_error`, anything else by `==`.
    """
    bars_like = (Bars, BaseException)
    if (
        isinstance(left, bars_like)
        or isinstance(right, bars_like)
        or (isinstance(left, Mapping) and any(isinstance(v, Bars) for v in left.values()))
    ):
        diff = first_result_difference(left, right)
        return None if diff is None else str(diff)
    try:
        equal = bool(left == right)
    except Exception as exc:  # an == that raises (numpy arrays): a difference, said so
        return f"cannot compare: {describe_error(exc)}"
    return None if equal else f"python {left!r} != rust {right!r}"[:1000]


ABSENT: Final = "absent"
"""The value shown for a body field one request carries and the other does not."""

READ_FIELDS: Final = ("maybe_sent", "retry_after", "error_code", "http_status", "attempts")
"""The attributes of a `harness.errors.BrokerError` two reads must agree on, in the order
compared after the class: whether the request may have reached the broker (which decides a
retry or a fallback), the advised wait, the broker's code, the HTTP status, the count of
requests. Then the message (`message`)."""


def first_request_difference(
    left: tuple[str, bytes], right: tuple[str, bytes], *, at: str = ""
) -> Difference | None:
    """Where two order requests (`(path, JSON bytes)`, e.g. an `Exchange`'s `path` and
    `request`, and a `harness.orders.codec.Request`) first part; None when byte for byte equal.

    Field `{at}path` when the endpoints differ; else `{at}body.<key>` for the first key (in
    `left`'s order, then `right`'s extra keys) whose values differ, `absent` for a missing key;
    `{at}body` with both texts when the bytes differ but the parsed bodies do not (key order,
    spacing, number spelling: the bytes are what the broker sees, so that is a difference too).
    """
    if left[0] != right[0]:
        return Difference(None, None, f"{at}path", left[0], right[0])
    if left[1] == right[1]:
        return None
    a, b = _body(left[1]), _body(right[1])
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            x, y = a.get(key, ABSENT), b.get(key, ABSENT)
            if x != y or type(x) is not type(y):
                return Difference(None, None, f"{at}body.{key}", x, y)
    text_a, text_b = left[1].decode(errors="replace"), right[1].decode(errors="replace")
    return Difference(None, None, f"{at}body", text_a[:500], text_b[:500])


def first_read_difference(left: Any, right: Any, *, at: str = "read") -> Difference | None:
    """Where two read steps' outcomes of one answer first part: each a result (a dataclass of
    `harness.orders.models`, or None) or the exception the read raised. None when equal.

    Fields: `{at}.error_class` (a class, or `ok` for a result, differs); `{at}.<attr>` for the
    first of `READ_FIELDS` that differs; `{at}.message`; `{at}.<field>` for the first field of
    two results that differs (`{at}.result` when they are not the same kind of value).
    """
    left_error, right_error = isinstance(left, BaseException), isinstance(right, BaseException)
    if left_error or right_error:
        if not (left_error and right_error) or type(left) is not type(right):
            return Difference(None, None, f"{at}.error_class", _class(left), _class(right))
        for name in READ_FIELDS:
            x, y = getattr(left, name, None), getattr(right, name, None)
            if x != y:
                return Difference(None, None, f"{at}.{name}", x, y)
        if str(left) != str(right):
            return Difference(None, None, f"{at}.message", str(left), str(right))
        return None
    if type(left) is type(right) and is_dataclass(left) and not isinstance(left, type):
        for f in fields(left):
            x, y = getattr(left, f.name), getattr(right, f.name)
            if x != y:
                return Difference(None, None, f"{at}.{f.name}", x, y)
        return None
    if type(left) is not type(right) or left != right:
        return Difference(None, None, f"{at}.result", repr(left), repr(right))
    return None


def _body(content: bytes) -> Any:
    try:
        return json.loads(content) if content else {}
    except ValueError:
        return None


def _class(outcome: Any) -> str:
    return type(outcome).__name__ if isinstance(outcome, BaseException) else "ok"


def assert_same_bars(got: Bars, want: Bars) -> None:
    """Raise `AssertionError` naming the first differing bar, field and both values."""
    diff = first_difference(got, want)
    if diff is not None:
        raise AssertionError(f"{diff} (got {len(got)} bars, expected {len(want)})")


def same_error(left: BaseException, right: BaseException) -> bool:
    """Two errors are the same when they have the same class and the same message."""
    return type(left) is type(right) and str(left) == str(right)


def describe_error(exc: BaseException) -> str:
    """`Class: message`, the form errors are compared and recorded in."""
    return f"{type(exc).__name__}: {exc}"


def _outcome_text(outcome: Any) -> str:
    if isinstance(outcome, BaseException):
        return describe_error(outcome)
    if isinstance(outcome, Bars):
        return f"{len(outcome)} bars"
    if isinstance(outcome, Mapping):
        return "bars of " + ", ".join(str(k) for k in outcome)
    return type(outcome).__name__
