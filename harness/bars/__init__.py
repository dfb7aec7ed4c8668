"""Bar aggregation: 1-minute OHLCV bars into 5m, 15m, 1h, ... and daily bars, batch and live.

`aggregate(bars, "5m")` buckets each bar at `floor((t - offset) / period) * period + offset`
(clock-aligned from the epoch), labels the bucket by its start, and folds open = first,
high = max, low = min, close = last, volume = sum; empty buckets are omitted. This equals pandas
`resample(rule, label="left", closed="left", origin="epoch", offset=offset)` with empty bins
dropped. Two implementations give the same bars and raise the same errors: the Rust core
(`harness._native`, one pass, GIL released) and the pure-Python reference
(`harness.bars.python`). Timeframe and offset strings are parsed here, once, for both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, NamedTuple, overload

import numpy as np

from harness.bars import python as _python
from harness.errors import BarDataError, InvalidInputError

__all__ = [
    "Aggregator",
    "Bar",
    "Bars",
    "Impl",
    "aggregate",
    "parse_offset",
    "parse_time",
    "parse_timeframe",
    "records_to_columns",
]

Impl = Literal["rust", "python"]
Offset = str | timedelta | int | None

NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}
MAX_PERIOD = 10_000 * NS["d"]  # mirrors MAX_PERIOD in rust/src/bars/validate.rs
COLUMNS = ("t", "o", "h", "l", "c", "v")

_TIMEFRAME = re.compile(r"([1-9][0-9]*)([mhd])")
_OFFSET = re.compile(r"([+-]?)((?:[0-9]+[dhms])+|0)")
_OFFSET_PART = re.compile(r"([0-9]+)([dhms])")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]*)?")
_FRACTION = re.compile(r"(\.[0-9]+)")
_I64 = np.dtype(np.int64)
_INT64_MIN = -(1 << 63)
_F64 = np.dtype(np.float64)


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


def parse_time(value: Any, field: str = "t", index: int = -1) -> int:
    """Timestamp in ns (UTC) from ISO-8601 text ("...Z", "+01:00", naive = UTC), a datetime,
    numpy datetime64, or an epoch number whose unit follows its size (s, ms, us or ns)."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return _epoch_ns(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            raise BarDataError(field, index, "timestamp is not a finite number", value)
        return _epoch_ns(int(value)) if float(value).is_integer() else round(value * NS["s"])
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, datetime):
        return _datetime_ns(value)
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            return parse_time(float(text) if "." in text else int(text), field, index)
        # Python keeps microseconds: carry nanosecond digits beyond six by hand.
        extra_ns = 0
        frac = _FRACTION.search(text)
        if frac and len(frac[1]) > 7:
            digits = frac[1][1:10].ljust(9, "0")
            extra_ns = int(digits[6:])
            text = text[: frac.start()] + "." + digits[:6] + text[frac.end() :]
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            reason = "not an ISO-8601 timestamp or epoch number"
            raise BarDataError(field, index, reason, value) from None
        return _datetime_ns(parsed) + extra_ns
    raise BarDataError(field, index, "not a timestamp", value)


def _epoch_ns(x: int) -> int:
    """Epoch number to ns, its unit inferred from its size: s, ms, us, or ns."""
    size = abs(x)
    if size < 10**11:
        return x * 1_000_000_000
    if size < 10**14:
        return x * 1_000_000
    if size < 10**17:
        return x * 1_000
    return x


def _datetime_ns(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return ((value - _EPOCH) // timedelta(microseconds=1)) * 1000


def records_to_columns(records: Iterable[Mapping[str, Any]]) -> _python.Columns:
    """Columns from `{t, o, h, l, c, v}` records (e.g. `retrieveBars`), sorted by time.

    The gateway sends newest first; rows are sorted ascending on the way in (duplicates stay
    and are then reported by validation). Errors here index the records as given.
    """
    rows: list[tuple[int, float, float, float, float, int]] = []
    for i, record in enumerate(records):
        try:
            t = parse_time(record["t"], "t", i)
            o, h, l, c = (_price(record[k], k, i) for k in "ohlc")  # noqa: E741
            v = _volume(record["v"], i)
        except KeyError as missing:
            raise BarDataError(str(missing.args[0]), i, "missing field") from None
        except TypeError:
            raise BarDataError("t", i, "record is not a mapping", record) from None
        rows.append((t, o, h, l, c, v))
    rows.sort(key=lambda row: row[0])
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), (), ()]
    return _python.columns_from_lists(*columns)


def _price(value: Any, field: str, index: int) -> float:
    if isinstance(value, bool):
        raise BarDataError(field, index, "price is not a number", value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BarDataError(field, index, "price is not a number", value) from None


def _volume(value: Any, index: int) -> int:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    raise BarDataError("v", index, "volume is not an integer", value)


def _column(values: Any, field: str) -> np.ndarray:
    """One input column as a C-contiguous array of the dtype the cores read (no copy if it is)."""
    want = _I64 if field in "tv" else _F64
    if type(values) is np.ndarray and values.dtype is want and values.flags.c_contiguous:
        return values  # the hot path: nothing to do
    array = np.asarray(values)
    if array.ndim != 1:
        raise BarDataError(field, -1, "column must be one-dimensional", array.ndim)
    kind = array.dtype.kind
    if field == "t" and kind == "M":
        array = array.astype("datetime64[ns]").view(np.int64)
    elif field == "t" and kind in "OUS":
        array = np.array([parse_time(x, "t", i) for i, x in enumerate(array.tolist())], np.int64)
    elif field == "v" and kind == "f":
        whole = np.isfinite(array) & (array == np.floor(array))
        if not whole.all():
            bad = int(np.argmin(whole))
            raise BarDataError("v", bad, "volume is not an integer", float(array[bad]))
    elif field == "v" and kind == "u" and array.size and int(array.max()) > _python.INT64_MAX:
        bad = int(np.argmax(array > _python.INT64_MAX))
        raise BarDataError("v", bad, "total volume overflows int64", int(array[bad]))
    elif kind not in "iuf" and not (field == "v" and kind == "b"):
        reason = f"column of dtype {array.dtype} is not numeric"
        raise BarDataError(field, -1, reason, str(array.dtype))
    return np.ascontiguousarray(array, dtype=want)


def _columns(bars: Any) -> _python.Columns:
    """The six input columns from a mapping of columns (or a `Bars`) or a list of records."""
    if isinstance(bars, list | tuple):
        return records_to_columns(bars)
    try:
        return tuple(_column(bars[k], k) for k in COLUMNS)  # type: ignore[return-value]
    except KeyError as missing:
        raise BarDataError(str(missing.args[0]), -1, "missing column") from None


def _names(timeframes: Any) -> list[str]:
    """Timeframes of a list or tuple, duplicates dropped; anything else is not a timeframe."""
    if not isinstance(timeframes, list | tuple):
        parse_timeframe(timeframes)  # raises InvalidInputError naming the value
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
def aggregate(bars: Any, timeframe: str, *, impl: Impl = ..., offset: Offset = ...) -> Bars: ...
@overload
def aggregate(
    bars: Any, timeframe: Sequence[str], *, impl: Impl = ..., offset: Offset = ...
) -> dict[str, Bars]: ...
def aggregate(
    bars: Any,
    timeframe: str | Sequence[str],
    *,
    impl: Impl = "rust",
    offset: Offset = None,
) -> Bars | dict[str, Bars]:
    """Aggregate 1-minute bars (mapping of columns or list of records) into one timeframe, or
    into several in one pass (then a dict keyed by timeframe)."""
    engine = _engine(impl)
    if isinstance(timeframe, str):
        period, off = _spec(timeframe, offset)
        return Bars(*engine.aggregate_columns(*_columns(bars), [period], [off])[0])
    names = _names(timeframe)
    periods, offsets = _specs(names, offset)
    results = engine.aggregate_columns(*_columns(bars), periods, offsets)
    return {name: Bars(*series) for name, series in zip(names, results, strict=True)}


class Aggregator:
    """Live aggregation: push 1-minute bars as they close, get each timeframe's completed bars.

    A bucket completes when the bar that ends at its boundary is pushed (input bars are
    `input_timeframe` long, 1m by default; `input_timeframe=None` waits for the next bucket's
    first bar instead). `partial(tf)` is the bar still being built. Pushes are validated like
    batch input, across pushes, and a rejected push changes nothing. Pushing the same bars in
    any split and adding the partial bars equals `aggregate` of them all.
    """

    def __init__(
        self,
        timeframes: str | Sequence[str],
        *,
        offset: Offset = None,
        input_timeframe: str | None = "1m",
        impl: Impl = "rust",
    ) -> None:
        names = [timeframes] if isinstance(timeframes, str) else _names(timeframes)
        periods, offsets = _specs(names, offset)
        input_period = 0 if input_timeframe is None else parse_timeframe(input_timeframe)
        self.timeframes: tuple[str, ...] = tuple(names)
        self.impl = impl
        self._index = {name: k for k, name in enumerate(names)}
        self._engine = _engine(impl).Aggregator(periods, offsets, input_period)

    @property
    def count(self) -> int:
        """Bars accepted so far."""
        return int(self._engine.count)

    def push(self, t: Any, o: float, h: float, l: float, c: float, v: int) -> list[tuple[str, Bar]]:  # noqa: E741
        """Push one closed 1-minute bar; returns `(timeframe, bar)` for each bar it completed."""
        index = self._engine.count
        t_ns = t if type(t) is int else parse_time(t, "t", index)
        prices = [_price(x, k, index) for k, x in zip("ohlc", (o, h, l, c), strict=True)]
        volume = v if type(v) is int else _volume(v, index)
        # Values beyond int64 cannot reach either engine: refuse them here, for both alike.
        if not _INT64_MIN <= t_ns <= _python.INT64_MAX:
            raise BarDataError("t", index, _python.R_T_RANGE, t_ns)
        if not _INT64_MIN <= volume <= _python.INT64_MAX:
            reason = _python.R_VOLUME_OVERFLOW if volume > 0 else _python.R_NEGATIVE_VOLUME
            raise BarDataError("v", index, reason, volume)
        done = self._engine.push(t_ns, *prices, volume)
        names = self.timeframes
        return [(names[k], Bar(*bar)) for k, *bar in done]

    def push_many(self, bars: Any) -> dict[str, Bars]:
        """Push a batch (columns or records; all or nothing); the completed bars per timeframe."""
        results = self._engine.push_many(*_columns(bars))
        return {name: Bars(*series) for name, series in zip(self.timeframes, results, strict=True)}

    def partial(self, timeframe: str) -> Bar | None:
        """The bar still being built for `timeframe`, or None."""
        k = self._index.get(timeframe)
        if k is None:
            raise InvalidInputError("timeframe", timeframe, f"not one of {list(self.timeframes)}")
        bar = self._engine.partial(k)
        return None if bar is None else Bar(*bar)
