"""The promotion gate's judgement: every criterion of every operation over the stage's window.

`judge(figures, gate, stage)` is pure: figures and config in, a `Verdict` out, no I/O. The CLI
prints it (`harness gate`), promotion requires its PASS, the dashboard re-judges it every second,
and the automatic rollback acts on `Verdict.critical_failures()`.

How each criterion decides (the statistics live in `harness.gate.stats`, with their sources):

- `min_samples`: each live side has routed at least `min_samples` calls (PASS), else
  INCONCLUSIVE; never FAIL.
- `fallback_rate`, `error_rate` (Rust): an anytime-valid confidence sequence for the rate at
  level 1 - alpha (`stats.rate_bounds`). PASS when its upper end is at most the configured
  maximum, FAIL when its lower end is above it, INCONCLUSIVE between.
- `error_excess`: the same with the sequence for Rust's error rate minus Python's
  (`stats.rate_difference_bounds`: each side's at alpha/2, combined).
- `p50_ratio`, `p99_ratio`: Rust's quantile over Python's. Each side's quantile has an
  anytime-valid confidence sequence; the ratio's interval is (Rust low / Python high, Rust high /
  Python low). PASS when its upper end is at most the maximum, FAIL when its lower end is above.
- `not_slower`: time-uniform bands around both latency CDFs, compared at the sketches' bin
  edges (2% apart). FAIL when at some latency Python finishes a larger share of its calls than
  Rust beyond both bands (Rust is slower there); PASS when the bands prove Rust nowhere behind by
  more than `not_slower_margin` of its calls.
- `shadow`: FAIL as soon as mismatches exceed the maximum; PASS once at least
  `min_shadow_comparisons` were made within it.
- `soak`: the stage has run `min_soak_s` (PASS), else INCONCLUSIVE.
- `replay` (only with `gate.replay_required`, for the migration as a whole): every operation
  of the migration that has captures has a `harness replay` of the current build; FAIL when
  the latest of any of them mismatched, PASS when each matched at least one capture without
  a mismatch, INCONCLUSIVE otherwise (no capture at all, no replay of this build yet, only
  skipped captures).

Every bound is anytime-valid, so however often the gate is looked at: a rate criterion wrongly
FAILs (or wrongly PASSes) with probability at most alpha over the whole stage; the latency
criteria of one operation share its alpha (split evenly between them and between the two
sides), so with probability at least 1 - alpha none of them is ever wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from harness.config.schema import Criterion, GateConfig, OpCriteria, StageConfig
from harness.gate import stats
from harness.gate.figures import OpFigures, ReplayFigures, WindowFigures
from harness.operations import Operation

__all__ = [
    "LATENCY_CRITERIA",
    "RATE_CRITERIA",
    "CriterionResult",
    "LatencyEvidence",
    "Outcome",
    "RateEvidence",
    "Skipped",
    "Verdict",
    "judge",
    "latency_evidence",
    "rate_evidence",
]

RATE_CRITERIA: Final = (Criterion.fallback_rate, Criterion.error_rate, Criterion.error_excess)
"""The criteria judged by confidence sequences for rates."""

LATENCY_CRITERIA: Final = (Criterion.p50_ratio, Criterion.p99_ratio, Criterion.not_slower)
"""The criteria that share one operation's alpha as one anytime-valid family."""

_QUANTILE: Final = {Criterion.p50_ratio: 0.5, Criterion.p99_ratio: 0.99}


class Outcome(StrEnum):
    """A criterion's result, and the verdict's."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


def _finite(value: float | None) -> float | None:
    """A float as JSON can carry it: None for a missing or infinite value."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return float(value)


@dataclass(frozen=True)
class CriterionResult:
    """One criterion of one operation (`op` None for the stage-wide `soak`).

    `figure` is the point estimate (a rate, a ratio, a count, seconds), None where there is
    nothing to estimate it from (a rate without calls, a latency ratio or not_slower without
    latency on a side: shown `-`, JSON null), `bound` the configured limit it is held to,
    `interval` the confidence interval the decision was made from (None where the criterion is
    exact), `detail` one line for a person, `critical` whether a FAIL rolls the running stage
    back.
    """

    op: str | None
    criterion: Criterion
    result: Outcome
    figure: float | None
    bound: float
    detail: str
    critical: bool = False
    interval: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: {op, criterion, result, figure, bound, interval, detail, critical}."""
        return {
            "op": None if self.op is None else str(self.op),
            "criterion": self.criterion.value,
            "result": self.result.value,
            "figure": _finite(self.figure),
            "bound": _finite(self.bound),
            "interval": None
            if self.interval is None
            else [_finite(self.interval[0]), _finite(self.interval[1])],
            "detail": self.detail,
            "critical": self.critical,
        }


@dataclass(frozen=True)
class Skipped:
    """A criterion that does not apply at this stage, and why."""

    op: str | None
    criterion: Criterion
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: {op, criterion, reason}."""
        return {
            "op": None if self.op is None else str(self.op),
            "criterion": self.criterion.value,
            "reason": self.reason,
        }


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Verdict:
    """The gate's judgement of one window: every judged criterion, every skipped one.

    `gate_settings` says which settings judged it (`{name, fingerprint, source}`, set by
    `harness.control.gates`; None when judged by `judge` alone).
    """

    stage: str
    since_ns: int
    until_ns: int
    alpha: float
    criteria: tuple[CriterionResult, ...]
    skipped: tuple[Skipped, ...] = ()
    gate_settings: dict[str, str] | None = None
    migration: str | None = None
    build_id: str | None = None
    other_builds_calls: int = 0

    @property
    def result(self) -> Outcome:
        """FAIL if any judged criterion FAILs, PASS if all PASS, else INCONCLUSIVE."""
        outcomes = {c.result for c in self.criteria}
        if Outcome.FAIL in outcomes:
            return Outcome.FAIL
        if outcomes <= {Outcome.PASS}:
            return Outcome.PASS
        return Outcome.INCONCLUSIVE

    def critical_failures(self) -> list[CriterionResult]:
        """The FAILed criteria marked critical: what rolls a running stage back."""
        return [c for c in self.criteria if c.critical and c.result is Outcome.FAIL]

    def of(self, op: str | None, criterion: Criterion) -> CriterionResult | None:
        """The result of one criterion (None when it was skipped)."""
        for c in self.criteria:
            if c.op == op and c.criterion is criterion:
                return c
        return None

    def build_note(self) -> str | None:
        """`evidence of build <id> only` and, when the stage's window holds calls of other
        builds, `: a new build, its evidence starts afresh (<n> calls of other builds left
        out)`; None when every build's evidence was judged (`gate.per_build: false`, or no run
        recorded a build). What `harness gate` and the dashboard's gate screen say."""
        if self.build_id is None:
            return None
        n = self.other_builds_calls
        afresh = f": a new build, its evidence starts afresh ({n} calls of other builds left out)"
        return f"evidence of build {self.build_id} only" + (afresh if n > 0 else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, stable keys: verdict, stage, since, until (ISO 8601, UTC), alpha,
        gate_settings (`{name, fingerprint, source}` or null), criteria (see
        `CriterionResult.to_dict`), skipped (see `Skipped.to_dict`), build_id (the build
        whose evidence was judged, null: every build's), other_builds_calls (the calls of other
        builds in the window, left out), migration (the one judged, null: every built-in
        operation)."""
        return {
            "verdict": self.result.value,
            "stage": self.stage,
            "since": _iso(self.since_ns),
            "until": _iso(self.until_ns),
            "alpha": self.alpha,
            "gate_settings": self.gate_settings,
            "criteria": [c.to_dict() for c in self.criteria],
            "skipped": [s.to_dict() for s in self.skipped],
            "build_id": self.build_id,
            "other_builds_calls": self.other_builds_calls,
            "migration": self.migration,
        }


# ----- judging ----------------------------------------------------------------------------------


def _ms(us: float | None) -> str:
    if us is None or math.isnan(us):
        return "none"
    if math.isinf(us):
        return "inf"
    return f"{us / 1000.0:.3g} ms"


def _ratio(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.3g}"


_OUTCOME: Final = {1: Outcome.PASS, -1: Outcome.FAIL, 0: Outcome.INCONCLUSIVE}

Codes = npt.NDArray[np.int8]

_BOUND_FIELD: Final = {
    Criterion.fallback_rate: "max_fallback_rate",
    Criterion.error_rate: "max_error_rate",
    Criterion.error_excess: "max_error_excess",
    Criterion.p50_ratio: "max_p50_ratio",
    Criterion.p99_ratio: "max_p99_ratio",
    Criterion.not_slower: "not_slower_margin",
}


def _configured(criterion: Criterion, criteria: OpCriteria) -> float | None:
    """The configured limit, or None where the config switches the criterion off (the latency
    ratios may be null: not judged, listed as skipped)."""
    value = getattr(criteria, _BOUND_FIELD[criterion])
    return None if value is None else float(value)


def _bound(criterion: Criterion, criteria: OpCriteria) -> float:
    """The configured limit a rate or latency criterion is held to."""
    return float(getattr(criteria, _BOUND_FIELD[criterion]))


def _codes(low: npt.NDArray[np.float64], high: npt.NDArray[np.float64], bound: float) -> Codes:
    """1 (PASS) where the whole interval is within the bound, -1 (FAIL) where it is wholly
    above it, 0 (INCONCLUSIVE) between."""
    out: Codes = np.where(high <= bound, 1, np.where(low > bound, -1, 0)).astype(np.int8)
    return out


@dataclass(frozen=True)
class RateEvidence:
    """One rate criterion's decision, as arrays over any leading axes (looks, runs).

    `code`: 1 PASS, -1 FAIL, 0 INCONCLUSIVE; `low`/`high`: the anytime-valid interval it was
    decided from (the rate, or Rust's rate minus Python's for error_excess).
    """

    code: Codes
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]


def rate_evidence(
    criterion: Criterion,
    rust_count: npt.ArrayLike,
    rust_calls: npt.ArrayLike,
    python_errors: npt.ArrayLike,
    python_calls: npt.ArrayLike,
    criteria: OpCriteria,
    alpha: float,
) -> RateEvidence:
    """Decide one rate criterion from counts; vectorised over broadcast arrays.

    `rust_count` is Rust's fallbacks for fallback_rate, its errors otherwise; the Python counts
    are used by error_excess only. The interval is a confidence sequence at level 1 - `alpha`
    (for error_excess each side's at alpha/2), mixing over `stats.rate_prior` of the criterion's
    maximum rate (for error_excess: of `max_error_rate`, the scale of both sides' rates). PASS
    when its upper end is at most the maximum, FAIL when its lower end is above it.
    """
    if criterion not in RATE_CRITERIA:
        raise ValueError(f"{criterion.value} is not a rate criterion")
    bound = _bound(criterion, criteria)
    if criterion is Criterion.error_excess:
        prior = stats.rate_prior(criteria.max_error_rate)
        low, high = stats.rate_difference_bounds(
            rust_count, rust_calls, python_errors, python_calls, alpha, prior
        )
    else:
        low, high = stats.rate_bounds(rust_count, rust_calls, alpha, stats.rate_prior(bound))
    return RateEvidence(_codes(low, high, bound), low, high)


@dataclass(frozen=True)
class LatencyEvidence:
    """One latency criterion's decision, as arrays over any leading axes (looks, runs).

    `code`: 1 PASS, -1 FAIL, 0 INCONCLUSIVE; `low`/`high`: the interval it was decided from
    (the ratio Rust/Python for p50/p99; sup_x F_P(x) - F_R(x) for not_slower); `gap`: the CDF
    comparison behind not_slower (None for the ratios).
    """

    code: Codes
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    gap: stats.CdfGap | None = None


def latency_evidence(
    criterion: Criterion,
    low: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    at_most_rust: npt.ArrayLike,
    at_most_python: npt.ArrayLike,
    criteria: OpCriteria,
    alpha: float,
) -> LatencyEvidence:
    """Decide one latency criterion from cumulative bin counts on a grid (see `SketchGrid`).

    `alpha` is this criterion's share of the operation's alpha; each side's statement errs with
    at most alpha/2, at every sample size at once. Vectorised: `at_most_*` may be shaped
    (..., bins), as the simulations pass every look of a run at once; `judge` passes one look.
    The ratio interval is (Rust low / Python high, Rust high / Python low); PASS when its upper
    end is at most the bound, FAIL when its lower end is above it. not_slower FAILs on proof that
    Rust is slower at some latency, PASSes on proof it trails nowhere by more than the margin.
    """
    side_alpha = alpha / 2.0
    if criterion is Criterion.not_slower:
        gap = stats.cdf_gap(high, at_most_python, at_most_rust, side_alpha, side_alpha)
        code = np.where(gap.slower(), -1, np.where(gap.within(criteria.not_slower_margin), 1, 0))
        return LatencyEvidence(code.astype(np.int8), gap.lower, gap.upper, gap)
    if criterion not in _QUANTILE:
        raise ValueError(f"{criterion.value} is not a latency criterion")
    p = _QUANTILE[criterion]
    r_low, r_high = stats.quantile_bounds(low, high, at_most_rust, p, side_alpha)
    p_low, p_high = stats.quantile_bounds(low, high, at_most_python, p, side_alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_low = np.where((r_low <= 0.0) | np.isinf(p_high), 0.0, r_low / p_high)
        ratio_high = np.where((p_low <= 0.0) | np.isinf(r_high), np.inf, r_high / p_low)
    bound = _bound(criterion, criteria)
    return LatencyEvidence(_codes(ratio_low, ratio_high, bound), ratio_low, ratio_high)


class _OpJudge:
    """Judges the criteria of one operation; collects results and skips."""

    def __init__(
        self, figures: OpFigures, criteria: OpCriteria, stage: StageConfig, alpha: float
    ) -> None:
        self.op = figures.op
        self.f = figures
        self.c = criteria
        self.stage = stage
        self.alpha = alpha
        percent = stage.percent.of(self.op)
        self.rust_live = percent > 0.0
        self.python_live = percent < 100.0
        self.results: list[CriterionResult] = []
        self.skipped: list[Skipped] = []

    def add(
        self,
        criterion: Criterion,
        result: Outcome,
        figure: float | None,
        bound: float,
        detail: str,
        interval: tuple[float, float] | None = None,
    ) -> None:
        critical = criterion in self.c.critical
        self.results.append(
            CriterionResult(self.op, criterion, result, figure, bound, detail, critical, interval)
        )

    def skip(self, criterion: Criterion, reason: str) -> None:
        self.skipped.append(Skipped(self.op, criterion, reason))

    def run(self) -> None:
        latency = self._latency_criteria()
        for criterion in Criterion:
            if criterion in (Criterion.soak, Criterion.replay):  # the migration's, not the op's
                continue
            if criterion is Criterion.shadow:
                self._shadow()
            elif not self.rust_live:
                self.skip(criterion, f"no Rust traffic: 0% at stage {self.stage.name!r}")
            elif criterion is Criterion.min_samples:
                self._min_samples()
            elif criterion is Criterion.fallback_rate:
                self._rate(criterion, self.f.rust.fallbacks, "fallback")
            elif criterion is Criterion.error_rate:
                self._rate(criterion, self.f.rust.errors, "error")
            elif not self.python_live:
                self.skip(criterion, f"no Python traffic: 100% Rust at stage {self.stage.name!r}")
            elif criterion is Criterion.error_excess:
                self._error_excess()
            elif criterion is Criterion.not_slower and not self.c.not_slower:
                self.skip(criterion, "not_slower is off for this operation")
            elif criterion in _QUANTILE and _configured(criterion, self.c) is None:
                self.skip(
                    criterion, f"max_{criterion.value} is null: not judged for this operation"
                )
            else:
                self._latency(criterion, self.alpha / len(latency))

    def _latency_criteria(self) -> list[Criterion]:
        if not (self.rust_live and self.python_live):
            return []
        return [
            c
            for c in LATENCY_CRITERIA
            if (c is not Criterion.not_slower or self.c.not_slower)
            and (c not in _QUANTILE or _configured(c, self.c) is not None)
        ]

    def _min_samples(self) -> None:
        sides = {"rust": self.f.rust.calls}
        if self.python_live:
            sides["python"] = self.f.python.calls
        least = min(sides.values())
        need = self.c.min_samples
        result = Outcome.PASS if least >= need else Outcome.INCONCLUSIVE
        detail = ", ".join(f"{side} {calls} calls" for side, calls in sides.items())
        self.add(Criterion.min_samples, result, float(least), float(need), f"{detail}; need {need}")

    def _rate(self, criterion: Criterion, count: int, what: str) -> None:
        calls = self.f.rust.calls
        bound = _bound(criterion, self.c)
        evidence = rate_evidence(criterion, count, calls, 0, 0, self.c, self.alpha)
        low, high = float(evidence.low), float(evidence.high)
        figure = count / calls if calls else None
        detail = (
            f"rust {what}s {count} of {calls} calls; anytime-valid {1 - self.alpha:.0%} "
            f"interval [{low:.4f}, {high:.4f}] vs max {bound:g}"
        )
        result = _OUTCOME[int(evidence.code)]
        self.add(criterion, result, figure, bound, detail, (low, high))

    def _error_excess(self) -> None:
        rust, python = self.f.rust, self.f.python
        evidence = rate_evidence(
            Criterion.error_excess,
            rust.errors,
            rust.calls,
            python.errors,
            python.calls,
            self.c,
            self.alpha,
        )
        low, high = float(evidence.low), float(evidence.high)
        figure = None
        if rust.calls and python.calls:
            figure = rust.errors / rust.calls - python.errors / python.calls
        bound = _bound(Criterion.error_excess, self.c)
        detail = (
            f"rust {rust.errors}/{rust.calls} vs python {python.errors}/{python.calls} errors; "
            f"anytime-valid {1 - self.alpha:.0%} interval of the excess [{low:.4f}, {high:.4f}] "
            f"vs max {bound:g}"
        )
        result = _OUTCOME[int(evidence.code)]
        self.add(Criterion.error_excess, result, figure, bound, detail, (low, high))

    def _latency(self, criterion: Criterion, alpha: float) -> None:
        rust, python = self.f.rust.latency, self.f.python.latency
        grid = stats.SketchGrid(rust, python)
        at_most_rust, at_most_python = grid.at_most
        evidence = latency_evidence(
            criterion, grid.low, grid.high, at_most_rust, at_most_python, self.c, alpha
        )
        low, high = float(evidence.low), float(evidence.high)
        result = _OUTCOME[int(evidence.code)]
        if criterion is Criterion.not_slower:
            assert evidence.gap is not None
            self._not_slower(evidence.gap, result, alpha, (low, high))
            return
        p = _QUANTILE[criterion]
        q_rust, q_python = rust.quantile(p), python.quantile(p)
        figure = q_rust / q_python if q_rust is not None and q_python else None
        bound = _bound(criterion, self.c)
        name = f"p{round(p * 100)}"
        detail = (
            f"{name} rust {_ms(q_rust)} (n={rust.n}), python {_ms(q_python)} (n={python.n}); "
            f"ratio in [{_ratio(low)}, {_ratio(high)}] vs max {bound:g} "
            f"(anytime-valid, alpha {alpha:.3g})"
        )
        self.add(criterion, result, figure, bound, detail, (low, high))

    def _not_slower(
        self, gap: stats.CdfGap, result: Outcome, alpha: float, interval: tuple[float, float]
    ) -> None:
        margin = self.c.not_slower_margin
        rust_n, python_n = self.f.rust.latency.n, self.f.python.latency.n
        if not (rust_n and python_n):
            # No latency on a side: no CDF to compare. The gap of an empty CDF against a full
            # one reads 1.000 (Python finishes all its calls, Rust none) though nothing is
            # known: the figure is absent (`-`, null), and the bands say nothing yet.
            detail = (
                f"no latency to compare yet (rust n={rust_n}, python n={python_n}): not decided yet"
            )
            self.add(Criterion.not_slower, result, None, margin, detail, interval)
            return
        estimate, radius = float(gap.estimate), float(gap.radius)
        band = "no band yet" if math.isinf(radius) else f"bands +-{radius:.3f}"
        if result is Outcome.FAIL:
            verdict = f"Rust is slower at {_ms(float(gap.at))} beyond doubt"
        elif result is Outcome.PASS:
            verdict = f"Rust is nowhere behind by more than {margin:g} of its calls"
        else:
            verdict = "not decided yet"
        where = f" (at {_ms(float(gap.at))})" if estimate > 0 else ""
        detail = (
            f"Python finishes up to {estimate:.3f} more of its calls than Rust within the same "
            f"latency{where}; {band} (anytime-valid, alpha {alpha:.3g}): {verdict}"
        )
        self.add(Criterion.not_slower, result, estimate, margin, detail, interval)

    def _shadow(self) -> None:
        if self.stage.shadow_sample_rate <= 0.0:
            self.skip(Criterion.shadow, f"no shadow sampling at stage {self.stage.name!r}")
            return
        comparisons, mismatches = self.f.shadow_comparisons, self.f.shadow_mismatches
        allowed, need = self.c.max_shadow_mismatches, self.c.min_shadow_comparisons
        if mismatches > allowed:
            result = Outcome.FAIL
        elif comparisons >= need:
            result = Outcome.PASS
        else:
            result = Outcome.INCONCLUSIVE
        detail = (
            f"{mismatches} mismatches in {comparisons} comparisons; at most {allowed} allowed, "
            f"at least {need} comparisons needed"
        )
        self.add(Criterion.shadow, result, float(mismatches), float(allowed), detail)


def _replay(replay: ReplayFigures) -> CriterionResult:
    """The `replay` criterion (see the module): figure = mismatches of the current build."""
    build = replay.build_id or "no build"
    if not replay.captured:
        detail = "no captures to replay (rollout.migrations.<name>.capture.rate is 0?)"
        return CriterionResult(None, Criterion.replay, Outcome.INCONCLUSIVE, None, 0.0, detail)
    missing = [op for op in replay.captured if op not in replay.results]
    failed = [op for op in replay.captured if replay.results.get(op, (0, 0))[1] > 0]
    empty = [op for op in replay.captured if replay.results.get(op, (1, 0))[0] == 0]
    mismatched = sum(replay.results.get(op, (0, 0))[1] for op in replay.captured)
    if failed:
        result = Outcome.FAIL
        detail = f"harness replay of build {build} mismatched on {', '.join(failed)}"
    elif missing or empty:
        result = Outcome.INCONCLUSIVE
        detail = f"no clean harness replay of build {build} yet for {', '.join(missing + empty)}"
    else:
        result = Outcome.PASS
        counts = ", ".join(f"{op} {replay.results[op][0]}" for op in replay.captured)
        detail = f"harness replay of build {build}: no mismatch ({counts} matched)"
    return CriterionResult(None, Criterion.replay, result, float(mismatched), 0.0, detail)


def judge(
    figures: WindowFigures,
    gate: GateConfig,
    stage: StageConfig,
    ops: Sequence[str] | None = None,
    *,
    migration: str | None = None,
) -> Verdict:
    """Judge every criterion of `gate` over the window `figures` of `stage`, for the
    operations `ops` of `migration` (None: the built-in operations).

    Criteria that cannot apply are listed in `Verdict.skipped` with the reason: every per-side
    criterion of an operation Rust gets no traffic of at this stage, Python comparisons at 100%
    Rust, `not_slower` when switched off, `shadow` at a stage that samples no shadows. Raises
    ValueError when the figures are of another stage.
    """
    if figures.stage != stage.name:
        raise ValueError(f"figures of stage {figures.stage!r} judged against {stage.name!r}")
    elapsed = (figures.until_ns - figures.since_ns) / 1e9
    soak = Outcome.PASS if elapsed >= gate.min_soak_s else Outcome.INCONCLUSIVE
    results = [
        CriterionResult(
            None,
            Criterion.soak,
            soak,
            elapsed,
            gate.min_soak_s,
            f"stage {stage.name!r} has run {elapsed:.0f} s of the {gate.min_soak_s:g} s needed",
        )
    ]
    if figures.replay is not None:
        results.append(_replay(figures.replay))
    skipped: list[Skipped] = []
    for op in ops if ops is not None else Operation:
        one = _OpJudge(figures.of(op), gate.criteria(op), stage, gate.alpha)
        one.run()
        results.extend(one.results)
        skipped.extend(one.skipped)
    return Verdict(
        stage.name,
        figures.since_ns,
        figures.until_ns,
        gate.alpha,
        tuple(results),
        tuple(skipped),
        migration=migration,
    )
