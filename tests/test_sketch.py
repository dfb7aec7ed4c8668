"""The latency sketch: nearest-rank quantiles within 1% of numpy's, exact merge, exact bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from harness.errors import InvalidInputError
from harness.sketch import ALPHA, GAMMA, MIN_VALUE, LatencySketch

QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


def lognormal(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(mean=6.0, sigma=1.0, size=n)


@pytest.mark.parametrize("n", [1, 2, 10, 1000, 100_000])
def test_quantiles_are_within_alpha_of_numpy_nearest_rank(n):
    values = lognormal(n, seed=n)
    sketch = LatencySketch()
    sketch.add_many(values)
    assert sketch.n == n
    for q in QS:
        want = float(np.quantile(values, q, method="inverted_cdf"))
        got = sketch.quantile(q)
        assert got is not None
        assert abs(got - want) <= ALPHA * want * (1 + 1e-12), (q, got, want)
        low, high = sketch.bounds(q)  # type: ignore[misc]
        assert low < want <= high * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1e9, allow_nan=False), min_size=1, max_size=300))
def test_one_by_one_equals_vectorised_and_merge_is_exact(values):
    one, many, left, right = LatencySketch(), LatencySketch(), LatencySketch(), LatencySketch()
    for v in values:
        one.add(v)
    many.add_many(values)
    half = len(values) // 2
    left.add_many(values[:half])
    right.add_many(values[half:])
    blobs = [left.to_bytes(), right.to_bytes(), LatencySketch().to_bytes()]
    assert LatencySketch.from_blobs(blobs) == one
    assert one == many == left.merge(right)
    assert LatencySketch.from_json(many.to_json()) == many
    assert LatencySketch.from_bytes(many.to_bytes()) == many


def test_zeros_and_empty():
    sketch = LatencySketch()
    assert sketch.quantile(0.5) is None and sketch.bounds(0.5) is None
    sketch.add_many([0.0, 0.0, 5.0])
    assert sketch.quantile(0.5) == 0.0
    assert sketch.quantile(1.0) == pytest.approx(5.0, rel=ALPHA)
    assert sketch.count_at_most(10.0) == (3, 3)
    assert sketch.count_at_most(5.0)[1] == 3


def test_nan_and_bad_input_are_refused():
    with pytest.raises(ValueError, match="latency_us=nan"):
        LatencySketch().add(float("nan"))
    with pytest.raises(ValueError, match=r"latency_us\[1\]=nan"):
        LatencySketch().add_many([1.0, float("nan")])
    with pytest.raises(ValueError, match="quantile"):
        LatencySketch().quantile(1.5)
    with pytest.raises(ValueError, match="not a latency sketch"):
        LatencySketch.from_json("{}")
    with pytest.raises(ValueError, match="not a latency sketch"):
        LatencySketch.from_bytes(b"\x01" * 8)


def test_bins_are_the_non_empty_bins_in_key_order_and_count_every_value():
    values = lognormal(5_000, seed=11)
    sketch = LatencySketch()
    sketch.add_many(np.concatenate([values, [0.0, 0.0]]))
    keys, counts = sketch.bins()
    assert keys.dtype == np.int64 and counts.dtype == np.int64
    assert np.all(np.diff(keys) > 0) and np.all(counts > 0)
    assert int(counts.sum()) + sketch.zeros == sketch.n == 5_002
    # Every value lies in (GAMMA**(k-1), GAMMA**k] of its bin: the count up to each edge is exact.
    from harness.sketch import GAMMA

    for key, at_most in zip(keys[::50], np.cumsum(counts)[::50], strict=True):
        assert at_most + sketch.zeros == int((np.concatenate([values, [0, 0]]) <= GAMMA**key).sum())


# ----- the bin of a value next to an edge is the bin `bounds` promises ----------------------------


def _beside(key: int, ulps: int) -> float:
    """`ulps` representable floats above (below, if negative) the edge GAMMA**key."""
    value = GAMMA**key
    for _ in range(abs(ulps)):
        value = math.nextafter(value, math.inf if ulps > 0 else 0.0)
    return value


def _assert_bracketed(value: float) -> None:
    """One value, added one by one and vectorised: `bounds` and `count_at_most` hold it."""
    one, many = LatencySketch(), LatencySketch()
    one.add(value)
    many.add_many([value])
    assert one == many
    low, high = one.bounds(0.5)  # type: ignore[misc]
    assert low < value <= high, (value, low, high)
    assert one.count_at_most(high) == (1, 1) and one.count_at_most(low) == (0, 0)


def test_every_edge_and_its_neighbours_land_in_the_bin_bounds_promise():
    # 1 ns to 10^13 us: every bin a latency can fall in, and one float either side of each edge.
    first = math.ceil(math.log(MIN_VALUE) / math.log(GAMMA)) + 1
    for key in range(first, 1500):
        for ulps in (-1, 0, 1):
            _assert_bracketed(_beside(key, ulps))


@settings(max_examples=500, deadline=None)
@given(st.integers(-340, 35_000), st.integers(-3, 3))
@example(1, 1)
def test_a_value_at_or_around_any_edge_lands_in_the_bin_bounds_promise(key, ulps):
    value = _beside(key, ulps)
    assume(MIN_VALUE < value < math.inf)
    _assert_bracketed(value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(MIN_VALUE, 1e12, exclude_min=True), min_size=1, max_size=50))
def test_every_quantile_of_any_values_is_bracketed_exactly(values):
    sketch = LatencySketch()
    sketch.add_many(values)
    for q in QS:
        want = float(np.quantile(values, q, method="inverted_cdf"))
        low, high = sketch.bounds(q)  # type: ignore[misc]
        assert low < want <= high, (q, want, low, high)


# ----- a measurement is a finite number -------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_value_that_is_not_finite_is_refused_by_name_and_nothing_is_counted(bad):
    sketch = LatencySketch()
    sketch.add(5.0)
    with pytest.raises(InvalidInputError) as refused:
        sketch.add(bad)
    assert (refused.value.field, refused.value.reason) == ("latency_us", "must be a finite number")
    assert str(refused.value) == f"invalid latency_us={bad!r}: must be a finite number"
    with pytest.raises(InvalidInputError) as refused:
        sketch.add_many(np.array([1.0, 2.0, bad, 3.0]))
    assert str(refused.value) == f"invalid latency_us[2]={bad!r}: must be a finite number"
    assert sketch.n == 1
