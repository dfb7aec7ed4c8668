"""The gate's statistics against their sources: published values, defining equations, coverage."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.gate import stats
from harness.sketch import GAMMA, MIN_VALUE, LatencySketch

# Newcombe (1998), Table II, method 10 (score interval, no continuity correction), 95%.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "want"), NEWCOMBE_TABLE_II)
def test_newcombe_interval_matches_the_papers_table(counts, want):
    low, high = stats.newcombe(*counts, alpha=0.05)
    assert (round(low, 4), round(high, 4)) == want


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_endpoints_solve_the_score_equation(case):
    successes, trials = case
    alpha = 0.05
    z = NormalDist().inv_cdf(1 - alpha / 2)
    low, high = stats.wilson(successes, trials, alpha)
    p_hat = successes / trials
    assert 0.0 <= low <= p_hat <= high <= 1.0
    # Each endpoint p (other than a clamped 0 or 1) is where |p_hat - p| = z sqrt(p(1-p)/n).
    for p in (low, high):
        if 0.0 < p < 1.0:
            assert abs(abs(p_hat - p) - z * math.sqrt(p * (1 - p) / trials)) < 1e-9


def test_wilson_without_trials_knows_nothing():
    assert stats.wilson(0, 0, 0.05) == (0.0, 1.0)
    assert stats.newcombe(0, 0, 3, 10, 0.05) == (-1.0, 1.0)


def test_riemann_zeta_matches_closed_forms():
    assert stats.riemann_zeta(2.0) == pytest.approx(math.pi**2 / 6, abs=1e-13)
    assert stats.riemann_zeta(4.0) == pytest.approx(math.pi**4 / 90, abs=1e-13)
    assert stats.riemann_zeta(1.4) == pytest.approx(3.1055472779775, abs=1e-12)


def test_stitching_boundary_matches_the_reference_implementation():
    # confseq's unit tests (test/uniform_boundaries_unittest.cpp, PolyStitchingTest), computed
    # by its authors with their reference implementation in R: v_min 10, c 3 and -1, s 1.4,
    # eta 2, at v 100 and alpha 0.05.
    assert float(stats.stitching_boundary(100, 0.05, 10, c=3)) == pytest.approx(64.48755, abs=1e-5)
    assert float(stats.stitching_boundary(100, 0.05, 10, c=-1)) == pytest.approx(28.99389, abs=1e-5)


def test_stitching_boundary_is_flat_below_v_min_and_grows_slower_than_v():
    values = stats.stitching_boundary([1, 5, 10, 100, 10_000, 1_000_000], 0.05, 10)
    assert values[0] == values[1] == values[2]
    assert np.all(np.diff(values[2:]) > 0)
    assert np.all(np.diff(values[2:] / np.array([10, 100, 10_000, 1_000_000])) < 0)


def test_cdf_band_matches_the_reference_implementation():
    # confseq's EmpiricalProcessLILTest: t 1000, alpha 0.05, t_min 100, A 0.85.
    assert float(stats.cdf_band_radius(1000, 0.05, 100)) == pytest.approx(0.08204769, abs=1e-5)
    # The paper's simplified closed form, C = 0.8 log(1612 / alpha), is never smaller.
    for alpha in (0.2, 0.05, 0.01, 0.001):
        assert stats.lil_constant(alpha) <= 0.8 * math.log(1612 / alpha)


def test_cdf_band_is_infinite_before_it_is_tuned_and_narrows_after():
    radius = stats.cdf_band_radius([0, 99, 100, 1_000, 100_000], 0.05)
    assert np.isinf(radius[:2]).all()
    assert np.all(np.diff(radius[2:]) < 0)


def grid_of(values: np.ndarray) -> stats.SketchGrid:
    sketch = LatencySketch()
    sketch.add_many(values)
    return stats.SketchGrid(sketch)


def test_sketch_grid_counts_are_the_exact_empirical_cdf_at_every_edge():
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(11, 0.5, 3000), rng.lognormal(11.2, 0.7, 2000)
    sa, sb = LatencySketch(), LatencySketch()
    sa.add_many(np.concatenate([a, [0.0]]))
    sb.add_many(b)
    grid = stats.SketchGrid(sa, sb)
    assert grid.low[0] == 0.0 and grid.high[0] == MIN_VALUE
    assert np.allclose(grid.high[1:], grid.low[1:] * GAMMA)
    for values, at_most in ((np.concatenate([a, [0.0]]), grid.at_most[0]), (b, grid.at_most[1])):
        want = np.searchsorted(np.sort(values), grid.high, side="right")
        assert np.array_equal(at_most, want)


def test_quantile_bounds_bracket_the_sample_quantile_and_know_nothing_early():
    rng = np.random.default_rng(5)
    values = rng.lognormal(11, 0.5, 20_000)
    grid = grid_of(values)
    for p in (0.5, 0.99):
        low, high = stats.quantile_bounds(grid.low, grid.high, grid.at_most[0], p, 0.05)
        sample = float(np.quantile(values, p, method="inverted_cdf"))
        assert low < sample <= high
        assert high / low < 1.15
    few = grid_of(values[:50])
    low, high = stats.quantile_bounds(few.low, few.high, few.at_most[0], 0.99, 0.05)
    assert float(low) > 0.0 and math.isinf(float(high))
    empty = stats.SketchGrid(LatencySketch())
    assert stats.quantile_bounds(empty.low, empty.high, empty.at_most[0], 0.5, 0.05) == (
        0.0,
        np.inf,
    )


@pytest.mark.parametrize("p", [0.5, 0.99])
@pytest.mark.parametrize("distribution", ["lognormal", "atoms"])
def test_quantile_confidence_sequence_covers_at_every_look(p, distribution):
    """Each side of the sequence misses the true quantile, at any of 400 looks, in at most
    alpha/2 of runs (here alpha = 0.2, so 10% a side; the stitching bound is conservative)."""
    alpha, runs, looks, block = 0.2, 300, 400, 50
    rng = np.random.default_rng(17)
    if distribution == "lognormal":
        keys = np.arange(400, 760)
        cdf = np.array([NormalDist(11.4, 0.5).cdf(k * math.log(GAMMA)) for k in keys])
        probabilities = np.diff(np.concatenate(([0.0], cdf)))
        probabilities[-1] += 1 - cdf[-1]
        truth = math.exp(11.4 + 0.5 * NormalDist().inv_cdf(p))
    else:  # a latency that takes a few values only: the quantile sits on an atom
        keys = np.array([500, 520, 540, 560])
        probabilities = np.array([0.3, 0.2, 0.49, 0.01])
        truth = GAMMA ** float(keys[np.searchsorted(np.cumsum(probabilities), p)])
    low = np.concatenate(([0.0], GAMMA ** (keys - 1.0)))
    high = np.concatenate(([MIN_VALUE], GAMMA ** keys.astype(float)))
    misses_low = misses_high = 0
    for _ in range(runs):
        blocks = rng.multinomial(block, probabilities, size=looks)
        at_most = np.cumsum(np.cumsum(blocks, axis=0), axis=1)
        at_most = np.concatenate([np.zeros((looks, 1), dtype=np.int64), at_most], axis=1)
        lower, upper = stats.quantile_bounds(low, high, at_most, p, alpha)
        misses_low += bool((lower > truth * (1 + 1e-12)).any())
        misses_high += bool((upper < truth * (1 - 1e-12)).any())
    assert misses_low <= alpha / 2 * runs
    assert misses_high <= alpha / 2 * runs


def test_cdf_gap_sees_no_gap_between_equal_samples_and_a_gap_when_rust_is_slower():
    rng = np.random.default_rng(8)
    python = rng.lognormal(11, 0.5, 20_000)
    same, slower = LatencySketch(), LatencySketch()
    same.add_many(python)
    slower.add_many(python * 1.3)
    base = LatencySketch()
    base.add_many(python)
    grid = stats.SketchGrid(same, base)
    gap = stats.cdf_gap(grid.high, grid.at_most[1], grid.at_most[0], 0.025, 0.025)
    assert float(gap.estimate) == 0.0 and not bool(gap.slower()) and bool(gap.within(0.05))
    grid = stats.SketchGrid(slower, base)
    gap = stats.cdf_gap(grid.high, grid.at_most[1], grid.at_most[0], 0.025, 0.025)
    # Shifting a lognormal(sigma 0.5) by log 1.3 moves its CDF by 2 Phi(0.262) - 1 = 0.207 at most.
    assert float(gap.estimate) == pytest.approx(
        2 * NormalDist().cdf(math.log(1.3) / 1.0) - 1, abs=0.03
    )
    assert bool(gap.slower()) and not bool(gap.within(0.05))
    assert float(gap.lower) > 0.0 and float(gap.upper) >= float(gap.estimate)


# ----- rates: anytime-valid ---------------------------------------------------------------------


def log_mixture(k: int, n: int, p: float, prior: tuple[float, float]) -> float:
    """log M_n(p), the beta-mixture likelihood ratio, from its definition."""
    a, b = prior
    log_b = math.lgamma(a + k) + math.lgamma(b + n - k) - math.lgamma(a + b + n)
    log_b -= math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return log_b - k * math.log(p) - (n - k) * math.log1p(-p)


@given(
    st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.sampled_from([0.01, 0.05, 0.2]),
    st.sampled_from([0.001, 0.01, 0.1]),
)
def test_rate_bounds_are_where_the_mixture_reaches_one_over_alpha(case, alpha, scale):
    successes, trials = case
    prior = stats.rate_prior(scale)
    low, high = (float(x) for x in stats.rate_bounds(successes, trials, alpha, prior))
    assert 0.0 <= low <= successes / trials <= high <= 1.0
    threshold = math.log(1 / alpha)
    # Each end lies outside the sequence (never narrower than exact), and just inside it is in.
    if low > 0.0:
        assert log_mixture(successes, trials, low, prior) >= threshold
        assert log_mixture(successes, trials, low * (1 + 1e-6), prior) < threshold
    if high < 1.0:
        assert log_mixture(successes, trials, high, prior) >= threshold
        assert log_mixture(successes, trials, high * (1 - 1e-6), prior) < threshold


def test_rate_bounds_with_a_uniform_prior_are_robbins_sequence():
    """With Beta(1, 1), M_n(p) = 1 / ((n + 1) C(n, k) p**k (1 - p)**(n - k)): the sequence is
    {p : (n + 1) b(n, p, k) > alpha} (Robbins 1970), and with no successes its upper end is
    1 - (alpha / (n + 1)) ** (1 / n)."""
    for n in (1, 10, 100, 10_000):
        _, high = stats.rate_bounds(0, n, 0.05, (1.0, 1.0))
        assert float(high) == pytest.approx(1 - (0.05 / (n + 1)) ** (1 / n), rel=1e-8)
    for k, n in ((1, 10), (7, 100), (50, 100), (3, 20_000)):
        for end in stats.rate_bounds(k, n, 0.05, (1.0, 1.0)):
            p = float(end)
            pmf = math.comb(n, k) * p**k * (1 - p) ** (n - k)
            assert (n + 1) * pmf == pytest.approx(0.05, rel=1e-6)


def test_rate_bounds_know_nothing_without_trials_and_refuse_bad_input():
    assert tuple(map(float, stats.rate_bounds(0, 0, 0.05, (1.0, 99.0)))) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes"):
        stats.rate_bounds(5, 4, 0.05, (1.0, 99.0))
    with pytest.raises(ValueError, match="alpha"):
        stats.rate_bounds(1, 4, 0.0, (1.0, 99.0))
    with pytest.raises(ValueError, match="prior"):
        stats.rate_bounds(1, 4, 0.05, (0.0, 99.0))


def test_rate_prior_has_its_mean_at_the_bound():
    a, b = stats.rate_prior(0.01)
    assert a / (a + b) == pytest.approx(0.01)
    assert stats.rate_prior(0.0) == stats.rate_prior(stats.RATE_PRIOR_FLOOR)
    assert stats.rate_prior(1.0) == (1.0, 1.0)


@pytest.mark.parametrize("rate", [0.001, 0.01, 0.1, 0.5])
def test_rate_confidence_sequence_covers_at_every_look(rate):
    """The sequence misses the true rate, at any of 400 looks, in at most alpha of the runs
    (here alpha = 0.2), whatever the rate: the mixing distribution (mean 0.01 here) changes
    how fast it narrows, never the guarantee."""
    alpha, runs, looks, block = 0.2, 400, 400, 50
    rng = np.random.default_rng(19)
    successes = np.cumsum(rng.binomial(block, rate, size=(runs, looks)), axis=1)
    trials = np.arange(1, looks + 1) * block
    low, high = stats.rate_bounds(successes, trials, alpha, stats.rate_prior(0.01))
    missed = ((low > rate) | (high < rate)).any(axis=1)
    assert missed.sum() <= alpha * runs


def test_rate_difference_bounds_combine_the_sides_at_half_alpha_and_cover():
    prior = stats.rate_prior(0.01)
    low, high = stats.rate_difference_bounds(30, 2_000, 10, 3_000, 0.1, prior)
    low_1, high_1 = stats.rate_bounds(30, 2_000, 0.05, prior)
    low_2, high_2 = stats.rate_bounds(10, 3_000, 0.05, prior)
    assert float(low) == float(low_1 - high_2) and float(high) == float(high_1 - low_2)
    # Coverage at every look, unequal traffic (1 Rust call for 3 Python), alpha 0.2.
    rng = np.random.default_rng(23)
    runs, looks = 400, 400
    rust = np.cumsum(rng.binomial(50, 0.012, size=(runs, looks)), axis=1)
    python = np.cumsum(rng.binomial(150, 0.004, size=(runs, looks)), axis=1)
    look = np.arange(1, looks + 1)
    low, high = stats.rate_difference_bounds(rust, look * 50, python, look * 150, 0.2, prior)
    missed = ((low > 0.008) | (high < 0.008)).any(axis=1)
    assert missed.sum() <= 0.2 * runs
