"""Simulated rollouts that show the gate's guarantees hold under repeated looks, vectorised.

Latency: a run draws latencies for both sides from lognormal distributions (Rust's scaled by
`Scenario.rust_scale`: 1.0 is an A/A run), and judges the latency criteria after every
`look_every` Rust samples, up to `max_rust` of them, with the gate's own decision function
(`harness.gate.verdict.latency_evidence`). The gate sees a side only through its latency sketch,
the count of values in each 1% bin, so a run draws those counts directly: the counts of a block of
n i.i.d. values in fixed bins are exactly Multinomial(n, bin probabilities), the same in
distribution as drawing the n values and binning them. This makes 400 looks of a run one
(looks x bins) array, so hundreds of runs take seconds (`tests/gate/test_simulation.py` checks
that the gate's `judge` on real sketches of real samples decides as this path does).

Rates: a run draws each call's error as a Bernoulli variable (Rust's rate `RateScenario.rust_rate`,
Python's `python_rate`), counted block by block as binomials, and judges error_rate and
error_excess at every look with `harness.gate.verdict.rate_evidence`, all runs and looks in one
array. fallback_rate is the same computation as error_rate on another count.

Used by the tests (false FAILs at most alpha; real regressions and improvements decided the right
way) and by `benches/gate_sim.py`, which prints and writes the figures docs/gate.md quotes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from harness.config.schema import Criterion, OpCriteria
from harness.gate.verdict import LATENCY_CRITERIA, latency_evidence, rate_evidence
from harness.sketch import GAMMA, MIN_VALUE, edges

__all__ = [
    "RateCounts",
    "RateScenario",
    "RunOutcomes",
    "Scenario",
    "Schedule",
    "Summary",
    "rate_counts",
    "simulate",
    "simulate_rates",
    "summarise",
]

_LOG_GAMMA = math.log(GAMMA)


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """How a simulated rollout is looked at: `rust_share` of the calls go to Rust (0.5: equal;
    0.05: a canary), and the gate looks after every `look_every` Rust samples, up to
    `max_rust`."""

    rust_share: float = 0.5
    look_every: int = 50
    max_rust: int = 20_000

    @property
    def python_per_look(self) -> int:
        """Python samples between two looks."""
        return round(self.look_every * (1.0 - self.rust_share) / self.rust_share)

    @property
    def looks(self) -> int:
        """Number of looks per run."""
        return self.max_rust // self.look_every


@dataclass(frozen=True)
class Scenario(Schedule):
    """One simulated rollout of the latency criteria.

    Python's latency is lognormal with median `median_us` and log-sd `sigma`; Rust's is the
    same times `rust_scale` (1.0: A/A; 1.2: 20% slower; 0.8: 20% faster).
    """

    name: str
    rust_scale: float = 1.0
    sigma: float = 0.5
    median_us: float = 90_000.0


@dataclass(frozen=True)
class RateScenario(Schedule):
    """One simulated rollout of the rate criteria: each Rust call errs with probability
    `rust_rate`, each Python call with `python_rate`, independently."""

    name: str
    rust_rate: float
    python_rate: float = 0.0


def _grid(scenario: Scenario) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sketch keys covering both sides' distributions to 9 sigma, and the grid's edges."""
    centre = math.log(scenario.median_us)
    spread = 9.0 * scenario.sigma + abs(math.log(scenario.rust_scale))
    first = math.floor((centre - spread) / _LOG_GAMMA)
    last = math.ceil((centre + spread) / _LOG_GAMMA)
    keys = np.arange(first, last + 1, dtype=np.int64)
    return keys, np.asarray(keys, dtype=np.float64)


def _bin_probabilities(keys: npt.NDArray[np.int64], median_us: float, sigma: float) -> list[float]:
    """P(value in bin k) = P(GAMMA**(k-1) < X <= GAMMA**k) for X lognormal; tails folded in."""
    normal = NormalDist(math.log(median_us), sigma)
    below = [normal.cdf(float(k) * _LOG_GAMMA) for k in keys]  # P(X <= upper edge of bin k)
    probabilities = [below[0]] + [b - a for a, b in pairwise(below)]
    probabilities[-1] += 1.0 - below[-1]
    return [max(p, 0.0) for p in probabilities]


def _at_most(
    rng: np.random.Generator, per_look: int, probabilities: Sequence[float], looks: int
) -> npt.NDArray[np.int64]:
    """Cumulative bin counts (looks, 1 + bins) of one side: zero bin first, as `SketchGrid`."""
    blocks = rng.multinomial(per_look, probabilities, size=looks)
    counts = np.cumsum(blocks, axis=0)
    at_most = np.cumsum(counts, axis=1)
    return np.concatenate([np.zeros((looks, 1), dtype=np.int64), at_most], axis=1)


@dataclass
class RunOutcomes:
    """Per run, the first look (1-based; 0 = never) at which each thing happened."""

    scenario: Schedule
    criteria: tuple[Criterion, ...]
    first_fail: dict[Criterion, npt.NDArray[np.int64]] = field(default_factory=dict)
    first_pass: dict[Criterion, npt.NDArray[np.int64]] = field(default_factory=dict)
    any_fail: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    all_pass: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))


def _first(flags: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """1-based index of the first True along the last axis; 0 when none."""
    hit = flags.any(axis=-1)
    out: npt.NDArray[np.int64] = np.where(hit, flags.argmax(axis=-1) + 1, 0).astype(np.int64)
    return out


def simulate(
    scenario: Scenario, criteria: OpCriteria, alpha: float, runs: int, seed: int
) -> RunOutcomes:
    """Run `runs` independent rollouts of `scenario`, judging the latency criteria at each look.

    The criteria judged are those the gate judges for an operation with both sides live
    (p50_ratio, p99_ratio, and not_slower unless off), sharing `alpha` as `judge` does.
    """
    judged = tuple(
        c for c in LATENCY_CRITERIA if c is not Criterion.not_slower or criteria.not_slower
    )
    share = alpha / len(judged)
    keys, _ = _grid(scenario)
    low = np.concatenate(([0.0], edges(keys - 1)))
    high = np.concatenate(([MIN_VALUE], edges(keys)))
    python_p = _bin_probabilities(keys, scenario.median_us, scenario.sigma)
    rust_p = _bin_probabilities(keys, scenario.median_us * scenario.rust_scale, scenario.sigma)
    rng = np.random.default_rng(seed)
    looks = scenario.looks
    codes = {c: np.zeros((runs, looks), dtype=np.int8) for c in judged}
    for run in range(runs):
        rust = _at_most(rng, scenario.look_every, rust_p, looks)
        python = _at_most(rng, scenario.python_per_look, python_p, looks)
        for criterion in judged:
            evidence = latency_evidence(criterion, low, high, rust, python, criteria, share)
            codes[criterion][run] = evidence.code
    return _outcomes(scenario, codes)


def _outcomes(scenario: Schedule, codes: dict[Criterion, npt.NDArray[np.int8]]) -> RunOutcomes:
    """First FAIL / PASS per criterion, first FAIL of any and first PASS of all, per run."""
    judged = tuple(codes)
    out = RunOutcomes(scenario, judged)
    for criterion in judged:
        out.first_fail[criterion] = _first(codes[criterion] == -1)
        out.first_pass[criterion] = _first(codes[criterion] == 1)
    stacked = np.stack([codes[c] for c in judged])
    out.any_fail = _first((stacked == -1).any(axis=0))
    out.all_pass = _first((stacked == 1).all(axis=0))
    return out


@dataclass(frozen=True)
class RateCounts:
    """Cumulative counts at every look of every run, each shaped (runs, looks): Rust's calls
    and errors, Python's calls and errors."""

    rust_calls: npt.NDArray[np.int64]
    rust_errors: npt.NDArray[np.int64]
    python_calls: npt.NDArray[np.int64]
    python_errors: npt.NDArray[np.int64]


def rate_counts(scenario: RateScenario, runs: int, seed: int) -> RateCounts:
    """Draw `runs` independent rollouts of `scenario`: the error counts between looks are
    Binomial(calls between looks, rate), the same in distribution as drawing each call."""
    rng = np.random.default_rng(seed)
    looks = scenario.looks
    shape = (runs, looks)
    per_python = scenario.python_per_look
    rust_errors = np.cumsum(rng.binomial(scenario.look_every, scenario.rust_rate, shape), axis=1)
    python_errors = np.cumsum(rng.binomial(per_python, scenario.python_rate, shape), axis=1)
    look = np.arange(1, looks + 1, dtype=np.int64)
    return RateCounts(
        np.broadcast_to(look * scenario.look_every, shape),
        rust_errors.astype(np.int64),
        np.broadcast_to(look * per_python, shape),
        python_errors.astype(np.int64),
    )


def simulate_rates(
    scenario: RateScenario, criteria: OpCriteria, alpha: float, runs: int, seed: int
) -> RunOutcomes:
    """Run `runs` independent rollouts of `scenario`, judging error_rate and (when Python has
    traffic) error_excess at each look, each at `alpha`, as `judge` does."""
    counts = rate_counts(scenario, runs, seed)
    judged = [Criterion.error_rate]
    if scenario.rust_share < 1.0:
        judged.append(Criterion.error_excess)
    codes = {
        criterion: rate_evidence(
            criterion,
            counts.rust_errors,
            counts.rust_calls,
            counts.python_errors,
            counts.python_calls,
            criteria,
            alpha,
        ).code
        for criterion in judged
    }
    return _outcomes(scenario, codes)


@dataclass(frozen=True)
class Summary:
    """What a batch of runs shows: how often each decision came, and how soon (in Rust samples).

    `fail_share` / `pass_share`: share of runs that ever FAILed (any judged criterion) / ever
    PASSed (all of them), with Wilson 95% intervals; `first_*_median` / `_p95`: Rust samples at
    the first FAIL / all-PASS over the runs that reached it (None when fewer than half / 95% of
    the runs did; the percentile counts never-decided runs as not yet decided).
    """

    runs: int
    fail_share: float
    fail_interval: tuple[float, float]
    pass_share: float
    pass_interval: tuple[float, float]
    first_fail_median: int | None
    first_fail_p95: int | None
    first_pass_median: int | None
    first_pass_p95: int | None
    wrong_before_right: int


def _percentile_of_runs(first: npt.NDArray[np.int64], q: float, look_every: int) -> int | None:
    """Rust samples by which a share q of all runs had decided (None: not within the horizon)."""
    never = np.iinfo(np.int64).max
    times = np.sort(np.where(first > 0, first, never))
    index = math.ceil(q * len(times)) - 1
    value = int(times[index])
    return None if value == never else value * look_every


def summarise(outcomes: RunOutcomes, expect: str) -> Summary:
    """Summarise runs; `expect` is the right decision ("FAIL", "PASS" or "none" for A/A), used
    to count runs whose wrong decision came first."""
    from harness.gate.stats import wilson

    runs = len(outcomes.any_fail)
    fails = int((outcomes.any_fail > 0).sum())
    passes = int((outcomes.all_pass > 0).sum())
    every = outcomes.scenario.look_every
    big = np.iinfo(np.int64).max
    fail_at = np.where(outcomes.any_fail > 0, outcomes.any_fail, big)
    pass_at = np.where(outcomes.all_pass > 0, outcomes.all_pass, big)
    if expect == "FAIL":
        wrong = int((pass_at < fail_at).sum())
    elif expect == "PASS":
        wrong = int((fail_at < big).sum())
    else:
        wrong = fails
    return Summary(
        runs=runs,
        fail_share=fails / runs,
        fail_interval=wilson(fails, runs, 0.05),
        pass_share=passes / runs,
        pass_interval=wilson(passes, runs, 0.05),
        first_fail_median=_percentile_of_runs(outcomes.any_fail, 0.5, every),
        first_fail_p95=_percentile_of_runs(outcomes.any_fail, 0.95, every),
        first_pass_median=_percentile_of_runs(outcomes.all_pass, 0.5, every),
        first_pass_p95=_percentile_of_runs(outcomes.all_pass, 0.95, every),
        wrong_before_right=wrong,
    )
