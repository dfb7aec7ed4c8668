"""The gate's guarantees and speed, measured: A/A false-FAIL rates, A/B samples-to-decision, the
rate criteria under repeated looks, and the time to judge a 1,000,000-outcome window.

    python benches/gate_sim.py [--aa-runs 1000] [--ab-runs 200] [--report benches/reports/gate.md]

Latencies are lognormal (median 90 ms, log-sd 0.5, as the demo gateway's round trip); Rust's is
Python's times 1.0 (A/A), 1.2 (20% slower) or 0.8 (20% faster); the gate looks after every 50
Rust samples up to 20,000, with equal traffic or a 5% canary, judging the shipped place_order
criteria at alpha 0.05 (`harness.gate.simulation`). Prints the tables and writes the report the
README quotes, naming the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

from harness.config.schema import GateConfig, OpCriteria, Percentages, StageConfig
from harness.gate import OpFigures, SideFigures, WindowFigures, judge
from harness.gate.simulation import RunOutcomes, Scenario, simulate, summarise
from harness.gate.stats import wilson
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


def rates_table(runs: int) -> list[str]:
    """Wilson bounds are fixed-sample: looked at after every 50 calls, how often does a Rust
    whose true error rate is under the bound ever FAIL error_rate (a needless rollback)?"""
    rng = np.random.default_rng(303)
    lines = [
        "| true error rate | max_error_rate | looks | runs | ever FAIL (95% interval) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    looks = np.arange(50, 20_001, 50)
    for rate in (0.001, 0.005, 0.008):
        ever = 0
        for _ in range(runs):
            errors = np.cumsum(rng.binomial(50, rate, size=len(looks)))
            if any(
                wilson(int(k), int(n), ALPHA)[0] > 0.01 for k, n in zip(errors, looks, strict=True)
            ):
                ever += 1
        lines.append(
            f"| {rate:g} | 0.01 | every 50 calls to 20,000 | {runs} "
            f"| {fmt_share(ever / runs, wilson(ever, runs, 0.05))} |"
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
    stage = StageConfig("canary", Percentages(5, 5, 5, 5), 0.25)
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
        "The rate criteria use fixed-sample Wilson bounds at level 1 - alpha, as configured. "
        "Looked at after every 50 Rust calls up to 20,000, a Rust whose true error rate is under "
        "`max_error_rate` 0.01 still FAILs error_rate at some look in this share of runs:",
        "",
        *rates_table(args.rate_runs),
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
