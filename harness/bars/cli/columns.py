"""pyarrow columns as the numpy arrays `harness.bars.aggregate` takes (sharing their buffers,
without pandas), and back: prices float64, volume int64, t as datetime64, epoch numbers or text.
A cell that cannot be read raises `BadCell` with its row, which the readers turn into the
file's line or row."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harness.bars.python import INT64_MAX, R_VOLUME_OVERFLOW

_I64 = np.dtype(np.int64)
_F64 = np.dtype(np.float64)


class BadCell(Exception):
    """A cell of data row `row` that cannot be read as its column's type."""

    def __init__(self, row: int, reason: str) -> None:
        self.row = row
        super().__init__(reason)


def _first_null(array: pa.Array[Any]) -> None:
    if array.null_count:
        raise BadCell(int(np.argmax(array.is_null().to_numpy(zero_copy_only=False))), "empty")


def _first_failing_cast(array: pa.Array[Any], to: pa.DataType) -> int:
    """Index of the first element `cast(to)` refuses (the whole array is known to fail):
    halves are cast in turn, so the search costs about two casts of the array."""
    lo, hi = 0, len(array)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(array.slice(lo, mid - lo), to)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
        else:
            lo = mid
    return lo


def _to_numpy(array: pa.Array[Any], as_type: pa.DataType) -> np.ndarray:
    """A column without nulls as int64 or float64 numpy, sharing pyarrow's buffer (read-only).

    pyarrow's own `to_numpy` and `pa.array` import pandas when it is installed (a quarter to
    half a second of the command's time), so values cross through their buffers instead.
    """
    if array.type != as_type:
        array = pc.cast(array, as_type)
    dtype = _I64 if as_type == pa.int64() else _F64
    data = array.buffers()[1]
    assert data is not None  # a fixed-width column always has a data buffer
    values: np.ndarray = np.frombuffer(
        memoryview(data), dtype=dtype, count=len(array), offset=array.offset * 8
    )
    return values


def to_arrow(values: np.ndarray) -> pa.Array[Any]:
    """An int64 or float64 numpy column as a pyarrow array over the same memory."""
    values = np.ascontiguousarray(values)
    kind = pa.int64() if values.dtype.kind == "i" else pa.float64()
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values.data)])


def number_column(array: pa.Array[Any], key: str) -> np.ndarray:
    """A price (float64) or volume (int64, or float64 checked whole later) column, `key` one
    of o, h, l, c, v. Raises `BadCell` for an empty cell, a cell that is not a number, or a
    uint64 volume beyond int64."""
    if not len(array):
        return np.empty(0, dtype=np.int64 if key == "v" else np.float64)
    if pa.types.is_null(array.type):
        raise BadCell(0, "empty")
    _first_null(array)
    if pa.types.is_unsigned_integer(array.type) and key == "v":
        beyond = pc.greater(array, pa.scalar(INT64_MAX, array.type))
        if pc.any(beyond).as_py():  # a uint64 volume beyond int64: the overflow, named
            raise BadCell(int(pc.index(beyond, True).as_py()), R_VOLUME_OVERFLOW)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        whole = key == "v" and pa.types.is_integer(array.type)
        return _to_numpy(array, pa.int64() if whole else pa.float64())
    want = "a whole number" if key == "v" else "a number"
    raise BadCell(_first_failing_cast(_text(array), pa.float64()), f"not {want}")


def _text(array: pa.Array[Any]) -> pa.Array[Any]:
    """The column as strings (bytes that are not UTF-8 decoded with replacement marks)."""
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        return pa.array(
            [None if b is None else b.decode("utf-8", "replace") for b in array.to_pylist()],
            pa.string(),
        )
    return pc.cast(array, pa.string())


def time_column(array: pa.Array[Any]) -> np.ndarray:
    """Timestamps as numpy for `harness.bars.aggregate`: datetime64 (UTC) when pyarrow parsed
    ISO-8601 itself, epoch numbers as they are, other text as Python strings (parsed one by
    one by the facade, which names the bad index)."""
    if not len(array):
        return np.empty(0, dtype=np.int64)
    if pa.types.is_null(array.type):
        raise BadCell(0, "empty")
    _first_null(array)
    if pa.types.is_date(array.type):
        array = pc.cast(array, pa.timestamp("s"))
    if pa.types.is_timestamp(array.type):
        # The UTC instants (tz-aware or naive), in the column's unit.
        return _to_numpy(array, pa.int64()).view(f"datetime64[{array.type.unit}]")
    if pa.types.is_integer(array.type):
        return _to_numpy(array, pa.int64())
    if pa.types.is_floating(array.type):
        return _to_numpy(array, pa.float64())
    text = _text(array)
    for target in (pa.timestamp("ns", "UTC"), pa.timestamp("ns")):
        with contextlib.suppress(pa.ArrowInvalid):
            # All with an offset, or all naive (= UTC): pyarrow parses them in C.
            return _to_numpy(pc.cast(text, target), pa.int64()).view("datetime64[ns]")
    return np.asarray(text.to_pylist(), dtype=object)  # mixed forms: one by one
