"""Bar aggregation: 1-minute OHLCV bars into 5m, 15m, 1h, ... and daily bars, batch and live.

`aggregate(bars, "5m")` buckets each bar at `floor((t - offset) / period) * period + offset`
(clock-aligned from the epoch), labels the bucket by its start, and folds open = first,
high = max, low = min, close = last, volume = sum; empty buckets are omitted. This equals pandas
`resample(rule, label="left", closed="left", origin="epoch", offset=offset)` with empty bins
dropped. Two implementations give the same bars and raise the same errors: the Rust core
(`harness._native`, one pass, GIL released) and the pure-Python reference
(`harness.bars.python`). Timeframe and offset strings are parsed here, once, for both, and
timestamps are read by the one set of rules in `harness.bars.timestamps` (datetime64 of any
unit, tz-aware columns, ISO-8601 text, epoch numbers in `unit=` or told apart by size).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any, Literal, NamedTuple, overload

import numpy as np

from harness.bars import python as _python
from harness.bars.timestamps import (
    Unit,
    check_unit,
    parse_time,
    time_column,
    time_value,
)
from harness.errors import BarDataError, InvalidInputError

__all__ = [
    "Aggregator",
    "Bar",
    "Bars",
    "Impl",
    "Prepared",
    "Unit",
    "aggregate",
    "parse_offset",
    "parse_time",
    "parse_timeframe",
    "prepare",
    "records_to_columns",
]

Impl = Literal["rust", "python"]
Offset = str | timedelta | int | None

NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}
MAX_PERIOD = 10_000 * NS["d"]  # mirrors MAX_PERIOD in rust/src/bars/validate.rs
COLUMNS = ("t", "o", "h", "l", "c", "v")
R_NO_TIMEFRAME = "at least one timeframe is required"

_TIMEFRAME = re.compile(r"([1-9][0-9]*)([mhd])")
_OFFSET = re.compile(r"([+-]?)((?:[0-9]+[dhms])+|0)")
_OFFSET_PART = re.compile(r"([0-9]+)([dhms])")
_I64 = np.dtype(np.int64)
_INT64_MIN = -(1 << 63)
_TWO_63 = float(1 << 63)  # the first float volume beyond int64 (floats at +-2**63 are exact)
_F64 = np.dtype(np.float64)
_NS_SIZE = 10**17  # epoch numbers at least this large are ns (see harness.bars.timestamps)
_NS_MAX = _python.T_LIMIT


class Bar(NamedTuple):
    """One bar: `t` is the bucket start in ns since the epoch (UTC)."""

    t: int
    o: float
    h: float
    l: float  # noqa: E741 - OHLCV column names
    c: float
    v: int


@dataclass(frozen=True, slots=True, eq=False)
class Bars:
    """A bar series as numpy columns: `t` int64 ns UTC, `o`/`h`/`l`/`c` float64, `v` int64."""

    t: np.ndarray
    o: np.ndarray
    h: np.ndarray
    l: np.ndarray  # noqa: E741
    c: np.ndarray
    v: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    def __getitem__(self, column: str) -> np.ndarray:
        """Column by name, so a `Bars` can itself be aggregated further."""
        if column not in COLUMNS:
            raise KeyError(column)
        values: np.ndarray = getattr(self, column)
        return values

    def bar(self, i: int) -> Bar:
        """The i-th bar as a `Bar`."""
        return Bar(*(getattr(self, k)[i].item() for k in COLUMNS))

    def to_records(self) -> list[dict[str, Any]]:
        """The bars as `{t, o, h, l, c, v}` dicts (t in ns), oldest first."""
        return [bar._asdict() for bar in map(self.bar, range(len(self)))]

    def equals(self, other: Bars) -> bool:
        """True when both series hold exactly the same bars (dtypes and values)."""
        return all(
            getattr(self, k).dtype == getattr(other, k).dtype
            and np.array_equal(getattr(self, k), getattr(other, k))
            for k in COLUMNS
        )

    def __repr__(self) -> str:
        return f"Bars({len(self)} bars)"


def parse_timeframe(timeframe: str) -> int:
    """Period in ns of a timeframe `<N>m`, `<N>h` or `<N>d` (N >= 1), e.g. "5m", "1h", "1d"."""
    match = _TIMEFRAME.fullmatch(timeframe) if isinstance(timeframe, str) else None
    if match is None:
        reason = "unknown timeframe: expected <N>m, <N>h or <N>d, e.g. 5m, 1h, 1d"
        raise InvalidInputError("timeframe", timeframe, reason)
    period = int(match[1]) * NS[match[2]]
    if period > MAX_PERIOD:
        raise InvalidInputError("timeframe", timeframe, "longer than 10000d")
    return period


def parse_offset(offset: Offset) -> int:
    """Offset in ns from "17h", "-7h", "17h30m", a `timedelta`, or int nanoseconds (None = 0)."""
    if offset is None:
        return 0
    if isinstance(offset, timedelta):
        return (offset // timedelta(microseconds=1)) * 1000
    if isinstance(offset, int) and not isinstance(offset, bool):
        return offset
    match = _OFFSET.fullmatch(offset.strip()) if isinstance(offset, str) else None
    if match is None:
        reason = "expected a duration such as '17h', '-7h' or '30m', a timedelta or int ns"
        raise InvalidInputError("offset", offset, reason)
    ns = sum(int(n) * NS[unit] for n, unit in _OFFSET_PART.findall(match[2]))
    return -ns if match[1] == "-" else ns


@lru_cache(maxsize=256)
def _spec(timeframe: str, offset: Offset) -> tuple[int, int]:
    period = parse_timeframe(timeframe)
    return period, parse_offset(offset) % period


def _specs(timeframes: Sequence[str], offset: Offset) -> tuple[list[int], list[int]]:
    specs = [_spec(tf, offset) for tf in timeframes]
    return [p for p, _ in specs], [o for _, o in specs]


def records_to_columns(
    records: Iterable[Mapping[str, Any]], *, unit: Unit | None = None
) -> _python.Columns:
    """Columns from `{t, o, h, l, c, v}` records (e.g. `retrieveBars`), sorted by time.

    The gateway sends newest first; rows are sorted ascending on the way in (duplicates stay
    and are then reported by validation). Epoch numbers in `t` follow `unit` or their size
    (see `harness.bars.timestamps`). Errors here index the records as given.
    """
    return _records(records, check_unit(unit), None)[0]


# Input columns as the engines read them, and how to name the caller's rows in errors:
# (columns, order, unit). `order[k]` is the caller's index of sorted row k (records are sorted
# on the way in), or None when rows were not reordered; `unit` is the epoch unit the time
# column was read in. A plain tuple: this is on the hot path of every call.
_Input = tuple[_python.Columns, np.ndarray | None, Unit | None]


def _records(records: Iterable[Mapping[str, Any]], unit: Unit | None, seen: Unit | None) -> _Input:
    """Records in the caller's order to sorted columns, remembering the caller's indices.

    Each record is checked in turn (the first bad record, in the caller's order, is named);
    epoch numbers in `t` share one unit, as in a column."""
    rows: list[tuple[int, float, float, float, float, int]] = []
    for i, record in enumerate(records):
        try:
            t_ns, unit_of_t = time_value(record["t"], "t", i, unit, seen)
            prices = [_price(record[k], k, i) for k in "ohlc"]
            volume = _volume(record["v"], i)
        except KeyError as missing:
            raise BarDataError(str(missing.args[0]), i, "missing field") from None
        except TypeError:
            raise BarDataError("t", i, "record is not a mapping", record) from None
        seen = unit_of_t or seen
        rows.append((t_ns, *prices, volume))  # type: ignore[arg-type]
    lists = [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 6
    columns = _python.columns_from_lists(*lists)
    order = None
    t = columns[0]
    if t.size > 1 and not bool(np.all(t[1:] >= t[:-1])):
        # Stable: of two equal timestamps the caller's later row stays later, so a duplicate
        # is reported at the caller's index of its second occurrence.
        order = np.argsort(t, kind="stable")
        columns = tuple(column[order] for column in columns)  # type: ignore[assignment]
    return columns, order, seen


def _caller_error(error: BarDataError, order: np.ndarray | None, base: int) -> BarDataError:
    """An engine's error on sorted rows (indexed from `base`), re-indexed to the caller's row."""
    if order is None or error.index < base:
        return error
    index = base + int(order[error.index - base])
    return BarDataError(error.field, index, error.reason, error.value)


def _price(value: Any, field: str, index: int) -> float:
    if isinstance(value, bool):
        raise BarDataError(field, index, "price is not a number", value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BarDataError(field, index, "price is not a number", value) from None


def _volume(value: Any, index: int) -> int:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return _int64_volume(int(value), index, value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return _int64_volume(int(value), index, value)
    raise BarDataError("v", index, "volume is not an integer", value)


def _int64_volume(volume: int, index: int, given: Any) -> int:
    """`volume` if an int64 holds it; else the overflow named (field v, the row, the value as
    given): values beyond int64 cannot reach either engine, so they are refused here for both,
    never wrapped around (a numpy cast makes 2**63 the most negative int64)."""
    if _INT64_MIN <= volume <= _python.INT64_MAX:
        return volume
    reason = _python.R_VOLUME_OVERFLOW if volume > 0 else _python.R_NEGATIVE_VOLUME
    raise BarDataError("v", index, reason, given)


def _column(values: Any, field: str) -> np.ndarray:
    """One price or volume column as a C-contiguous array of the dtype the cores read (no copy
    if it already is one)."""
    want = _I64 if field == "v" else _F64
    if type(values) is np.ndarray and values.dtype is want and values.flags.c_contiguous:
        return values  # the hot path: nothing to do
    array = np.asarray(values)
    if array.ndim != 1:
        raise BarDataError(field, -1, "column must be one-dimensional", array.ndim)
    kind = array.dtype.kind
    if field == "v" and kind == "f":
        whole = np.isfinite(array) & (array == np.floor(array))
        if not whole.all():
            bad = int(np.argmin(whole))
            raise BarDataError("v", bad, "volume is not an integer", float(array[bad]))
        beyond = (array >= _TWO_63) | (array < -_TWO_63)
        if beyond.any():
            bad = int(np.argmax(beyond))
            _int64_volume(int(array[bad]), bad, float(array[bad]))
    elif field == "v" and kind == "u" and array.size and int(array.max()) > _python.INT64_MAX:
        bad = int(np.argmax(array > _python.INT64_MAX))
        _int64_volume(int(array[bad]), bad, int(array[bad]))
    elif field == "v" and kind == "O":  # Python ints too large for any numpy integer
        for i, item in enumerate(array):
            _volume(item, i)
        return np.ascontiguousarray(array.astype(np.int64))
    elif kind not in "iuf" and not (field == "v" and kind == "b"):
        reason = f"column of dtype {array.dtype} is not numeric"
        raise BarDataError(field, -1, reason, str(array.dtype))
    return np.ascontiguousarray(array, dtype=want)


def _times(values: Any, unit: Unit | None, seen: Unit | None) -> tuple[np.ndarray, Unit | None]:
    """The time column as int64 ns and the epoch unit it was read in (see `timestamps`)."""
    if (
        type(values) is np.ndarray
        and values.dtype is _I64
        and values.flags.c_contiguous
        and values.size
        and seen in (None, "ns")
    ):
        # The hot path, int64 ns, no copy: both ends of the size of ns and on one side of 1970
        # is all `time_column` would check too (see `timestamps._column_unit`).
        if unit == "ns":
            return values, "ns"
        if unit is None:
            first, last = values.item(0), values.item(-1)
            if (first >= _NS_SIZE and last >= _NS_SIZE) or (
                first <= -_NS_SIZE and last <= -_NS_SIZE
            ):
                return values, "ns"
    return time_column(values, unit, "t", seen)


def _read(bars: Any, unit: Unit | None, seen: Unit | None) -> _Input:
    """The six input columns from a mapping of columns (or a `Bars`) or a list of records."""
    if isinstance(bars, list | tuple):
        return _records(bars, unit, seen)
    try:
        if isinstance(bars, Bars):  # ns by definition: no unit to infer, nothing to remember
            t = _times(bars.t, "ns", None)[0]
        else:
            t, seen = _times(bars["t"], unit, seen)
        o, h, l, c = (_column(bars[k], k) for k in "ohlc")  # noqa: E741
        v = _column(bars["v"], "v")
    except KeyError as missing:
        raise BarDataError(str(missing.args[0]), -1, "missing column") from None
    return (t, o, h, l, c, v), None, seen


@dataclass(frozen=True, slots=True, eq=False)
class Prepared:
    """A batch ready for an engine: what `aggregate` does before and after the engine call,
    shared with the router (`harness.router.bars`), which picks the engine itself.

    `columns` are the six engine columns (records sorted by time, epoch numbers in ns);
    `periods`/`offsets` in ns, one per name of `names`; `single` when one timeframe was asked.
    """

    names: list[str]
    periods: list[int]
    offsets: list[int]
    columns: _python.Columns
    order: np.ndarray | None
    single: bool

    def result(self, series: list[_python.Columns]) -> Bars | dict[str, Bars]:
        """The engine's output as `aggregate` returns it."""
        if self.single:
            return Bars(*series[0])
        return {name: Bars(*s) for name, s in zip(self.names, series, strict=True)}

    def caller_error(self, error: BarDataError) -> BarDataError:
        """An engine's error re-indexed to the caller's row (records are sorted first)."""
        return _caller_error(error, self.order, 0)


def prepare(
    bars: Any,
    timeframe: str | Sequence[str],
    *,
    offset: Offset = None,
    unit: Unit | None = None,
) -> Prepared:
    """Check and read everything `aggregate` takes (see there for the rules and the errors
    raised), without calling an engine."""
    if unit is not None:
        check_unit(unit)
    if isinstance(timeframe, str):
        period, off = _spec(timeframe, offset)
        names, periods, offsets = [timeframe], [period], [off]
    else:
        names = _names(timeframe)
        periods, offsets = _specs(names, offset)
    columns, order, _ = _read(bars, unit, None)
    return Prepared(names, periods, offsets, columns, order, isinstance(timeframe, str))


def _names(timeframes: Any) -> list[str]:
    """Timeframes of a list or tuple, duplicates dropped; anything else is not a timeframe."""
    if not isinstance(timeframes, list | tuple):
        parse_timeframe(timeframes)  # raises InvalidInputError naming the value
    if not timeframes:
        raise InvalidInputError("timeframe", timeframes, R_NO_TIMEFRAME)
    return list(dict.fromkeys(timeframes))


def _engine(impl: str) -> Any:
    if impl == "rust":
        # Imported on first use, so the pure-Python side works where the extension cannot load
        # (the router's native fallback) and processes that never aggregate do not load it.
        from harness import _native

        return _native
    if impl == "python":
        return _python
    raise InvalidInputError("impl", impl, "expected 'rust' or 'python'")


@overload
def aggregate(
    bars: Any, timeframe: str, *, impl: Impl = ..., offset: Offset = ..., unit: Unit | None = ...
) -> Bars: ...
@overload
def aggregate(
    bars: Any,
    timeframe: Sequence[str],
    *,
    impl: Impl = ...,
    offset: Offset = ...,
    unit: Unit | None = ...,
) -> dict[str, Bars]: ...
def aggregate(
    bars: Any,
    timeframe: str | Sequence[str],
    *,
    impl: Impl = "rust",
    offset: Offset = None,
    unit: Unit | None = None,
) -> Bars | dict[str, Bars]:
    """Aggregate 1-minute bars into one timeframe, or into several in one pass (then a dict
    keyed by timeframe).

    `bars`: a mapping of columns `t, o, h, l, c, v` (numpy arrays, lists, a `Bars`, a pandas or
    polars DataFrame) or a list of `{t, o, h, l, c, v}` records in any order. `t`: datetime64 of
    any unit or tz-aware (UTC instants), ISO-8601 text, or epoch numbers in `unit` ("s", "ms",
    "us", "ns"; None = told apart by size, one unit per column: see `harness.bars.timestamps`).
    Returns `Bars` (t int64 ns UTC bucket starts, o/h/l/c float64, v int64).

    Raises `InvalidInputError` for a bad timeframe (an empty list included), offset, unit or
    impl, and `BarDataError(field, index, reason)` for bad rows; for records `index` is the
    caller's index (of a duplicated timestamp, its later occurrence in the caller's list).
    """
    engine = _engine(impl)
    batch = prepare(bars, timeframe, offset=offset, unit=unit)
    try:
        results = engine.aggregate_columns(*batch.columns, batch.periods, batch.offsets)
    except BarDataError as error:
        raise batch.caller_error(error) from None
    return batch.result(results)


class Aggregator:
    """Live aggregation: push 1-minute bars as they close, get each timeframe's completed bars.

    A bucket completes when the bar that ends at its boundary is pushed (input bars are
    `input_timeframe` long, 1m by default; `input_timeframe=None` waits for the next bucket's
    first bar instead). `partial(tf)` is the bar still being built. Pushes are validated like
    batch input, across pushes, and a rejected push changes nothing. Pushing the same bars in
    any split and adding the partial bars equals `aggregate` of them all.

    Epoch numbers pushed are read in `unit`; with None their size decides, and the stream is one
    column: once a number has been accepted, a number of another size is a `BarDataError`.
    Error indices count bars from the aggregator's first (`count` at the failing bar).
    """

    def __init__(
        self,
        timeframes: str | Sequence[str],
        *,
        offset: Offset = None,
        input_timeframe: str | None = "1m",
        impl: Impl = "rust",
        unit: Unit | None = None,
    ) -> None:
        names = [timeframes] if isinstance(timeframes, str) else _names(timeframes)
        periods, offsets = _specs(names, offset)
        input_period = 0 if input_timeframe is None else parse_timeframe(input_timeframe)
        self.timeframes: tuple[str, ...] = tuple(names)
        self.impl = impl
        self.unit: Unit | None = check_unit(unit)
        self._seen: Unit | None = self.unit  # the unit of the epoch numbers accepted so far
        self._index = {name: k for k, name in enumerate(names)}
        self._engine = _engine(impl).Aggregator(periods, offsets, input_period)
        self.last_t: int | None = None
        """The time (ns) of the last bar `push` accepted."""
        self.last_columns: _python.Columns | None = None
        """The columns (sorted, t in ns) of the last batch `push_many` accepted: what the
        router keeps to rebuild this aggregator's state on the other side."""

    @property
    def count(self) -> int:
        """Bars accepted so far."""
        return int(self._engine.count)

    def push(self, t: Any, o: float, h: float, l: float, c: float, v: int) -> list[tuple[str, Bar]]:  # noqa: E741
        """Push one closed 1-minute bar; returns `(timeframe, bar)` for each bar it completed."""
        index = self._engine.count
        seen: Unit | None
        if type(t) is int and self._seen == "ns" and (_NS_SIZE <= t <= _NS_MAX):
            t_ns, seen = t, "ns"  # the hot path: ns after ns
        else:
            t_ns, seen = time_value(t, "t", index, self.unit, self._seen)
        prices = [_price(x, k, index) for k, x in zip("ohlc", (o, h, l, c), strict=True)]
        volume = _int64_volume(v, index, v) if type(v) is int else _volume(v, index)
        done = self._engine.push(t_ns, *prices, volume)
        if seen is not None:
            self._seen = seen
        self.last_t = t_ns
        names = self.timeframes
        return [(names[k], Bar(*bar)) for k, *bar in done]

    def push_many(self, bars: Any) -> dict[str, Bars]:
        """Push a batch (columns or records; all or nothing); the completed bars per timeframe.

        Error indices count from the aggregator's first bar, as for `push`; for records, the
        caller's position in the list is added to `count`."""
        base = self._engine.count
        try:
            columns, order, seen = _read(bars, self.unit, self._seen)
        except BarDataError as error:
            if error.index < 0:
                raise
            raise BarDataError(error.field, base + error.index, error.reason, error.value) from None
        try:
            results = self._engine.push_many(*columns)
        except BarDataError as error:
            raise _caller_error(error, order, base) from None
        if seen is not None:
            self._seen = seen
        self.last_columns = columns
        return {name: Bars(*series) for name, series in zip(self.timeframes, results, strict=True)}

    def partial(self, timeframe: str) -> Bar | None:
        """The bar still being built for `timeframe`, or None."""
        k = self._index.get(timeframe)
        if k is None:
            raise InvalidInputError("timeframe", timeframe, f"not one of {list(self.timeframes)}")
        bar = self._engine.partial(k)
        return None if bar is None else Bar(*bar)
