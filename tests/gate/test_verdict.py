"""judge(): every criterion passing, failing and inconclusive; skipped criteria; the verdict."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from harness.config.schema import (
    Criterion,
    GateConfig,
    OpCriteria,
    Percentages,
    StageConfig,
)
from harness.gate import OpFigures, Outcome, SideFigures, WindowFigures, judge, stats
from harness.operations import Operation
from harness.sketch import LatencySketch

PLACE = Operation.PLACE_ORDER
BARS = Operation.AGGREGATE_BARS
SECOND = 1_000_000_000


def stage(percent: float = 50.0, shadow: float = 0.25, name: str = "canary") -> StageConfig:
    return StageConfig(name=name, percent=Percentages(percent), shadow_sample_rate=shadow)


def gate(**changes) -> GateConfig:
    """The shipped defaults, with `changes` applied to every operation's criteria."""
    criteria = replace(OpCriteria(min_shadow_comparisons=100), **changes)
    return GateConfig(ops={str(op): replace(criteria) for op in Operation})


def sketch(n: int, scale: float = 1.0, seed: int = 0) -> LatencySketch:
    out = LatencySketch()
    if n:
        out.add_many(scale * np.random.default_rng(seed).lognormal(np.log(90_000), 0.5, n))
    return out


def side(calls: int, errors: int = 0, fallbacks: int = 0, scale: float = 1.0, seed: int = 0):
    return SideFigures(calls, errors, fallbacks, sketch(calls - errors - fallbacks, scale, seed))


def healthy(op: Operation, n: int = 20_000, **changes) -> OpFigures:
    """Figures every criterion passes on: Rust 20% faster, no errors, enough of everything."""
    figures = OpFigures(op, side(n, scale=0.8, seed=1), side(n, seed=2), 200, 0)
    return replace(figures, **changes)


def window(ops: dict[Operation, OpFigures], seconds: float = 600, name: str = "canary"):
    return WindowFigures(name, 10 * SECOND, 10 * SECOND + int(seconds * SECOND), ops)


def result(verdict, op, criterion):
    found = verdict.of(op, criterion)
    assert found is not None, f"{criterion} of {op} was skipped"
    return found


def one(criterion, op=PLACE, cfg=None, st=None, seconds=600, **changes):
    verdict = judge(window({op: healthy(op, **changes)}, seconds), cfg or gate(), st or stage())
    return result(verdict, op, criterion)


# ----- each criterion ---------------------------------------------------------------------------


def test_healthy_figures_pass_every_criterion():
    verdict = judge(window({op: healthy(op) for op in Operation}), gate(), stage())
    assert verdict.result is Outcome.PASS
    assert {c.result for c in verdict.criteria} == {Outcome.PASS}
    assert len(verdict.criteria) == 1 + 4 * 8  # soak, 7 per operation and its shadow


def test_min_samples_passes_with_enough_on_each_side_and_is_never_a_failure():
    assert one(Criterion.min_samples).result is Outcome.PASS
    few = one(Criterion.min_samples, python=side(99, seed=2))
    assert few.result is Outcome.INCONCLUSIVE
    assert few.figure == 99 and few.bound == 100
    assert one(Criterion.min_samples, rust=side(0), python=side(0)).result is Outcome.INCONCLUSIVE


@pytest.mark.parametrize(
    ("criterion", "field"),
    [(Criterion.fallback_rate, "fallbacks"), (Criterion.error_rate, "errors")],
)
@pytest.mark.parametrize(
    ("count", "calls", "want"),
    [
        (0, 2_000, Outcome.PASS),  # anytime-valid upper 0.0030 <= 0.01
        (60, 1_000, Outcome.FAIL),  # lower 0.034 > 0.01
        (10, 1_000, Outcome.INCONCLUSIVE),  # [0.0034, 0.022] straddles 0.01
        (0, 0, Outcome.INCONCLUSIVE),  # nothing known
    ],
)
def test_rust_rates_are_judged_by_their_anytime_valid_bounds(criterion, field, count, calls, want):
    rust = SideFigures(calls, **{field: count}, latency=sketch(calls - count, 0.8))
    judged = one(criterion, rust=rust)
    assert judged.result is want
    assert judged.bound == 0.01
    low, high = judged.interval
    assert low <= (judged.figure or 0.0) <= high
    assert "anytime-valid 95% interval" in judged.detail


@pytest.mark.parametrize("criterion", [Criterion.fallback_rate, Criterion.error_rate])
def test_a_clean_rate_waits_for_more_calls_than_one_looks_wilson_bound_would(criterion):
    """0 in 400 calls: Wilson's upper bound (0.0095) would PASS at this one look, but a bound
    that must hold at every look is wider (0.0115) and waits; 0 in 600 calls PASSes."""
    field = "fallbacks" if criterion is Criterion.fallback_rate else "errors"
    assert stats.wilson(0, 400, 0.05)[1] < 0.01
    early = one(criterion, rust=SideFigures(400, **{field: 0}, latency=sketch(400, 0.8)))
    assert early.result is Outcome.INCONCLUSIVE
    assert early.interval[1] > 0.01
    later = one(criterion, rust=SideFigures(600, **{field: 0}, latency=sketch(600, 0.8)))
    assert later.result is Outcome.PASS


def test_a_rust_failing_half_its_calls_fails_error_rate_within_ten_calls():
    rust = SideFigures(10, errors=5, latency=sketch(5, 0.8))
    judged = one(Criterion.error_rate, rust=rust)
    assert judged.result is Outcome.FAIL
    assert judged.interval[0] > 0.01


@pytest.mark.parametrize(
    ("rust", "python", "want"),
    [
        ((0, 5_000), (0, 5_000), Outcome.PASS),  # [-0.0015, 0.0015]
        ((100, 1_000), (10, 10_000), Outcome.FAIL),  # excess ~0.099, lower 0.056 > 0.005
        ((8, 1_000), (2, 1_000), Outcome.INCONCLUSIVE),
    ],
)
def test_error_excess_is_judged_by_the_anytime_valid_interval_of_the_difference(rust, python, want):
    judged = one(
        Criterion.error_excess, rust=side(rust[1], rust[0]), python=side(python[1], python[0])
    )
    assert judged.result is want
    assert judged.figure == pytest.approx(rust[0] / rust[1] - python[0] / python[1])
    low, high = judged.interval
    assert low <= judged.figure <= high
    assert "anytime-valid 95% interval of the excess" in judged.detail


@pytest.mark.parametrize("criterion", [Criterion.p50_ratio, Criterion.p99_ratio])
def test_latency_ratios_pass_fail_and_wait(criterion):
    assert one(criterion).result is Outcome.PASS  # Rust 0.8x
    slow = one(criterion, rust=side(20_000, scale=2.0, seed=1))
    assert slow.result is Outcome.FAIL  # ratio 2 > 1.10 and > 1.50
    assert slow.interval[0] > slow.bound
    assert slow.figure == pytest.approx(2.0, rel=0.1)
    early = one(criterion, rust=side(30, scale=0.8, seed=1), python=side(30, seed=2))
    assert early.result is Outcome.INCONCLUSIVE


def test_p99_bound_at_one_passes_only_a_faster_rust():
    cfg = gate(max_p99_ratio=1.0)
    assert one(Criterion.p99_ratio, cfg=cfg).result is Outcome.PASS
    same = one(Criterion.p99_ratio, cfg=cfg, rust=side(20_000, scale=1.0, seed=1))
    assert same.result is Outcome.INCONCLUSIVE


def test_not_slower_fails_on_a_slower_rust_and_passes_a_faster_one():
    assert one(Criterion.not_slower).result is Outcome.PASS
    slow = one(Criterion.not_slower, rust=side(20_000, scale=1.2, seed=1))
    assert slow.result is Outcome.FAIL
    assert "slower" in slow.detail
    assert slow.interval[0] > 0
    early = one(Criterion.not_slower, rust=side(150, scale=1.2, seed=1), python=side(150, seed=2))
    assert early.result is Outcome.INCONCLUSIVE


def test_not_slower_switched_off_is_skipped_and_leaves_alpha_to_the_others():
    verdict = judge(window({PLACE: healthy(PLACE)}), gate(not_slower=False), stage())
    assert verdict.of(PLACE, Criterion.not_slower) is None
    assert any(s.criterion is Criterion.not_slower and "off" in s.reason for s in verdict.skipped)
    assert "alpha 0.025" in result(verdict, PLACE, Criterion.p50_ratio).detail


def test_a_null_ratio_bound_is_skipped_and_leaves_alpha_to_the_others():
    verdict = judge(window({PLACE: healthy(PLACE)}), gate(max_p99_ratio=None), stage())
    assert verdict.of(PLACE, Criterion.p99_ratio) is None
    assert any(s.criterion is Criterion.p99_ratio and "null" in s.reason for s in verdict.skipped)
    assert "alpha 0.025" in result(verdict, PLACE, Criterion.p50_ratio).detail


@pytest.mark.parametrize(
    ("comparisons", "mismatches", "want"),
    [
        (150, 0, Outcome.PASS),
        (150, 1, Outcome.FAIL),
        (3, 1, Outcome.FAIL),
        (50, 0, Outcome.INCONCLUSIVE),
    ],
)
def test_shadow_fails_on_a_mismatch_and_passes_after_enough_comparisons(
    comparisons, mismatches, want
):
    judged = one(
        Criterion.shadow, op=BARS, shadow_comparisons=comparisons, shadow_mismatches=mismatches
    )
    assert judged.result is want
    assert judged.figure == mismatches and judged.bound == 0


def test_soak_passes_after_min_soak_s_and_is_never_a_failure():
    assert one(Criterion.soak, op=None, seconds=300).result is Outcome.PASS
    young = one(Criterion.soak, op=None, seconds=299)
    assert young.result is Outcome.INCONCLUSIVE
    assert young.figure == pytest.approx(299) and young.bound == 300


# ----- what is skipped --------------------------------------------------------------------------


def test_an_operation_at_zero_percent_skips_every_rust_criterion():
    verdict = judge(window({PLACE: healthy(PLACE)}, name="off"), gate(), stage(0.0, 0.0, "off"))
    assert [c.criterion for c in verdict.criteria] == [Criterion.soak]
    reasons = {(s.op, s.criterion): s.reason for s in verdict.skipped}
    assert "0% at stage 'off'" in reasons[(PLACE, Criterion.error_rate)]
    assert "no shadow sampling" in reasons[(PLACE, Criterion.shadow)]
    assert "no shadow sampling" in reasons[(BARS, Criterion.shadow)]
    assert verdict.result is Outcome.PASS


def test_the_shadow_stage_judges_order_shadows_with_no_rust_traffic():
    few = OpFigures(PLACE, python=side(500), shadow_comparisons=500, shadow_mismatches=1)
    verdict = judge(window({PLACE: few}, name="shadow"), gate(), stage(0.0, 1.0, "shadow"))
    judged = result(verdict, PLACE, Criterion.shadow)
    assert judged.result is Outcome.FAIL and judged.figure == 1
    fine = OpFigures(PLACE, python=side(500), shadow_comparisons=500, shadow_mismatches=0)
    verdict = judge(window({PLACE: fine}, name="shadow"), gate(), stage(0.0, 1.0, "shadow"))
    assert result(verdict, PLACE, Criterion.shadow).result is Outcome.PASS


def test_the_shadow_stage_judges_aggregation_shadows_with_no_rust_traffic():
    figures = OpFigures(BARS, python=side(500), shadow_comparisons=500, shadow_mismatches=0)
    verdict = judge(window({BARS: figures}, name="shadow"), gate(), stage(0.0, 1.0, "shadow"))
    assert result(verdict, BARS, Criterion.shadow).result is Outcome.PASS
    assert verdict.of(BARS, Criterion.min_samples) is None


def test_full_rust_skips_the_comparisons_with_python():
    figures = healthy(PLACE, python=SideFigures())
    verdict = judge(
        window({PLACE: figures}, name="production"), gate(), stage(100.0, 0.01, "production")
    )
    judged = {c.criterion for c in verdict.criteria if c.op is PLACE}
    # The order shadow still compares a sample (on the Python side, which sends nothing).
    assert judged == {
        Criterion.min_samples,
        Criterion.fallback_rate,
        Criterion.error_rate,
        Criterion.shadow,
    }
    skipped = {s.criterion for s in verdict.skipped if s.op is PLACE}
    assert {
        Criterion.error_excess,
        Criterion.p50_ratio,
        Criterion.p99_ratio,
        Criterion.not_slower,
    } <= skipped
    assert result(verdict, PLACE, Criterion.min_samples).result is Outcome.PASS


# ----- the verdict ------------------------------------------------------------------------------


def test_one_failure_fails_the_verdict_and_one_open_question_keeps_it_inconclusive():
    ops = {op: healthy(op) for op in Operation}
    assert judge(window(ops), gate(), stage()).result is Outcome.PASS
    ops[PLACE] = healthy(PLACE, python=side(50, seed=2))  # min_samples INCONCLUSIVE
    assert judge(window(ops), gate(), stage()).result is Outcome.INCONCLUSIVE
    ops[BARS] = healthy(BARS, shadow_mismatches=1)
    assert judge(window(ops), gate(), stage()).result is Outcome.FAIL


def test_critical_failures_are_the_failed_criteria_marked_critical():
    ops = {op: healthy(op) for op in Operation}
    ops[PLACE] = healthy(PLACE, rust=side(20_000, errors=900, scale=2.0, seed=1))
    ops[BARS] = healthy(BARS, shadow_mismatches=2)
    cfg = gate(critical=[Criterion.error_rate, Criterion.shadow])
    verdict = judge(window(ops), cfg, stage())
    failed = {(c.op, c.criterion) for c in verdict.criteria if c.result is Outcome.FAIL}
    assert (PLACE, Criterion.p50_ratio) in failed  # failed, but not critical
    critical = {(c.op, c.criterion) for c in verdict.critical_failures()}
    assert critical == {(PLACE, Criterion.error_rate), (BARS, Criterion.shadow)}


def test_to_dict_has_stable_keys_and_is_strict_json():
    early = OpFigures(PLACE, side(30, scale=0.8), side(30))  # infinite upper bounds
    verdict = judge(window({PLACE: early}), gate(), stage())
    data = verdict.to_dict()
    assert list(data) == [
        "verdict",
        "stage",
        "since",
        "until",
        "alpha",
        "gate_settings",
        "criteria",
        "skipped",
        "build_id",
        "other_builds_calls",
        "migration",
    ]
    assert data["verdict"] == "INCONCLUSIVE" and data["stage"] == "canary"
    assert (data["build_id"], data["other_builds_calls"]) == (None, 0)  # judge alone: no build
    assert data["since"] == "1970-01-01T00:00:10.000+00:00"
    for row in data["criteria"]:
        assert list(row) == [
            "op",
            "criterion",
            "result",
            "figure",
            "bound",
            "interval",
            "detail",
            "critical",
        ]
        assert row["result"] in {"PASS", "FAIL", "INCONCLUSIVE"}
    for row in data["skipped"]:
        assert list(row) == ["op", "criterion", "reason"]
    p99 = next(r for r in data["criteria"] if r["criterion"] == "p99_ratio")
    assert p99["interval"][1] is None  # an infinite bound is null, not Infinity
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data


def test_judge_refuses_figures_of_another_stage():
    with pytest.raises(ValueError, match="stage 'canary' judged against 'staging'"):
        judge(window({}), gate(), stage(name="staging"))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SideFigures(10, errors=11), "errors=11"),
        (lambda: SideFigures(-1), "calls=-1"),
        (
            lambda: OpFigures(PLACE, shadow_comparisons=1, shadow_mismatches=2),
            "shadow_mismatches=2",
        ),
        (lambda: WindowFigures("x", 5, 4), "until_ns=4"),
        (lambda: WindowFigures("x", 0, 1, {PLACE: OpFigures(BARS)}), "holds the figures"),
    ],
)
def test_impossible_figures_are_refused_naming_the_field(make, message):
    with pytest.raises(ValueError, match=message):
        make()
