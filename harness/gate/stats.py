"""The gate's statistics: anytime-valid bounds for rates and for latency, and the classic
fixed-sample intervals for comparison.

The dashboard and the automatic rollback re-judge the gate every few seconds, so every bound the
verdict uses must hold at every sample size at once (a confidence sequence), not at one fixed size.

Rates (anytime-valid):

- `rate_bounds`: a confidence sequence for a Bernoulli rate, the set of rates p whose
  beta-mixture likelihood ratio M_n(p) = B(a + k, b + n - k) / (B(a, b) p**k (1 - p)**(n - k))
  stays under 1/alpha. M_n(p) is a nonnegative martingale with mean 1 under p, so by Ville's
  inequality it ever reaches 1/alpha with probability at most alpha (Robbins, "Statistical
  methods related to the law of the iterated logarithm", Annals of Mathematical Statistics
  41(5) 1970; Lai, "On confidence sequences", Annals of Statistics 4(2) 1976; the beta-binomial
  mixture of Howard, Ramdas, McAuliffe and Sekhon 2021, below). The mixing distribution is
  Beta(1, (1 - m)/m) with mean m at the criterion's bound (`rate_prior`);
- `rate_difference_bounds`: the two rates' sequences at alpha/2 each, combined: with
  probability at least 1 - alpha both hold at all sample sizes of both sides at once, so
  (low_1 - high_2, high_1 - low_2) bounds p_1 - p_2 at every look (a union bound).

Fixed-sample intervals, valid at one look only (kept for display and for comparison; the
verdict does not use them):

- `wilson`: the Wilson score interval for a binomial proportion (Wilson 1927, "Probable
  inference, the law of succession, and statistical inference", JASA 22:209-212).
- `newcombe`: the hybrid score interval for a difference of two independent proportions built
  from the two Wilson intervals (Newcombe 1998, "Interval estimation for the difference between
  independent proportions: comparison of eleven methods", Statistics in Medicine 17:873-890,
  method 10); the same as statsmodels' `confint_proportions_2indep(method="newcomb")`.

Latency (anytime-valid):

- `quantile_bounds`: a confidence sequence for one fixed quantile, from the count of
  observations under it, a sum of centred Bernoulli variables (Howard and Ramdas, "Sequential
  estimation of quantiles with applications to A/B-testing and best-arm identification",
  Bernoulli 28(3) 2022, arXiv 1906.09712, Section 2), bounded by the polynomial stitching
  boundary (`stitching_boundary`) of Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform,
  nonparametric, nonasymptotic confidence sequences", Annals of Statistics 49(2) 2021, arXiv
  1810.08240, Theorem 1 and the polynomial-stitching example after it;
- `cdf_band_radius`: a band around the whole empirical CDF, uniform over latencies and sample
  sizes (Howard and Ramdas 2022, Theorem 2, the time-uniform Dvoretzky-Kiefer-Wolfowitz
  inequality), from which `cdf_gap` tests stochastic order as Netflix's canary analysis does
  (Lindon, Sanden and Shirikian, "Rapid Regression Detection in Software Deployments through
  Sequential Testing", KDD 2022, arXiv 2205.14762).

The constants (`STITCH_S`, `STITCH_ETA`, `LIL_A`, the error bound that fixes C) are those of the
papers' reference implementation by their first author, `confseq` (`uniform_boundaries.h`); the
tests reproduce its published unit-test values. Everything works on the sketches' cumulative bin
counts, vectorised over any leading axes (the simulations judge 400 looks in one call), and is
conservative about the 1% binning: a lower bound is the low edge of the bin holding its rank, an
upper bound the high edge, and CDFs are compared only where both are known exactly (at bin edges).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Final

import numpy as np
import numpy.typing as npt

from harness.sketch import MIN_VALUE, LatencySketch, edges

__all__ = [
    "LIL_A",
    "RATE_PRIOR_FLOOR",
    "STITCH_ETA",
    "STITCH_S",
    "TUNED_FROM",
    "CdfGap",
    "SketchGrid",
    "cdf_band_radius",
    "cdf_gap",
    "lil_constant",
    "log_beta",
    "newcombe",
    "quantile_bounds",
    "rate_bounds",
    "rate_difference_bounds",
    "rate_prior",
    "riemann_zeta",
    "stitching_boundary",
    "wilson",
]

Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]

STITCH_S: Final = 1.4
"""Polynomial stitching: how the crossing probability is spread over epochs (s > 1)."""
STITCH_ETA: Final = 2.0
"""Polynomial stitching: the geometric spacing of epochs (eta > 1)."""
LIL_A: Final = 0.85
"""Leading constant of the time-uniform DKW band (A > 1/sqrt(2)); the paper's choice."""
TUNED_FROM: Final = 100
"""Sample count from which the bounds are tuned: the stitching boundary is flat below it, the
CDF band is infinite below it (the gate's default `min_samples` is the same 100)."""


# ----- rates: fixed-sample ----------------------------------------------------------------------


def _z(alpha: float) -> float:
    """The standard normal quantile of 1 - alpha/2 (two-sided level 1 - alpha)."""
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def wilson(successes: int, trials: int, alpha: float) -> tuple[float, float]:
    """Two-sided Wilson score interval (low, high) for a proportion, at level 1 - alpha.

    `successes` of `trials` (0 <= successes <= trials); no trials gives (0, 1). Each side errs
    with probability about alpha/2 at a fixed number of trials (Wilson 1927): at one look only,
    so the verdict uses `rate_bounds`; this is kept for display and comparison.
    """
    if trials <= 0:
        return (0.0, 1.0)
    z = _z(alpha)
    n = float(trials)
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= trials else min(1.0, centre + half)
    return (low, high)


def newcombe(
    successes_1: int, trials_1: int, successes_2: int, trials_2: int, alpha: float
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (low, high) for p1 - p2, at level 1 - alpha.

    Built from the Wilson intervals (l_i, u_i) of each proportion at the same level:
    low = d - sqrt((p1 - l1)**2 + (u2 - p2)**2), high = d + sqrt((u1 - p1)**2 + (p2 - l2)**2),
    d = p1 - p2 (Newcombe 1998, method 10). Either side without trials gives (-1, 1).
    """
    if trials_1 <= 0 or trials_2 <= 0:
        return (-1.0, 1.0)
    p1, p2 = successes_1 / trials_1, successes_2 / trials_2
    l1, u1 = wilson(successes_1, trials_1, alpha)
    l2, u2 = wilson(successes_2, trials_2, alpha)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (max(-1.0, low), min(1.0, high))


# ----- rates: anytime-valid ---------------------------------------------------------------------

RATE_PRIOR_FLOOR: Final = 1e-6
"""Least mean of the mixing distribution (a bound of 0 would make it improper)."""
_NEWTON_STEPS: Final = 60
_OUTWARD: Final = 1e-9
"""Relative amount by which `rate_bounds` rounds each end outward, past float error."""
_lgamma = np.frompyfunc(math.lgamma, 1, 1)


def log_beta(a: npt.ArrayLike, b: npt.ArrayLike) -> Floats:
    """log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b), elementwise, for a, b > 0."""
    a_ = np.asarray(a, dtype=np.float64)
    b_ = np.asarray(b, dtype=np.float64)
    out: Floats = (
        np.asarray(_lgamma(a_), dtype=np.float64)
        + np.asarray(_lgamma(b_), dtype=np.float64)
        - np.asarray(_lgamma(a_ + b_), dtype=np.float64)
    )
    return out


def rate_prior(scale: float) -> tuple[float, float]:
    """The mixing distribution of `rate_bounds` for rates judged against `scale`: Beta(1, b).

    Its mean 1 / (1 + b) is `scale` (clamped to RATE_PRIOR_FLOOR..0.5), so its weight lies on
    the rates near the bound, where the decision is hard. Any mixing distribution fixed before
    the data gives a valid confidence sequence (the guarantee does not depend on it); this one
    decides soonest near the bound among those the simulations tried (`docs/gate.md`).
    """
    mean = min(max(scale, RATE_PRIOR_FLOOR), 0.5)
    return (1.0, (1.0 - mean) / mean)


def rate_bounds(
    successes: npt.ArrayLike,
    trials: npt.ArrayLike,
    alpha: npt.ArrayLike,
    prior: tuple[float, float],
) -> tuple[Floats, Floats]:
    """A confidence sequence (low, high) for a Bernoulli rate, valid at every number of trials.

    `successes` k of `trials` n (0 <= k <= n), at level 1 - `alpha`, with the mixing
    distribution Beta(a, b) = `prior` (see `rate_prior`); vectorised over broadcast arrays.
    With the calls' outcomes independent with rate p (or each with rate p given the ones
    before), P(p is ever outside [low, high], at any n) <= alpha: the two ends together, not
    alpha/2 each. No trials gives (0, 1).

    The interval is {p : M_n(p) < 1/alpha}, M_n(p) = B(a + k, b + n - k) / (B(a, b) p**k
    (1 - p)**(n - k)), the likelihood ratio of "rate drawn from Beta(a, b)" against "rate p"
    (Robbins 1970; Lai 1976). Equivalently k log p + (n - k) log(1 - p) > log B(a + k, b + n - k)
    - log B(a, b) + log alpha: the log-likelihood is concave, so this is one interval around
    k/n (which it always contains: M_n(k/n) <= 1). Each end is found by Newton's method on that
    concave function, in log p for the low end and log(1 - p) for the high end (both concave
    too), started outside the interval: every iterate stays outside, so the result is never
    narrower than the exact interval (stopping early would only widen it; 16 steps reach 1e-13
    relative for n up to 10**7); it is then rounded outward by a relative 1e-9.

    Raises ValueError for counts out of range, alpha outside (0, 1), or a non-positive prior.
    """
    a, b = prior
    if not (a > 0.0 and b > 0.0):
        raise ValueError(f"prior={prior!r}: both Beta shapes must be > 0")
    k, n, level_alpha = np.broadcast_arrays(
        np.asarray(successes, dtype=np.float64),
        np.asarray(trials, dtype=np.float64),
        np.asarray(alpha, dtype=np.float64),
    )
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("successes: must be within 0..trials")
    if np.any(level_alpha <= 0.0) or np.any(level_alpha >= 1.0):
        raise ValueError(f"alpha={alpha!r}: must be within 0..1 (exclusive)")
    failures = n - k
    # Inside the interval exactly where the log-likelihood exceeds `level` (always < 0).
    level = log_beta(a + k, b + failures) - log_beta(a, b) + np.log(level_alpha)
    # Row 0 solves for x = log p (the low end), row 1 for x = log(1 - p) (the high end): the
    # same concave function k x + (n - k) log(1 - e**x) with the counts swapped. Start at
    # x = level / own, outside the interval since own * x <= level there.
    own, other = np.stack([k, failures]), np.stack([failures, k])
    x = level / np.maximum(own, 1.0)
    live = own > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(_NEWTON_STEPS):
            complement = -np.expm1(x)
            gap = own * x + other * np.log(complement) - level
            slope = own - other * np.exp(x) / complement
            step = np.where(live & (slope > 0.0) & (gap < 0.0), -gap / slope, 0.0)
            x = x + step
            if np.all(np.abs(step) <= 1e-14 * np.abs(x)):
                break
    low: Floats = np.where(k > 0, np.exp(x[0]) * (1.0 - _OUTWARD), 0.0)
    high: Floats = np.where(failures > 0, np.minimum(-np.expm1(x[1]) * (1.0 + _OUTWARD), 1.0), 1.0)
    return low, high


def rate_difference_bounds(
    successes_1: npt.ArrayLike,
    trials_1: npt.ArrayLike,
    successes_2: npt.ArrayLike,
    trials_2: npt.ArrayLike,
    alpha: float,
    prior: tuple[float, float],
) -> tuple[Floats, Floats]:
    """A confidence sequence (low, high) for p1 - p2, two independent rates, at every look.

    Each rate gets its `rate_bounds` sequence at alpha/2; with probability at least 1 - alpha
    both hold at all of their sample sizes at once (a union bound), whatever order the two
    sides' trials arrive in, so p1 - p2 lies in (low_1 - high_2, high_1 - low_2) at every look.
    Either side without trials leaves the difference within (-1, 1) only as far as the other
    side's bounds allow (an empty side's bounds are (0, 1)).
    """
    shape = np.broadcast_shapes(
        np.shape(successes_1), np.shape(trials_1), np.shape(successes_2), np.shape(trials_2)
    )
    successes = np.stack([np.broadcast_to(successes_1, shape), np.broadcast_to(successes_2, shape)])
    trials = np.stack([np.broadcast_to(trials_1, shape), np.broadcast_to(trials_2, shape)])
    low, high = rate_bounds(successes, trials, alpha / 2.0, prior)
    out_low: Floats = low[0] - high[1]
    out_high: Floats = high[0] - low[1]
    return out_low, out_high


# ----- uniform boundaries -----------------------------------------------------------------------


@lru_cache(maxsize=8)
def riemann_zeta(s: float) -> float:
    """The Riemann zeta function at real s > 1 (Euler-Maclaurin; error below 1e-14)."""
    if not s > 1.0:
        raise ValueError(f"s={s!r}: zeta needs s > 1")
    n = 64
    head = math.fsum(math.pow(k, -s) for k in range(1, n))
    # Tail sum over k >= n: the integral, half the first term, and two Bernoulli corrections.
    tail = math.pow(n, 1.0 - s) / (s - 1.0) + 0.5 * math.pow(n, -s)
    tail += s * math.pow(n, -s - 1.0) / 12.0
    tail -= s * (s + 1.0) * (s + 2.0) * math.pow(n, -s - 3.0) / 720.0
    return head + tail


def stitching_boundary(
    v: npt.ArrayLike,
    alpha: float,
    v_min: float,
    c: float = 0.0,
    s: float = STITCH_S,
    eta: float = STITCH_ETA,
) -> Floats:
    """The polynomial stitching boundary S(v) of Howard et al. (2021), Theorem 1.

    For a process S_t that is sub-gamma with scale `c` and variance process V_t (here: a sum of
    centred Bernoulli variables, sub-gamma with c = (h - g)/3 for increments in [-g, h]),
    P(exists t: S_t >= S(V_t)) <= alpha, with

        S(v) = sqrt(k1**2 * v * l(v) + (k2 * c * l(v))**2) + k2 * c * l(v),
        l(v) = s * log(log(eta * v / v_min)) + log(zeta(s) / (alpha * log(eta)**s)),
        k1 = (eta**(1/4) + eta**(-1/4)) / sqrt(2),  k2 = (sqrt(eta) + 1) / 2,

    evaluated at max(v, v_min): below `v_min` the boundary stays flat, which the first epoch's
    linear bound still covers. Vectorised over `v`.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r}: must be within 0..1 (exclusive)")
    if v_min <= 0:
        raise ValueError(f"v_min={v_min!r}: must be > 0")
    k1 = (eta**0.25 + eta**-0.25) / math.sqrt(2.0)
    k2 = (math.sqrt(eta) + 1.0) / 2.0
    constant = math.log(riemann_zeta(s) / math.log(eta) ** s) + math.log(1.0 / alpha)
    use_v = np.maximum(np.asarray(v, dtype=np.float64), v_min)
    ell = s * np.log(np.log(eta * use_v / v_min)) + constant
    term2 = k2 * c * ell
    out: Floats = np.sqrt(k1 * k1 * use_v * ell + term2 * term2) + term2
    return out


def _lil_error(c: float, a: float) -> float:
    """The crossing probability bound of Howard and Ramdas (2022), Theorem 2, for constant C,
    minimised over the epoch spacing eta (the reference implementation's `find_optimal_C`).

    error(C, eta) = 4 exp(-gamma2 C) (1 + 1 / ((gamma2 - 1) log eta)),
    gamma2 = (2 / eta) (A - sqrt(2 (eta - 1) / C))**2, for eta in (1, eta_max) where
    gamma2 > 1.
    """

    def error(eta: float) -> float:
        gamma2 = 2.0 / eta * (a - math.sqrt(2.0 * (eta - 1.0) / c)) ** 2
        if gamma2 <= 1.0:
            return math.inf
        return 4.0 * math.exp(-gamma2 * c) * (1.0 + 1.0 / ((gamma2 - 1.0) * math.log(eta)))

    # eta_max solves sqrt(eta/2) + sqrt(2 (eta - 1) / C) = A, where gamma2 reaches 1.
    low, high = 1.0, 2.0 * a * a
    for _ in range(100):
        mid = (low + high) / 2.0
        if math.sqrt(mid / 2.0) + math.sqrt(2.0 * (mid - 1.0) / c) - a < 0:
            low = mid
        else:
            high = mid
    # Golden-section search for the minimum over (1, eta_max).
    left, right = 1.0, low
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = right - ratio * (right - left), left + ratio * (right - left)
    f1, f2 = error(x1), error(x2)
    for _ in range(200):
        if f1 <= f2:
            right, x2, f2 = x2, x1, f1
            x1 = right - ratio * (right - left)
            f1 = error(x1)
        else:
            left, x1, f1 = x1, x2, f2
            x2 = left + ratio * (right - left)
            f2 = error(x2)
    return min(f1, f2)


@lru_cache(maxsize=64)
def lil_constant(alpha: float, a: float = LIL_A) -> float:
    """The constant C that makes the band of `cdf_band_radius` err with probability alpha."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r}: must be within 0..1 (exclusive)")
    if not a > 1.0 / math.sqrt(2.0):
        raise ValueError(f"A={a!r}: must be > 1/sqrt(2)")
    low, high = 1.0, 5.0
    while _lil_error(high, a) > alpha:
        low, high = high, high * 2.0
    for _ in range(100):
        mid = (low + high) / 2.0
        if _lil_error(mid, a) > alpha:
            low = mid
        else:
            high = mid
    return high


def cdf_band_radius(
    n: npt.ArrayLike, alpha: float, n_min: float = TUNED_FROM, a: float = LIL_A
) -> Floats:
    """Half-width of a band around the empirical CDF valid at every sample size at once.

    With probability at least 1 - alpha, for all n >= n_min and every latency x at once,
    |F_n(x) - F(x)| <= A * sqrt((log(1 + log(n / n_min)) + C) / n) (Howard and Ramdas 2022,
    Theorem 2; C from `lil_constant`). Infinite below `n_min`. Vectorised over `n`.
    """
    count = np.asarray(n, dtype=np.float64)
    safe = np.maximum(count, n_min)
    radius = a * np.sqrt((np.log1p(np.log(safe / n_min)) + lil_constant(alpha, a)) / safe)
    out: Floats = np.where(count >= n_min, radius, np.inf)
    return out


# ----- the sketches as arrays -------------------------------------------------------------------


class SketchGrid:
    """Two latency sketches on one grid of bins, as arrays.

    Bin j holds values in (`low[j]`, `high[j]`]; bin 0 is the sketches' zero bin (0, MIN_VALUE].
    `at_most[side][j]` is the exact number of that side's values <= `high[j]`: both empirical
    CDFs are known exactly at every `high[j]`, and only bracketed in between. The grid is the
    union of the two sketches' non-empty bins, so adding empty bins changes no result.
    """

    __slots__ = ("at_most", "high", "low")

    def __init__(self, *sketches: LatencySketch) -> None:
        bins = [sketch.bins() for sketch in sketches]
        keys = np.unique(np.concatenate([k for k, _ in bins])) if bins else np.empty(0, np.int64)
        self.low: Floats = np.concatenate(([0.0], edges(keys - 1)))
        self.high: Floats = np.concatenate(([MIN_VALUE], edges(keys)))
        self.at_most: list[Counts] = []
        for sketch, (own_keys, counts) in zip(sketches, bins, strict=True):
            cumulative = np.concatenate(([0], np.cumsum(counts)))
            # Count of this sketch's bins with key <= each grid key.
            index = np.searchsorted(own_keys, keys, side="right")
            at_most = sketch.zeros + np.concatenate(([0], cumulative[index]))
            self.at_most.append(at_most.astype(np.int64))


# ----- latency: a fixed quantile ----------------------------------------------------------------


def quantile_bounds(
    low: Floats,
    high: Floats,
    at_most: npt.ArrayLike,
    p: float,
    alpha: float,
    tuned_from: float = TUNED_FROM,
) -> tuple[Floats, Floats]:
    """A confidence sequence (lower, upper) for the p-quantile of the latency distribution.

    `at_most` holds cumulative bin counts (last column: the sample size n), shaped (..., bins),
    on the grid `low`/`high` (see `SketchGrid`). With probability at least 1 - alpha the
    population quantile Q(p) lies in [lower, upper] at every n at once, alpha/2 on each side:

    - upper: the order statistic of rank ceil(n (p + r_hi)), where n r_hi is the stitching
      boundary for the count of observations below Q(p) (increments in [-p, 1 - p]: g = p,
      h = 1 - p, c = (1 - 2p)/3); +inf while that rank exceeds n;
    - lower: the order statistic of rank floor(n (p - r_lo)) + 1, where n r_lo bounds the
      shortfall of observations at or below Q(p) (g = 1 - p, h = p, c = (2p - 1)/3); 0 while
      that rank is below 1.

    (Howard and Ramdas 2022, Section 2, with the sub-Bernoulli to sub-gamma step of Howard et
    al. 2021.) An order statistic is known only up to its bin, so the lower bound is the low
    edge of the bin holding its rank and the upper bound the high edge: never less conservative.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p!r}: must be within 0..1 (exclusive)")
    counts = np.asarray(at_most, dtype=np.int64)
    n = counts[..., -1].astype(np.float64)
    safe_n = np.maximum(n, 1.0)
    variance = p * (1.0 - p)
    v_min = variance * tuned_from
    tail = alpha / 2.0
    r_low = stitching_boundary(variance * n, tail, v_min, c=(2.0 * p - 1.0) / 3.0) / safe_n
    r_high = stitching_boundary(variance * n, tail, v_min, c=(1.0 - 2.0 * p) / 3.0) / safe_n
    # The 1e-9 keeps float rounding on the conservative side of an integer rank.
    rank_low = np.floor(n * (p - r_low) - 1e-9) + 1.0
    rank_high = np.ceil(n * (p + r_high) + 1e-9)
    last = counts.shape[-1] - 1
    index_low = np.minimum((counts < rank_low[..., None]).sum(axis=-1), last)
    index_high = np.minimum((counts < rank_high[..., None]).sum(axis=-1), last)
    lower: Floats = np.where(rank_low >= 1.0, low[index_low], 0.0)
    upper: Floats = np.where(rank_high <= n, high[index_high], np.inf)
    return lower, upper


# ----- latency: stochastic order ----------------------------------------------------------------


@dataclass(frozen=True)
class CdfGap:
    """How far Python's latency CDF runs ahead of Rust's: sup over x of F_P(x) - F_R(x).

    The CDFs are compared at the grid's bin edges, where the sketches know both exactly; the
    edges lie a factor GAMMA (2%) apart in latency, so "at every latency" below means at every
    latency to within 2%. `estimate` is the empirical sup over the edges, `radius` the sum of the
    two sides' band radii, `at` the latency (us) where `estimate` is reached. On the bands' event
    (probability at least 1 - alpha_python - alpha_rust), at every sample size at once:

    - `estimate - radius > 0` proves that at latency `at` Python finishes a larger share of its
      calls than Rust: Rust is not stochastically faster or equal; it is slower there;
    - `estimate + radius <= margin` proves F_R(x) >= F_P(x) - margin at every edge x: Rust
      trails nowhere by more than `margin` of its calls.
    """

    estimate: Floats
    radius: Floats
    at: Floats

    @property
    def lower(self) -> Floats:
        """Lower confidence bound of sup_x F_P(x) - F_R(x) (never below 0, which it always is)."""
        out: Floats = np.maximum(self.estimate - self.radius, 0.0)
        return out

    @property
    def upper(self) -> Floats:
        """Upper confidence bound of sup_x F_P(x) - F_R(x) (at most 1)."""
        out: Floats = np.minimum(self.estimate + self.radius, 1.0)
        return out

    def slower(self) -> npt.NDArray[np.bool_]:
        """Evidence that Rust is slower at some latency (the test's rejection)."""
        out: npt.NDArray[np.bool_] = self.estimate - self.radius > 0.0
        return out

    def within(self, margin: float) -> npt.NDArray[np.bool_]:
        """Evidence that Rust is nowhere behind Python by more than `margin` of its calls."""
        out: npt.NDArray[np.bool_] = self.estimate + self.radius <= margin
        return out


def cdf_gap(
    high: Floats,
    at_most_python: npt.ArrayLike,
    at_most_rust: npt.ArrayLike,
    alpha_python: float,
    alpha_rust: float,
) -> CdfGap:
    """Compare two empirical CDFs on one grid under time-uniform bands (see `CdfGap`).

    `at_most_*` are cumulative bin counts shaped (..., bins) on the grid whose high edges are
    `high`; each side's band errs with probability at most its alpha, at every sample size.
    """
    python = np.asarray(at_most_python, dtype=np.float64)
    rust = np.asarray(at_most_rust, dtype=np.float64)
    n_python, n_rust = python[..., -1], rust[..., -1]
    f_python = python / np.maximum(n_python, 1.0)[..., None]
    f_rust = rust / np.maximum(n_rust, 1.0)[..., None]
    gap = f_python - f_rust
    best = np.argmax(gap, axis=-1)
    estimate = np.maximum(np.take_along_axis(gap, best[..., None], axis=-1)[..., 0], 0.0)
    radius = cdf_band_radius(n_python, alpha_python) + cdf_band_radius(n_rust, alpha_rust)
    return CdfGap(estimate, radius, high[best])
