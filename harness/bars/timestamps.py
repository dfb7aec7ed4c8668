"""Timestamps in, int64 nanoseconds (UTC) out: the one set of rules every bar input follows.

Columns (numpy, pandas, polars, pyarrow), records, single pushes and the CLI all come through
here, so a value means the same thing whatever shape it arrives in:

- datetime64 of any unit (s, ms, us, ns, ...; naive = UTC) and tz-aware datetime columns
  (pandas `datetime64[us, UTC]` as `read_csv(parse_dates=...)` gives, polars, pyarrow) are
  converted in vectorised time, never one element at a time.
- ISO-8601 text ("...Z", "+01:00", naive = UTC) and `datetime` objects are unambiguous.
- Epoch numbers (int, float, numeric text) have one unit per column: `unit="s" | "ms" | "us" |
  "ns"` when the caller gives it; otherwise the unit is inferred from the size of the numbers,
  |x| < 1e11 s, < 1e14 ms, < 1e17 us, else ns (so a date from March 1973 to 2116 reads right
  in any unit), and every number of the column must have the size of that same unit. A column
  mixing sizes (seconds among milliseconds, say) is a `BarDataError` naming the first number of
  another size; a number whose unit would put it outside 1823-2116 is a `BarDataError` too.
  Sizes cannot tell units apart within 53 days of 1970-01-01 (1e9 is a second in 2001 or a
  nanosecond in 1970): data that old needs `unit=`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

import numpy as np

from harness.bars.python import R_T_RANGE, T_LIMIT
from harness.errors import BarDataError, InvalidInputError

__all__ = [
    "UNITS",
    "Unit",
    "check_unit",
    "epoch_unit",
    "parse_time",
    "time_column",
    "time_value",
    "time_values",
]

Unit = Literal["s", "ms", "us", "ns"]
UNITS: tuple[Unit, ...] = get_args(Unit)
SCALE: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
# Sizes |x| below each bound belong to the unit; the last unit takes the rest.
_BOUNDS = (10**11, 10**14, 10**17)

R_T_NOT_FINITE = "timestamp is not a finite number"
R_T_MISSING = "timestamp is missing (NaT)"
R_T_TEXT = "not an ISO-8601 timestamp or epoch number"
R_T_TYPE = "not a timestamp"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]*)?")
_FRACTION = re.compile(r"(\.[0-9]+)")
_INT64_MAX = (1 << 63) - 1
# datetime64 units finer than ns always fit the supported range; coarser ones are bounded.
_FINER_THAN_NS = {"ps", "fs", "as", "generic"}


def check_unit(unit: Any) -> Unit | None:
    """`unit` if it is one of "s", "ms", "us", "ns" or None, else `InvalidInputError("unit")`."""
    if unit is None or (isinstance(unit, str) and unit in UNITS):
        return unit
    raise InvalidInputError("unit", unit, "expected 's', 'ms', 'us', 'ns' or None (by size)")


def epoch_unit(x: float) -> Unit:
    """The unit an epoch number's size says: |x| < 1e11 s, < 1e14 ms, < 1e17 us, else ns."""
    size = abs(x)
    if size < _BOUNDS[0]:
        return "s"
    if size < _BOUNDS[1]:
        return "ms"
    if size < _BOUNDS[2]:
        return "us"
    return "ns"


def _mixed(field: str, index: int, got: Unit, want: Unit, value: Any) -> BarDataError:
    reason = (
        f"epoch number of another unit: its size says {got}, the column's says {want} "
        "(one column has one unit; pass unit= if the size misleads)"
    )
    return BarDataError(field, index, reason, value)


def _epoch_ns(x: int | float, unit: Unit, field: str, index: int) -> int:
    """One epoch number in `unit` as ns, refused outside the supported range (1823-2116)."""
    scale = SCALE[unit]
    if isinstance(x, float):
        if not math.isfinite(x):
            raise BarDataError(field, index, R_T_NOT_FINITE, x)
        whole = math.floor(x)
        ns = whole * scale + round((x - whole) * scale)  # exact for the whole part
    else:
        ns = x * scale
    if not -T_LIMIT <= ns <= T_LIMIT:
        raise BarDataError(field, index, R_T_RANGE, x)
    return ns


def time_value(
    value: Any, field: str, index: int, unit: Unit | None, reference: Unit | None
) -> tuple[int, Unit | None]:
    """One timestamp as ns, and the epoch unit it was read in (None if it carries no unit).

    `reference` is the unit of the column's earlier epoch numbers: a number of another size is
    an error unless `unit` is given.
    """
    number = _epoch_number(value, field, index)
    if number is None:
        return _unitless_ns(value, field, index), None
    if unit is None:
        unit = epoch_unit(number)
        if reference is not None and unit != reference:
            raise _mixed(field, index, unit, reference, value)
    return _epoch_ns(number, unit, field, index), unit


def parse_time(value: Any, field: str = "t", index: int = -1, unit: Unit | None = None) -> int:
    """Timestamp in ns (UTC) from ISO-8601 text ("...Z", "+01:00", naive = UTC), a datetime,
    numpy datetime64, or an epoch number in `unit` (None: by its size, see the module doc).

    Raises `BarDataError(field, index, ...)` for anything else or outside 1823-2116.
    """
    return time_value(value, field, index, check_unit(unit), None)[0]


def _epoch_number(value: Any, field: str, index: int) -> int | float | None:
    """The epoch number `value` holds (int, float or numeric text), or None if it is no number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            raise BarDataError(field, index, R_T_NOT_FINITE, value)
        x = float(value)
        return int(x) if x.is_integer() else x
    if isinstance(value, str) and _NUMBER.fullmatch(text := value.strip()):
        return float(text) if "." in text else int(text)
    return None


def _unitless_ns(value: Any, field: str, index: int) -> int:
    """ns of a value that needs no unit: datetime64, datetime, ISO-8601 text."""
    if isinstance(value, np.datetime64):
        return int(_datetime64_ns(np.array([value]), field, index)[0])
    if isinstance(value, datetime):
        return _datetime_ns(value, field, index)
    if isinstance(value, str):
        text = value.strip()
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
            raise BarDataError(field, index, R_T_TEXT, value) from None
        return _datetime_ns(parsed, field, index) + extra_ns
    raise BarDataError(field, index, R_T_TYPE, value)


def _datetime_ns(value: datetime, field: str, index: int) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    ns = ((value - _EPOCH) // timedelta(microseconds=1)) * 1000
    if not -T_LIMIT <= ns <= T_LIMIT:
        raise BarDataError(field, index, R_T_RANGE, value)
    return ns


def time_values(
    values: Sequence[Any], field: str, unit: Unit | None, reference: Unit | None
) -> tuple[np.ndarray, Unit | None]:
    """A column of Python objects (records' `t`, ISO strings, datetimes, numbers) as int64 ns,
    and the epoch unit its numbers were read in (None if it had none). Errors name the index."""
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        out[i], seen = time_value(value, field, i, unit, reference)
        if seen is not None and unit is None:
            reference = seen
    return out, (unit if unit is not None else reference)


def time_column(
    values: Any, unit: Unit | None, field: str = "t", reference: Unit | None = None
) -> tuple[np.ndarray, Unit | None]:
    """A time column of any array-like as C-contiguous int64 ns, plus the epoch unit its numbers
    were read in (None for datetime64 and text without numbers).

    int64 ns that needs no change is returned without a copy. `reference` is the unit the
    caller's earlier numbers had (for a live aggregator). Errors name the row `i` of `values`.
    """
    array = _plain_array(values)
    if array.ndim != 1:
        raise BarDataError(field, -1, "column must be one-dimensional", array.ndim)
    kind = array.dtype.kind
    if kind == "M":
        return _datetime64_ns(array, field, 0), None
    if kind in "iu":
        return _epoch_ints(array, unit, field, reference)
    if kind == "f":
        return _epoch_floats(array, unit, field, reference)
    if kind in "OUS":
        return time_values(array.tolist(), field, unit, reference)
    reason = f"column of dtype {array.dtype} is not numeric"
    raise BarDataError(field, -1, reason, str(array.dtype))


def _plain_array(values: Any) -> np.ndarray:
    """A numpy array of `values`; tz-aware pandas columns become datetime64 (UTC) at C speed."""
    if isinstance(values, np.ndarray):
        return values
    dtype = getattr(values, "dtype", None)
    if dtype is not None and not isinstance(dtype, np.dtype) and getattr(dtype, "kind", "") == "M":
        # pandas DatetimeTZDtype or a pyarrow-backed timestamp: np.asarray would give objects
        # (one Timestamp per row); to_numpy with a datetime64 dtype gives the UTC instants.
        unit = getattr(dtype, "unit", None) or getattr(
            getattr(dtype, "pyarrow_dtype", None), "unit", "ns"
        )
        return np.asarray(values.to_numpy(dtype=f"datetime64[{unit}]"))
    return np.asarray(values)


def _datetime64_ns(array: np.ndarray, field: str, base: int) -> np.ndarray:
    """datetime64 of any unit as int64 ns; NaT and out-of-range values are refused, never
    wrapped (numpy's unit cast does not check overflow)."""
    unit, _ = np.datetime_data(array.dtype)
    if array.size:
        ticks = array.view(np.int64)  # NaT is the int64 minimum
        limit = _INT64_MAX
        if unit not in _FINER_THAN_NS:
            limit = int(np.datetime64(T_LIMIT, "ns").astype(array.dtype).astype(np.int64))
        ok = (ticks >= -limit) & (ticks <= limit)
        if not ok.all():
            bad = int(np.argmin(ok))
            reason = R_T_MISSING if np.isnat(array[bad]) else R_T_RANGE
            raise BarDataError(field, base + bad, reason, str(array[bad]))
    if unit == "ns":
        return np.ascontiguousarray(array.view(np.int64))
    return array.astype("datetime64[ns]").view(np.int64)


def _band_index(array: np.ndarray) -> np.ndarray:
    """Per element, the index in UNITS of the unit its size says."""
    size = np.abs(array.astype(np.float64)) if array.dtype.kind == "f" else np.abs(array)
    return np.searchsorted(np.array(_BOUNDS, dtype=size.dtype), size, side="right")


def _column_unit(array: np.ndarray, unit: Unit | None, field: str, reference: Unit | None) -> Unit:
    """The unit of a column of epoch numbers: `unit`, or the size of its numbers, all alike."""
    if unit is not None:
        return unit
    want = reference or epoch_unit(array[0].item())
    first, last = array[0].item(), array[-1].item()
    if epoch_unit(first) == epoch_unit(last) == want and (first < 0) == (last < 0):
        # Both ends agree and lie on one side of 1970: in a strictly increasing column every
        # number lies between them, so has the same size; a column that is not increasing is
        # refused by the validation that follows, at the row where it turns back.
        return want
    bands = _band_index(array)
    wrong = bands != UNITS.index(want)
    if wrong.any():
        bad = int(np.argmax(wrong))
        raise _mixed(field, bad, UNITS[bands[bad]], want, array[bad].item())
    return want


def _outside(
    array: np.ndarray, outside: np.ndarray, given: Unit | None, unit: Unit, field: str
) -> BarDataError:
    """The error for the first number beyond the range: of another unit when its size says so."""
    bad = int(np.argmax(outside))
    value = array[bad].item()
    if given is None and epoch_unit(value) != unit:
        return _mixed(field, bad, epoch_unit(value), unit, value)
    return BarDataError(field, bad, R_T_RANGE, value)


def _epoch_ints(
    array: np.ndarray, unit: Unit | None, field: str, reference: Unit | None
) -> tuple[np.ndarray, Unit | None]:
    if array.dtype.kind == "u" and array.size and int(array.max()) > T_LIMIT:
        bad = int(np.argmax(array > T_LIMIT))
        raise BarDataError(field, bad, R_T_RANGE, int(array[bad]))
    array = array.astype(np.int64, copy=False)
    if not array.size:
        return np.ascontiguousarray(array), unit
    given = unit
    unit = _column_unit(array, unit, field, reference)
    if unit == "ns":
        return np.ascontiguousarray(array), unit  # range checked by the engines
    limit = T_LIMIT // SCALE[unit]
    outside = (array < -limit) | (array > limit)
    if outside.any():
        raise _outside(array, outside, given, unit, field)
    return array * SCALE[unit], unit


def _epoch_floats(
    array: np.ndarray, unit: Unit | None, field: str, reference: Unit | None
) -> tuple[np.ndarray, Unit | None]:
    array = array.astype(np.float64, copy=False)
    if not array.size:
        return np.empty(0, dtype=np.int64), unit
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise BarDataError(field, bad, R_T_NOT_FINITE, float(array[bad]))
    given = unit
    unit = _column_unit(array, unit, field, reference)
    scale = SCALE[unit]
    outside = np.abs(array) > T_LIMIT / scale
    if outside.any():
        raise _outside(array, outside, given, unit, field)
    whole = np.floor(array)
    ns = whole.astype(np.int64) * scale + np.rint((array - whole) * scale).astype(np.int64)
    return ns, unit
