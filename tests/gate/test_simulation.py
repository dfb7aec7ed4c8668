"""The gate's guarantees under repeated looks, shown by simulation (deterministic seeds).

Latency, A/A: both sides draw from one lognormal; the gate looks after every 50 Rust samples up
to 20,000 and the share of runs that EVER FAIL a latency criterion must be at most alpha. A/B:
Rust 20% slower must FAIL, 20% faster must PASS, never the other way first.

Rates, the same looks: a Rust whose true error rate is at or under the bound (or whose excess
over Python's is) EVER FAILs in at most alpha of the runs; a Rust erring at 0.001 PASSes and at
0.02 FAILs, never the other way first. `benches/gate_sim.py` runs the same with more runs and
writes the figures docs/gate.md quotes.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.config.schema import Criterion, GateConfig, OpCriteria, Percentages, StageConfig
from harness.gate import OpFigures, Outcome, SideFigures, WindowFigures, judge
from harness.gate.simulation import (
    RateScenario,
    Scenario,
    Summary,
    rate_counts,
    simulate,
    simulate_rates,
    summarise,
)
from harness.gate.stats import SketchGrid, wilson
from harness.gate.verdict import latency_evidence, rate_evidence
from harness.operations import Operation
from harness.sketch import LatencySketch

ALPHA = 0.05
DEFAULTS = OpCriteria()
# The hardest A/A: every ratio bound at 1.0, so the truth sits on every boundary.
ON_THE_BOUNDARY = OpCriteria(max_p50_ratio=1.0, max_p99_ratio=1.0)


def assert_always_right(summary: Summary, expect: str, within: int) -> None:
    """Every run reached the `expect`ed decision, none decided the other way first, and 95% of
    them within `within` Rust samples."""
    if expect == "PASS":
        share, p95 = summary.pass_share, summary.first_pass_p95
    else:
        share, p95 = summary.fail_share, summary.first_fail_p95
    assert share == 1.0, summary
    assert summary.wrong_before_right == 0, summary
    assert p95 is not None and p95 <= within, summary


@pytest.mark.parametrize("share", [0.5, 0.05], ids=["equal", "canary"])
@pytest.mark.parametrize("criteria", [DEFAULTS, ON_THE_BOUNDARY], ids=["defaults", "bounds-1.0"])
def test_aa_runs_ever_fail_the_latency_criteria_in_at_most_alpha_of_runs(share, criteria):
    outcomes = simulate(Scenario("A/A", rust_share=share), criteria, ALPHA, runs=200, seed=14)
    summary = summarise(outcomes, "none")
    assert summary.fail_share <= ALPHA, summary


@pytest.mark.parametrize("share", [0.5, 0.05], ids=["equal", "canary"])
def test_a_rust_20_percent_slower_fails_and_never_passes_first(share):
    scenario = Scenario("slower", rust_scale=1.2, rust_share=share)
    summary = summarise(simulate(scenario, DEFAULTS, ALPHA, runs=100, seed=15), "FAIL")
    assert_always_right(summary, "FAIL", within=3_000)


@pytest.mark.parametrize("share", [0.5, 0.05], ids=["equal", "canary"])
def test_a_rust_20_percent_faster_passes_and_never_fails(share):
    scenario = Scenario("faster", rust_scale=0.8, rust_share=share)
    summary = summarise(simulate(scenario, DEFAULTS, ALPHA, runs=100, seed=16), "PASS")
    assert_always_right(summary, "PASS", within=20_000)


def test_the_simulation_decides_as_judge_does_on_real_sketches_of_real_samples():
    """The vectorised path of the simulations is the gate's own: at every look, judge() on
    LatencySketch objects of drawn lognormal latencies gives the same result per criterion."""
    rng = np.random.default_rng(21)
    rust_all = 1.1 * rng.lognormal(np.log(90_000), 0.5, 3_000)
    python_all = rng.lognormal(np.log(90_000), 0.5, 6_000)
    stage = StageConfig("canary", Percentages(33))
    gate = GateConfig()
    op = Operation.PLACE_ORDER
    for look in (1, 2, 5, 10, 20, 40, 60):
        rust, python = LatencySketch(), LatencySketch()
        rust.add_many(rust_all[: 50 * look])
        python.add_many(python_all[: 100 * look])
        figures = OpFigures(
            op, SideFigures(rust.n, latency=rust), SideFigures(python.n, latency=python)
        )
        verdict = judge(WindowFigures("canary", 0, 1, {op: figures}), gate, stage)
        grid = SketchGrid(rust, python)
        for criterion in (Criterion.p50_ratio, Criterion.p99_ratio, Criterion.not_slower):
            evidence = latency_evidence(
                criterion, grid.low, grid.high, *grid.at_most, gate.criteria(op), ALPHA / 3
            )
            want = {1: Outcome.PASS, -1: Outcome.FAIL, 0: Outcome.INCONCLUSIVE}[int(evidence.code)]
            judged = verdict.of(op, criterion)
            assert judged is not None and judged.result is want, (look, criterion)
            assert judged.interval == (float(evidence.low), float(evidence.high))


# ----- rates under repeated looks ---------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.001, 0.005, 0.008, 0.01])
def test_an_error_rate_at_or_under_the_bound_ever_fails_in_at_most_alpha_of_runs(rate):
    """max_error_rate 0.01, looked at after every 50 calls up to 20,000; 0.01 is the hardest
    case, the truth on the bound."""
    scenario = RateScenario("under", rust_rate=rate, rust_share=1.0)  # error_rate alone
    outcomes = simulate_rates(scenario, DEFAULTS, ALPHA, runs=200, seed=31)
    assert outcomes.criteria == (Criterion.error_rate,)
    summary = summarise(outcomes, "none")
    assert summary.fail_share <= ALPHA, summary


def test_the_same_looks_catch_a_one_look_wilson_bound_failing_too_often():
    """The simulation can see the problem it guards against: on the same runs at a true rate of
    0.008, Wilson's fixed-sample lower bound, looked at every 50 calls, exceeds 0.01 at some look
    in more than alpha of the runs."""
    runs = 200
    counts = rate_counts(RateScenario("0.008", rust_rate=0.008, rust_share=1.0), runs, seed=31)
    ever = 0
    for errors, calls in zip(counts.rust_errors, counts.rust_calls, strict=True):
        ever += any(
            wilson(int(k), int(n), ALPHA)[0] > 0.01 for k, n in zip(errors, calls, strict=True)
        )
    assert ever / runs > ALPHA


@pytest.mark.parametrize("share", [0.5, 0.05], ids=["equal", "canary"])
@pytest.mark.parametrize("rust_rate", [0.002, 0.006, 0.007], ids=["same", "0.004", "on-bound"])
def test_an_error_excess_at_or_under_the_bound_ever_fails_in_at_most_alpha_of_runs(
    share, rust_rate
):
    """Python errs at 0.002; Rust at the same rate, 0.004 more, or 0.005 more (on the bound
    max_error_excess 0.005)."""
    scenario = RateScenario("excess", rust_rate=rust_rate, python_rate=0.002, rust_share=share)
    outcomes = simulate_rates(scenario, DEFAULTS, ALPHA, runs=200, seed=32)
    for criterion in outcomes.criteria:
        assert (outcomes.first_fail[criterion] > 0).mean() <= ALPHA, criterion


@pytest.mark.parametrize("share", [0.5, 0.05], ids=["equal", "canary"])
def test_a_rust_erring_at_0_001_passes_and_never_fails(share):
    scenario = RateScenario("0.001", rust_rate=0.001, python_rate=0.001, rust_share=share)
    summary = summarise(simulate_rates(scenario, DEFAULTS, ALPHA, runs=200, seed=33), "PASS")
    assert_always_right(summary, "PASS", within=5_000)


@pytest.mark.parametrize("share", [0.5, 0.05], ids=["equal", "canary"])
def test_a_rust_erring_at_0_02_fails_and_never_passes_first(share):
    scenario = RateScenario("0.02", rust_rate=0.02, python_rate=0.002, rust_share=share)
    summary = summarise(simulate_rates(scenario, DEFAULTS, ALPHA, runs=200, seed=34), "FAIL")
    assert_always_right(summary, "FAIL", within=4_000)


def test_the_rate_simulation_decides_as_judge_does():
    """At every look of a run, judge() on the window's counts gives the same result and
    interval for error_rate and error_excess as the vectorised path of the simulations."""
    scenario = RateScenario("x", rust_rate=0.03, python_rate=0.004, rust_share=0.25)
    counts = rate_counts(scenario, runs=1, seed=35)
    stage = StageConfig("canary", Percentages(25))
    gate = GateConfig()
    op = Operation.PLACE_ORDER
    seen = set()
    for look in range(scenario.looks):
        rust = SideFigures(int(counts.rust_calls[0, look]), int(counts.rust_errors[0, look]))
        python = SideFigures(int(counts.python_calls[0, look]), int(counts.python_errors[0, look]))
        verdict = judge(
            WindowFigures("canary", 0, 1, {op: OpFigures(op, rust, python)}), gate, stage
        )
        for criterion in (Criterion.error_rate, Criterion.error_excess):
            evidence = rate_evidence(
                criterion,
                counts.rust_errors[0, look],
                counts.rust_calls[0, look],
                counts.python_errors[0, look],
                counts.python_calls[0, look],
                gate.criteria(op),
                ALPHA,
            )
            want = {1: Outcome.PASS, -1: Outcome.FAIL, 0: Outcome.INCONCLUSIVE}[int(evidence.code)]
            judged = verdict.of(op, criterion)
            assert judged is not None and judged.result is want, (look, criterion)
            assert judged.interval == (float(evidence.low), float(evidence.high))
            seen.add((criterion, want))
    assert {want for _, want in seen} == {Outcome.INCONCLUSIVE, Outcome.FAIL}
