"""Latency sketches: mergeable log-bucketed histograms with a relative-error guarantee.

The recorder folds every batch of outcomes into one sketch per (minute, operation, side, ...)
group and stores it beside the raw rows; the gate, `harness query` and the dashboard merge the
sketches of a window instead of sorting millions of latencies. The method is DDSketch's
logarithmic mapping (Masson, Rim and Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch
with Relative-Error Guarantees", VLDB 2019, arXiv 1908.10693), without its bin-count cap:

- a value x > 0 lands in bin k = ceil(log(x) / log(gamma)), gamma = (1 + alpha) / (1 - alpha),
  so every value of bin k lies in (gamma**(k-1), gamma**k]. The edges are one table of floats
  (`edges`), and the bin is chosen exactly against it: the float estimate of k is checked
  against the two edges and moved by one where rounding put a value next to an edge into the
  neighbouring bin (a value one ulp above an edge would otherwise land below it);
- a bin is represented by 2 * gamma**k / (gamma + 1), within `alpha` (relative) of every value
  of the bin;
- so `quantile(q)` is within `alpha` (relative) of the sample's nearest-rank q-quantile, the
  value of rank ceil(q * n) in sorted order (numpy's `method="inverted_cdf"`), and
  `bounds(q)` brackets that sample value exactly.

Values are microseconds in this project (any positive unit works); values <= `MIN_VALUE` (and
zero) are counted in a separate zero bin, represented by 0. Counts are exact: a merged sketch of
two windows equals the sketch of their union. A value that is not a finite number (NaN, +-inf)
is refused with `InvalidInputError` naming it, the one rule of every API taking measurements.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson

from harness.errors import InvalidInputError

__all__ = ["ALPHA", "FINITE", "GAMMA", "MIN_VALUE", "LatencySketch", "edge", "edges"]

ALPHA: Final = 0.01
"""Relative accuracy of every quantile (1%)."""
GAMMA: Final = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA: Final = math.log(GAMMA)
MIN_VALUE: Final = 1e-3
"""Values at or below this (1 ns, in microseconds) count as zero."""
FINITE: Final = "must be a finite number"
"""The reason every API taking measurements gives for NaN or an infinity."""

# The edge table: _EDGES[k - _K_LOW] is the upper edge of bin k, for every k a positive finite
# value can fall in (and one more on each side, for the check of the estimate). Built once with
# numpy (~1 ms); a value's bin, `bounds`, `count_at_most` and the gate's grids all read this one
# table, so they agree to the last bit whichever `pow` computed it.
_K_LOW: Final = math.floor(math.log(MIN_VALUE) / _LOG_GAMMA) - 2
_K_HIGH: Final = math.ceil(math.log(np.finfo(np.float64).max) / _LOG_GAMMA) + 2
with np.errstate(over="ignore"):  # the last edges are beyond the largest float: +inf
    _EDGES: Final = np.power(GAMMA, np.arange(_K_LOW, _K_HIGH + 1, dtype=np.float64))
_EDGES.flags.writeable = False
_EDGE_LIST: Final = _EDGES.tolist()


def edge(key: int) -> float:
    """The upper edge of bin `key`: every value of the bin is in (edge(key - 1), edge(key)]."""
    if _K_LOW <= key <= _K_HIGH:
        return float(_EDGE_LIST[key - _K_LOW])
    return float(GAMMA**key)  # a key no value can reach (a sketch read from elsewhere)


def edges(keys: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The upper edges of bins `keys` (int array), as `edge` gives them one by one."""
    k = np.asarray(keys, dtype=np.int64)
    inside = (k >= _K_LOW) & (k <= _K_HIGH)
    if inside.all():
        out: npt.NDArray[np.float64] = _EDGES[k - _K_LOW]
        return out
    return np.array([edge(int(key)) for key in k.ravel()], dtype=np.float64).reshape(k.shape)


def _keys(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """The bin of every value of an array (all > MIN_VALUE and finite): the float estimate,
    moved by one where it put a value beside an edge into the neighbouring bin."""
    keys = np.ceil(np.log(values) / _LOG_GAMMA).astype(np.int64)
    index = keys - _K_LOW
    keys += values > _EDGES[index]
    keys -= values <= _EDGES[index - 1]
    return keys


def _not_finite(field: str, value: float) -> InvalidInputError:
    return InvalidInputError(field, value, FINITE)


class LatencySketch:
    """A mergeable histogram of positive values (microseconds) with 1% relative accuracy.

    `n` is the number of values added; `keys`/`counts` are the non-empty bins in ascending key
    order; `zeros` counts values <= `MIN_VALUE`.
    """

    __slots__ = ("_bins", "zeros")

    def __init__(self) -> None:
        self._bins: dict[int, int] = {}
        self.zeros = 0

    # ----- building ------------------------------------------------------------------------------

    def add(self, value: float) -> None:
        """Count one value (us). `InvalidInputError` (field `latency_us`, a `ValueError`) for
        NaN or an infinity: a latency is always a finite number."""
        if not -math.inf < value < math.inf:  # False for NaN too
            raise _not_finite("latency_us", value)
        if value <= MIN_VALUE:
            self.zeros += 1
            return
        # `_key`, inlined: this is the per-value path.
        key = math.ceil(math.log(value) / _LOG_GAMMA)
        index = key - _K_LOW
        if value > _EDGE_LIST[index]:
            key += 1
        elif value <= _EDGE_LIST[index - 1]:
            key -= 1
        self._bins[key] = self._bins.get(key, 0) + 1

    def add_many(self, values: npt.ArrayLike) -> None:
        """Count every value of an array (us; vectorised). `InvalidInputError` naming the first
        value that is NaN or an infinity and its index (`latency_us[3]`); nothing is counted."""
        array = np.asarray(values, dtype=np.float64).ravel()
        if array.size == 0:
            return
        finite = np.isfinite(array)
        if not finite.all():
            index = int(np.argmin(finite))
            raise _not_finite(f"latency_us[{index}]", float(array[index]))
        positive = array[array > MIN_VALUE]
        self.zeros += int(array.size - positive.size)
        if positive.size:
            self._add_bins(*np.unique(_keys(positive), return_counts=True))

    def merge(self, other: LatencySketch) -> LatencySketch:
        """Add `other`'s counts to this sketch; returns self."""
        self.zeros += other.zeros
        bins = self._bins
        for key, count in other._bins.items():
            bins[key] = bins.get(key, 0) + count
        return self

    @classmethod
    def merged(cls, sketches: Iterable[LatencySketch]) -> LatencySketch:
        """One sketch holding the counts of all `sketches`."""
        out = cls()
        for sketch in sketches:
            out.merge(sketch)
        return out

    def _add_bins(self, keys: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]) -> None:
        bins = self._bins
        for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
            bins[key] = bins.get(key, 0) + count

    # ----- reading -------------------------------------------------------------------------------

    @property
    def n(self) -> int:
        """Number of values counted."""
        return self.zeros + sum(self._bins.values())

    def __len__(self) -> int:
        return self.n

    def _sorted(self) -> tuple[list[int], list[int]]:
        keys = sorted(self._bins)
        return keys, [self._bins[k] for k in keys]

    def _bin_of_rank(self, rank: int) -> int | None:
        """Key of the bin holding the value of 1-based `rank` (None: the zero bin)."""
        if rank <= self.zeros:
            return None
        seen = self.zeros
        keys, counts = self._sorted()
        for key, count in zip(keys, counts, strict=True):
            seen += count
            if seen >= rank:
                return key
        return keys[-1]

    @staticmethod
    def _rank(q: float, n: int) -> int:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile q={q!r}: must be within 0..1")
        # Rounded first so that 0.999 * 1000 is rank 999, not 1000, as exact arithmetic says.
        return min(max(math.ceil(round(q * n, 9)), 1), n)

    def quantile(self, q: float) -> float | None:
        """The nearest-rank q-quantile (q in 0..1) within 1% relative error; None when empty."""
        n = self.n
        rank = self._rank(q, max(n, 1))
        if n == 0:
            return None
        key = self._bin_of_rank(rank)
        return 0.0 if key is None else 2.0 * GAMMA**key / (GAMMA + 1.0)

    def bounds(self, q: float) -> tuple[float, float] | None:
        """(low, high) bracketing the sample's nearest-rank q-quantile exactly; None when empty.

        The value of rank ceil(q * n) lies in (low, high]; used where a bound must be
        conservative (the gate's confidence sequences), not a point estimate.
        """
        n = self.n
        rank = self._rank(q, max(n, 1))
        if n == 0:
            return None
        key = self._bin_of_rank(rank)
        if key is None:
            return (0.0, MIN_VALUE)
        return (edge(key - 1), edge(key))

    def bins(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(keys, counts) of the non-empty bins as arrays, keys ascending.

        Bin `k` holds the values in (edge(k-1), edge(k)]; the zero bin is not included (its
        count is `zeros`). What vectorised readers (the gate's confidence bands) start from.
        """
        keys, counts = self._sorted()
        return np.asarray(keys, dtype=np.int64), np.asarray(counts, dtype=np.int64)

    def count_at_most(self, value: float) -> tuple[int, int]:
        """(certain, possible): counts of values surely <= `value`, and possibly <= `value`.

        Values in the bin straddling `value` are possible but not certain; an empirical CDF
        bracket for tests of stochastic order.
        """
        if value < 0:
            return (0, 0)
        certain = self.zeros if value >= MIN_VALUE else 0
        possible = self.zeros
        for key, count in self._bins.items():
            high = edge(key)
            if high <= value:
                certain += count
                possible += count
            elif edge(key - 1) < value:
                possible += count
        return (certain, possible)

    # ----- storage -------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Compact binary form: little-endian int64 `[zeros, m, keys[m], counts[m]]`."""
        keys, counts = self.bins()
        header = np.array([self.zeros, keys.size], dtype="<i8")
        return np.concatenate([header, keys, counts]).astype("<i8").tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes) -> LatencySketch:
        """The sketch `to_bytes` wrote (ValueError on anything else)."""
        return cls.from_blobs([blob])

    @classmethod
    def from_blobs(cls, blobs: Iterable[bytes]) -> LatencySketch:
        """One sketch holding the counts of every `to_bytes` blob, merged with numpy (the store's
        window queries merge thousands of per-minute sketches this way)."""
        key_parts: list[npt.NDArray[np.int64]] = []
        count_parts: list[npt.NDArray[np.int64]] = []
        zeros = 0
        for blob in blobs:
            words = np.frombuffer(blob, dtype="<i8")
            if words.size < 2 or words.size != 2 + 2 * int(words[1]) or words[1] < 0:
                raise ValueError("not a latency sketch: bad length")
            m = int(words[1])
            zeros += int(words[0])
            key_parts.append(words[2 : 2 + m])
            count_parts.append(words[2 + m :])
        out = cls()
        out.zeros = zeros
        if key_parts:
            keys = np.concatenate(key_parts)
            counts = np.concatenate(count_parts)
            if keys.size:
                unique, inverse = np.unique(keys, return_inverse=True)
                out._add_bins(unique, np.bincount(inverse, weights=counts).astype(np.int64))
        return out

    def to_json(self) -> str:
        """Compact JSON text `{"z": zeros, "k": [keys], "c": [counts]}` (keys ascending)."""
        keys, counts = self._sorted()
        return orjson.dumps({"z": self.zeros, "k": keys, "c": counts}).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> LatencySketch:
        """The sketch `to_json` wrote (ValueError on anything else)."""
        try:
            data = orjson.loads(text)
            keys, counts, zeros = data["k"], data["c"], int(data["z"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a latency sketch: {exc}") from None
        if len(keys) != len(counts):
            raise ValueError("not a latency sketch: keys and counts differ in length")
        out = cls()
        out.zeros = zeros
        out._bins = {int(k): int(c) for k, c in zip(keys, counts, strict=True)}
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencySketch):
            return NotImplemented
        return self.zeros == other.zeros and self._bins == other._bins

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LatencySketch(n={self.n}, bins={len(self._bins)})"
