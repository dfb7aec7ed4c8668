"""The rows the recorder writes, and what each column of the store can hold.

`OutcomeRecord` and `ShadowRecord` are the `outcomes` and `shadow_comparisons` columns but the
id, in table order. What a column holds is read once from the models (`harness.store.models`),
the one source of those facts: an integer column's range (SmallInteger 16 bits, Integer 32,
BigInteger 64), a string column's width (characters), whether it may be NULL.

A value the database would refuse must never reach the writer, since a refused row would
otherwise fail its whole batch: `fit_outcome` / `fit_shadow` make every column of a row fit
(a few us a row: the router's slow paths, the shadows, and the writer when a batch was
refused); the router's hot path checks only the strings its caller controls (`str.isprintable`
and a length: tens of ns) and the ints the broker sent, and fits what fails. The rules:

- integer column: an int in the column's range (numpy integers too; a bool or a float is no
  int here); anything else is NULL in a nullable column (an order id of 2**64 is no order id:
  the call's routing key and error message still name it), clamped into range otherwise;
- float column: a finite float; NaN or an infinity is NULL in a nullable column, 0.0 / the
  largest finite float otherwise (SQLite stores NaN as NULL, and JSON, the spill file's format,
  has no infinity);
- string column: `str()` of a non-string; lone surrogates (not encodable as UTF-8, refused by
  both drivers) and control characters (NUL is refused by PostgreSQL in text; the others would
  replay as terminal escapes on every screen that shows the row) written as backslash escapes
  (`\\x00`, `\\udcff`), line breaks and tabs kept in the long text columns (error messages,
  values); then cut to the column's width. NULL in a column that cannot hold it is "".
- boolean column: `bool()` of the value.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

from sqlalchemy import BigInteger, Boolean, Float, Integer, SmallInteger, String, Table

from harness.store.models import Outcome, ShadowComparison

__all__ = [
    "OUTCOME_FIT",
    "OUTCOME_WIDTH",
    "CaptureRecord",
    "OutcomeRecord",
    "ShadowRecord",
    "fit_outcome",
    "fit_outcome_values",
    "fit_shadow",
    "fit_shadow_values",
    "fit_text",
]


class OutcomeRecord(NamedTuple):
    """One routed call, as the router hands it over (the `outcomes` columns but the id)."""

    ts_ns: int
    run_id: str
    op: str
    stage: str
    routed: str
    served: str
    fell_back: bool
    fallback_reason: str | None
    ok: bool
    error_class: str | None
    error_message: str | None
    latency_us: float
    attempts: int | None
    http_status: int | None
    order_id: int | None
    custom_tag: str | None
    routing_key: str | None
    reconciled: bool = False
    migration: str | None = None
    targeted: bool = True


class ShadowRecord(NamedTuple):
    """One shadow comparison (the `shadow_comparisons` columns but the id)."""

    ts_ns: int
    run_id: str
    op: str
    stage: str
    routing_key: str | None
    primary: str
    shadow: str
    matched: bool
    timeframe: str | None
    bar_index: int | None
    field: str | None
    primary_value: str | None
    shadow_value: str | None
    primary_latency_us: float | None
    shadow_latency_us: float | None
    shadow_error: str | None
    bars_in: int | None
    migration: str | None = None


class CaptureRecord(NamedTuple):
    """One sampled call to keep for `harness replay` (the `captures` columns but the id, the
    payload and its size): `encode()` makes the payload (zlib of JSON, secrets scrubbed) on
    the writer's thread, off the caller's path; None when there is nothing to keep. A
    payload over `max_bytes` is not kept, and counted; captures of `migration` older than
    `retention_ns` are deleted as new ones are written."""

    ts_ns: int
    run_id: str
    migration: str
    op: str
    served: str
    build_id: str | None
    format: int
    encode: Callable[[], bytes | None]
    max_bytes: int
    retention_ns: int


_BITS: Final = {SmallInteger: 16, BigInteger: 64, Integer: 32}
_LARGEST: Final = 1.7976931348623157e308
# C0 controls, DEL and C1 controls; the second also spares tab, line feed and carriage return.
_CONTROLS: Final = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LINES: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

Fit = Callable[[Any], Any]


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def fit_text(value: Any, width: int | None, *, lines: bool = False) -> str:
    """`value` as text any column of `width` characters (None: unbounded) accepts, by the
    module's rules; `lines` keeps tabs and line breaks (the long text columns)."""
    text = value if type(value) is str else _str(value)
    if not text.isprintable():
        # Surrogates first (they are not UTF-8), then the control characters they never are.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        text = (_CONTROLS_BUT_LINES if lines else _CONTROLS).sub(_escape, text)
    return text if width is None else text[:width]


def _str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # a __str__ that raises: the row is still written
        return f"<{type(value).__name__}>"


def _int_fit(bits: int, nullable: bool) -> Fit:
    high: int = (1 << (bits - 1)) - 1
    low: int = -high - 1

    def fit(value: Any) -> int | None:
        number: int | None = value if type(value) is int else _as_int(value)
        if number is None:
            return None if nullable else 0
        if low <= number <= high:
            return int(number)
        if nullable:
            return None
        return low if number < low else high

    return fit


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool | float) or type(value).__name__ == "bool_":
        return None  # True is no order id, nor 7.0 (the client refuses both as well)
    try:
        return operator.index(value)  # int subclasses, numpy integers
    except TypeError:
        return None


def _float_fit(nullable: bool) -> Fit:
    def fit(value: Any) -> float | None:
        try:
            number = value if type(value) is float else float(value)
        except (TypeError, ValueError, OverflowError):
            return None if nullable else 0.0
        if math.isfinite(number):
            return number
        if nullable:
            return None
        if math.isnan(number):
            return 0.0
        return _LARGEST if number > 0 else -_LARGEST

    return fit


def _bool_fit(nullable: bool) -> Fit:
    def fit(value: Any) -> bool | None:
        if value is None and nullable:
            return None
        try:
            return bool(value)
        except Exception:
            return False

    return fit


def _text_fit(width: int | None, nullable: bool, lines: bool) -> Fit:
    def fit(value: Any) -> str | None:
        if value is None:
            return None if nullable else ""
        if type(value) is str and (width is None or len(value) <= width) and value.isprintable():
            return value
        return fit_text(value, width, lines=lines)

    return fit


def _fits(table: Table, names: Sequence[str]) -> tuple[Fit, ...]:
    fits: list[Fit] = []
    for name in names:
        column = table.c[name]
        kind, nullable = column.type, bool(column.nullable)
        if isinstance(kind, Boolean):
            fits.append(_bool_fit(nullable))
        elif isinstance(kind, Float):
            fits.append(_float_fit(nullable))
        elif isinstance(kind, SmallInteger | BigInteger | Integer):
            fits.append(_int_fit(_BITS[type(kind)], nullable))
        elif isinstance(kind, String):
            # Text is a String without a length: the long columns, where line breaks are kept.
            fits.append(_text_fit(kind.length, nullable, lines=kind.length is None))
        else:  # pragma: no cover - a column type the recorder does not write
            raise TypeError(f"no fitting rule for {table.name}.{name} ({kind!r})")
    return tuple(fits)


_OUTCOME_TABLE: Final = Outcome.__table__
_SHADOW_TABLE: Final = ShadowComparison.__table__
_OUTCOME_FITS: Final = _fits(_OUTCOME_TABLE, OutcomeRecord._fields)  # type: ignore[arg-type]
_SHADOW_FITS: Final = _fits(_SHADOW_TABLE, ShadowRecord._fields)  # type: ignore[arg-type]

OUTCOME_FIT: Final[dict[str, Fit]] = dict(zip(OutcomeRecord._fields, _OUTCOME_FITS, strict=True))
"""Each `outcomes` column's fitting function, by name (the router's hot path uses a few)."""
OUTCOME_WIDTH: Final[dict[str, int]] = {
    c.name: c.type.length
    for c in _OUTCOME_TABLE.c
    if isinstance(c.type, String) and c.type.length is not None
}
"""Width in characters of each bounded string column of `outcomes` (`custom_tag`: 128)."""


def _fitted(fits: tuple[Fit, ...], values: Sequence[Any]) -> tuple[Any, ...]:
    if len(values) != len(fits):
        raise ValueError(f"a row of {len(values)} values where {len(fits)} columns are")
    return tuple(map(operator.call, fits, values))  # the loop in C: no generator frame


def fit_outcome_values(values: Sequence[Any]) -> tuple[Any, ...]:
    """The `OutcomeRecord` fields `values` (in order, all of them) made to fit; ValueError
    when there are not as many as the record has."""
    return _fitted(_OUTCOME_FITS, values)


def fit_shadow_values(values: Sequence[Any]) -> tuple[Any, ...]:
    """The `ShadowRecord` fields `values` made to fit (as `fit_outcome_values`)."""
    return _fitted(_SHADOW_FITS, values)


def fit_outcome(row: OutcomeRecord) -> OutcomeRecord:
    """`row` with every column made to fit (the module's rules)."""
    return OutcomeRecord._make(fit_outcome_values(row))


def fit_shadow(row: ShadowRecord) -> ShadowRecord:
    """`row` with every column made to fit (the module's rules)."""
    return ShadowRecord._make(fit_shadow_values(row))
