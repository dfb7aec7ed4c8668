"""The gate's guarantees and speed, measured: A/A false-FAIL rates, A/B samples-to-decision, the
rate criteria under repeated looks, and the time to judge a 1,000,000-outcome window.

    python benches/gate_sim.py [--aa-runs 1000] [--ab-runs 200] [--rate-runs 400]
                               [--report benches/reports/gate.md]

Latencies are lognormal (median 90 ms, log-sd 0.5, as the demo gateway's round trip); Rust's is
Python's times 1.0 (A/A), 1.2 (20% slower) or 0.8 (20% faster); the gate looks after every 50
Rust samples up to 20,000, with equal traffic or a 5% canary, judging the shipped place_order
criteria at alpha 0.05 (`harness.gate.simulation`). Errors are Bernoulli at fixed rates, looked
at on the same schedule; the one-look Wilson and Newcombe intervals the gate used before are
applied to the same runs for contrast. Prints the tables and writes the report docs/gate.md
quotes, naming the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

from harness.config.schema import Criterion, GateConfig, OpCriteria, Percentages, StageConfig
from harness.gate import OpFigures, SideFigures, WindowFigures, judge
from harness.gate.simulation import (
    RateCounts,
    RateScenario,
    RunOutcomes,
    Scenario,
    rate_counts,
    simulate,
    simulate_rates,
    summarise,
)
from harness.gate.stats import newcombe, wilson
from harness.operations import Operation
from harness.sketch import LatencySketch

ALPHA = 0.05
DEFAULTS = OpCriteria()
ON_THE_BOUNDARY = OpCriteria(max_p50_ratio=1.0, max_p99_ratio=1.0)
SHARES = {"equal (50%)": 0.5, "canary (5%)": 0.05}


def fmt_share(share: float, interval: tuple[float, float]) -> str:
    return f"{share:.1%} [{interval[0]:.1%}, {interval[1]:.1%}]"


def fmt_samples(rust: int | None, share: float) -> str:
    if rust is None:
        return "not within 20,000"
    return f"{rust:,} ({round(rust / share):,} calls)"


def aa_table(runs: int) -> list[str]:
    lines = [
        "| allocation | criteria | runs | ever FAIL (95% interval) | alpha |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for label, share in SHARES.items():
        for name, criteria in (
            ("shipped (p50 <= 1.10, p99 <= 1.50, not_slower)", DEFAULTS),
            ("every ratio bound 1.0 (truth on the boundary)", ON_THE_BOUNDARY),
        ):
            outcomes = simulate(Scenario("A/A", rust_share=share), criteria, ALPHA, runs, seed=101)
            s = summarise(outcomes, "none")
            lines.append(
                f"| {label} | {name} | {runs} | {fmt_share(s.fail_share, s.fail_interval)} "
                f"| {ALPHA:.0%} |"
            )
    return lines


def per_criterion(outcomes: RunOutcomes, share: float) -> str:
    parts = []
    for criterion in outcomes.criteria:
        for kind, first in (("FAIL", outcomes.first_fail), ("PASS", outcomes.first_pass)):
            hits = first[criterion][first[criterion] > 0]
            if len(hits) * 2 >= len(first[criterion]):
                median = int(np.median(hits)) * outcomes.scenario.look_every
                parts.append(f"{criterion.value} {kind} {median:,}")
    return "; ".join(parts)


def ab_table(runs: int) -> list[str]:
    lines = [
        "| Rust latency | allocation | runs | right decision | wrong first | median Rust samples"
        " (calls) | 95th percentile | per criterion, median Rust samples |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for scale, expect, label in ((1.2, "FAIL", "20% slower"), (0.8, "PASS", "20% faster")):
        for alloc, share in SHARES.items():
            scenario = Scenario(label, rust_scale=scale, rust_share=share)
            outcomes = simulate(scenario, DEFAULTS, ALPHA, runs, seed=202)
            s = summarise(outcomes, expect)
            if expect == "FAIL":
                right, median, p95 = s.fail_share, s.first_fail_median, s.first_fail_p95
            else:
                right, median, p95 = s.pass_share, s.first_pass_median, s.first_pass_p95
            lines.append(
                f"| {label} | {alloc} | {runs} | {expect} in {right:.0%} | {s.wrong_before_right} "
                f"| {fmt_samples(median, share)} | {fmt_samples(p95, share)} "
                f"| {per_criterion(outcomes, share)} |"
            )
    return lines


ERRORS = Criterion.error_rate
EXCESS = Criterion.error_excess


def one_look_codes(counts: RateCounts, criterion: Criterion, criteria: OpCriteria) -> np.ndarray:
    """The previous gate's decisions on the same runs: one-look Wilson (error_rate) or Newcombe
    (error_excess) intervals at 1 - alpha, applied at every look (1 PASS, -1 FAIL, 0 neither)."""
    codes = np.zeros(counts.rust_calls.shape, dtype=np.int8)
    for index in np.ndindex(codes.shape):
        k, n = int(counts.rust_errors[index]), int(counts.rust_calls[index])
        if criterion is ERRORS:
            low, high = wilson(k, n, ALPHA)
            bound = criteria.max_error_rate
        else:
            low, high = newcombe(
                k, n, int(counts.python_errors[index]), int(counts.python_calls[index]), ALPHA
            )
            bound = criteria.max_error_excess
        codes[index] = 1 if high <= bound else -1 if low > bound else 0
    return codes


def first_look(flags: np.ndarray) -> np.ndarray:
    """Per run, the 1-based first look where `flags` holds; 0 when never."""
    return np.where(flags.any(axis=1), flags.argmax(axis=1) + 1, 0)


def share_of(first: np.ndarray) -> str:
    hits = int((first > 0).sum())
    return fmt_share(hits / len(first), wilson(hits, len(first), 0.05))


def calls_to(first: np.ndarray, every: int, q: float) -> str:
    """Rust calls by which a share q of the runs had decided."""
    times = np.sort(np.where(first > 0, first, np.iinfo(np.int64).max))
    value = int(times[int(np.ceil(q * len(times))) - 1])
    return "not within 20,000" if value == np.iinfo(np.int64).max else f"{value * every:,}"


def error_rate_tables(runs: int) -> list[str]:
    """error_rate alone (a Rust-only count): false FAILs at and under the bound, and calls to
    the right decision, for the shipped order bound (0.01) and the aggregation's (0.001)."""
    lines = [
        "| true error rate | max_error_rate | runs | ever FAIL, anytime-valid (95% interval)"
        " | ever FAIL, one-look Wilson | alpha |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rate in (0.001, 0.005, 0.008, 0.01):
        scenario = RateScenario(f"{rate:g}", rust_rate=rate, rust_share=1.0)
        outcomes = simulate_rates(scenario, DEFAULTS, ALPHA, runs, seed=303)
        wilson_codes = one_look_codes(rate_counts(scenario, runs, seed=303), ERRORS, DEFAULTS)
        lines.append(
            f"| {rate:g} | 0.01 | {runs} | {share_of(outcomes.first_fail[ERRORS])} "
            f"| {share_of(first_look(wilson_codes == -1))} | {ALPHA:.0%} |"
        )
    lines += [
        "",
        "Rust calls until error_rate decides (the same looks; `wrong first`: runs whose first "
        "decision was the wrong one):",
        "",
        "| true error rate | max_error_rate | runs | right decision | wrong first "
        "| median Rust calls | 95th percentile "
        "| one-look Wilson, median (not valid under repeated looks) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    bars = OpCriteria(max_error_rate=0.001)
    for rate, bound, criteria, expect in (
        (0.001, 0.01, DEFAULTS, "PASS"),
        (0.02, 0.01, DEFAULTS, "FAIL"),
        (0.0001, 0.001, bars, "PASS"),
        (0.002, 0.001, bars, "FAIL"),
    ):
        scenario = RateScenario(f"{rate:g}", rust_rate=rate, rust_share=1.0)
        outcomes = simulate_rates(scenario, criteria, ALPHA, runs, seed=304)
        wilson_codes = one_look_codes(rate_counts(scenario, runs, seed=304), ERRORS, criteria)
        right = outcomes.first_pass if expect == "PASS" else outcomes.first_fail
        wrong = outcomes.first_fail if expect == "PASS" else outcomes.first_pass
        big = np.iinfo(np.int64).max
        right_at = np.where(right[ERRORS] > 0, right[ERRORS], big)
        wrong_first = int(((wrong[ERRORS] > 0) & (wrong[ERRORS] < right_at)).sum())
        contrast = first_look(wilson_codes == (1 if expect == "PASS" else -1))
        every = scenario.look_every
        lines.append(
            f"| {rate:g} | {bound:g} | {runs} | {expect} in {share_of(right[ERRORS])} "
            f"| {wrong_first} | {calls_to(right[ERRORS], every, 0.5)} "
            f"| {calls_to(right[ERRORS], every, 0.95)} | {calls_to(contrast, every, 0.5)} |"
        )
    return lines


def error_excess_table(runs: int) -> list[str]:
    """error_excess (max 0.005) with Python erring at 0.002, equal traffic and a 5% canary."""
    lines = [
        "| Rust error rate | excess | allocation | runs | ever FAIL, anytime-valid "
        "| ever FAIL, one-look Newcombe | ever PASS | median Rust calls to the first decision |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rust_rate in (0.002, 0.006, 0.007, 0.017):
        for alloc, share in SHARES.items():
            scenario = RateScenario(
                "excess", rust_rate=rust_rate, python_rate=0.002, rust_share=share
            )
            outcomes = simulate_rates(scenario, DEFAULTS, ALPHA, runs, seed=305)
            contrast = one_look_codes(rate_counts(scenario, runs, seed=305), EXCESS, DEFAULTS)
            fail, passed = outcomes.first_fail[EXCESS], outcomes.first_pass[EXCESS]
            decided = np.where(
                (fail > 0) & ((passed == 0) | (fail < passed)),
                fail,
                np.where(passed > 0, passed, 0),
            )
            lines.append(
                f"| {rust_rate:g} | {rust_rate - 0.002:+.3f} | {alloc} | {runs} | {share_of(fail)} "
                f"| {share_of(first_look(contrast == -1))} | {share_of(passed)} "
                f"| {calls_to(decided, scenario.look_every, 0.5)} |"
            )
    return lines


def judge_timing() -> list[str]:
    """Judge a canary window of 1,000,000 outcomes: 8 operation-side groups, merged sketches."""
    rng = np.random.default_rng(404)
    ops = {}
    total = 0
    for op in Operation:
        sides = []
        for n, scale in ((12_500, 0.9), (237_500, 1.0)):
            sketch = LatencySketch()
            sketch.add_many(scale * rng.lognormal(np.log(90_000), 0.5, n))
            sides.append(SideFigures(n, n // 500, 0, sketch))
            total += n
        ops[op] = OpFigures(op, sides[0], sides[1], 1_000, 0)
    figures = WindowFigures("canary", 0, 600 * 10**9, ops)
    stage = StageConfig("canary", Percentages(5), 0.25)
    gate = GateConfig()
    judge(figures, gate, stage)  # first call computes and caches the band constants
    times = []
    for _ in range(20):
        start = time.perf_counter()
        judge(figures, gate, stage)
        times.append(time.perf_counter() - start)
    bins = sum(
        len(f.rust.latency.bins()[0]) + len(f.python.latency.bins()[0]) for f in ops.values()
    )
    return [
        f"`judge()` of a canary window of {total:,} outcomes (8 operation-side groups, {bins} "
        f"sketch bins in all): best {min(times) * 1e3:.1f} ms, median "
        f"{float(np.median(times)) * 1e3:.1f} ms over 20 calls (target: well under 300 ms)."
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aa-runs", type=int, default=1000)
    parser.add_argument("--ab-runs", type=int, default=200)
    parser.add_argument("--rate-runs", type=int, default=400)
    parser.add_argument("--report", type=Path, default=Path(__file__).parent / "reports/gate.md")
    args = parser.parse_args(argv)
    machine = describe(["numpy"])
    started = time.perf_counter()
    sections = [
        "# Gate simulations",
        "",
        f"Command: `python benches/gate_sim.py --aa-runs {args.aa_runs} --ab-runs {args.ab_runs}"
        f" --rate-runs {args.rate_runs}`",
        "",
        f"Machine: {machine}.",
        "",
        "Latencies are lognormal, median 90 ms and log-sd 0.5 (the demo gateway's round trip); "
        "Rust's are Python's times 1.0 (A/A), 1.2 (20% slower) or 0.8 (20% faster). The gate "
        "looks after every 50 Rust samples up to 20,000 (400 looks), with equal traffic or a 5% "
        "canary (950 Python samples between looks), judging the shipped `place_order` latency "
        "criteria (p50_ratio <= 1.10, p99_ratio <= 1.50, not_slower with margin 0.05) at alpha "
        "0.05 with the gate's own decision function on the sketches' bin counts "
        "(`harness.gate.simulation`). Intervals are Wilson 95%.",
        "",
        "## A/A: share of runs that ever FAIL a latency criterion",
        "",
        *aa_table(args.aa_runs),
        "",
        "## A/B: samples to the decision",
        "",
        "Rust samples at the first look where a latency criterion FAILs (20% slower) or all of "
        "them PASS (20% faster); `calls` counts both sides. `wrong first`: runs whose first "
        "decision was the wrong one.",
        "",
        *ab_table(args.ab_runs),
        "",
        "## Rate criteria under repeated looks",
        "",
        "The rate criteria are judged by anytime-valid confidence sequences at alpha 0.05 "
        "(beta-mixture likelihood ratios; the excess combines both sides' at alpha/2), looked at "
        "after every 50 Rust calls up to 20,000 (400 looks). The one-look Wilson and Newcombe "
        "intervals the gate used before are applied to the same runs for contrast. A FAIL at a "
        "true rate at or under the bound is a needless rollback (error_rate and fallback_rate are "
        "critical; fallback_rate is the same computation on another count).",
        "",
        "### error_rate: false FAILs at and under the bound",
        "",
        *error_rate_tables(args.rate_runs),
        "",
        "### error_excess: Python errs at 0.002, max_error_excess 0.005",
        "",
        *error_excess_table(args.rate_runs),
        "",
        "## Speed",
        "",
        *judge_timing(),
        "",
    ]
    sections[-2] += f" Whole run: {time.perf_counter() - started:.0f} s."
    text = "\n".join(sections)
    print(text)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
