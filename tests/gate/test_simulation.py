"""The gate's latency guarantees, shown by simulation (deterministic seeds).

A/A: both sides draw from one lognormal; the gate looks after every 50 Rust samples up to 20,000
and the share of runs that EVER FAIL a latency criterion must be at most alpha. A/B: Rust 20%
slower must FAIL, 20% faster must PASS, never the other way first. `benches/gate_sim.py` runs the
same with more runs and writes the figures the README quotes.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.config.schema import Criterion, GateConfig, OpCriteria, Percentages, StageConfig
from harness.gate import OpFigures, Outcome, SideFigures, WindowFigures, judge
from harness.gate.simulation import Scenario, simulate, summarise
from harness.gate.stats import SketchGrid
from harness.gate.verdict import latency_evidence
from harness.operations import Operation
from harness.sketch import LatencySketch

ALPHA = 0.05
DEFAULTS = OpCriteria()
# The hardest A/A: every ratio bound at 1.0, so the truth sits on every boundary.
ON_THE_BOUNDARY = OpCriteria(max_p50_ratio=1.0, max_p99_ratio=1.0)


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
    assert summary.fail_share == 1.0
    assert summary.wrong_before_right == 0
    assert summary.first_fail_p95 is not None and summary.first_fail_p95 <= 3_000


@pytest.mark.parametrize("share", [0.5, 0.05], ids=["equal", "canary"])
def test_a_rust_20_percent_faster_passes_and_never_fails(share):
    scenario = Scenario("faster", rust_scale=0.8, rust_share=share)
    summary = summarise(simulate(scenario, DEFAULTS, ALPHA, runs=100, seed=16), "PASS")
    assert summary.pass_share == 1.0
    assert summary.wrong_before_right == 0
    assert summary.first_pass_p95 is not None and summary.first_pass_p95 <= 20_000


def test_the_simulation_decides_as_judge_does_on_real_sketches_of_real_samples():
    """The vectorised path of the simulations is the gate's own: at every look, judge() on
    LatencySketch objects of drawn lognormal latencies gives the same result per criterion."""
    rng = np.random.default_rng(21)
    rust_all = 1.1 * rng.lognormal(np.log(90_000), 0.5, 3_000)
    python_all = rng.lognormal(np.log(90_000), 0.5, 6_000)
    stage = StageConfig("canary", Percentages(33, 33, 33, 33))
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
                criterion, grid.low, grid.high, *grid.at_most, gate.ops.of(op), ALPHA / 3
            )
            want = {1: Outcome.PASS, -1: Outcome.FAIL, 0: Outcome.INCONCLUSIVE}[int(evidence.code)]
            judged = verdict.of(op, criterion)
            assert judged is not None and judged.result is want, (look, criterion)
            assert judged.interval == (float(evidence.low), float(evidence.high))
