"""What the gate judges: the figures of the current stage's window, per operation and side.

The store builds these from its rollups (counts and merged latency sketches, never raw rows), so
judging a window of millions of outcomes costs the same as judging a hundred. Everything here is
a plain frozen value: the gate's logic can be used and tested without a database. Values are
checked when made: counts are integers >= 0, `latency_max_us` a finite number (or None), the
window's ends integers; anything else is an `InvalidInputError` (a `ValueError`) naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real

from harness.errors import InvalidInputError
from harness.sketch import LatencySketch

__all__ = ["OpFigures", "ReplayFigures", "SideFigures", "WindowFigures", "share"]


def _count(name: str, value: object) -> None:
    """A count of calls or comparisons: an integer >= 0 (bool, floats, NaN refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise InvalidInputError(name, value, "must be a count: an integer >= 0")


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def share(part: int, whole: int) -> float | None:
    """part / whole as a fraction: the one definition of a rate of calls (None without calls)."""
    return part / whole if whole else None


@dataclass(frozen=True)
class SideFigures:
    """One operation, one side (Rust or Python), over the window.

    `calls`: outcomes routed to this side. `errors`: of those, failed for the caller (ok =
    False). `fallbacks`: of those, served by the other side (Rust only; 0 for Python).
    `latency`: latency_us of the outcomes served by this side, ok, not fallen back;
    `latency_max_us`: the exact largest of them (None: none, or not known), for display only
    (a percentile shown is capped at it; the gate judges the sketch). `not_targeted`: of the
    calls, those routed here because the stage's targets left them out (Python only), not by
    the hash.
    """

    calls: int = 0
    errors: int = 0
    fallbacks: int = 0
    latency: LatencySketch = field(default_factory=LatencySketch)
    latency_max_us: float | None = None
    not_targeted: int = 0

    def __post_init__(self) -> None:
        for name in ("calls", "errors", "fallbacks", "not_targeted"):
            _count(name, getattr(self, name))
        if self.not_targeted > self.calls:
            reason = f"more than calls={self.calls!r}"
            raise InvalidInputError("not_targeted", self.not_targeted, reason)
        if self.errors > self.calls:
            raise InvalidInputError("errors", self.errors, f"more than calls={self.calls!r}")
        if self.fallbacks > self.calls:
            raise InvalidInputError("fallbacks", self.fallbacks, f"more than calls={self.calls!r}")
        peak = self.latency_max_us
        if peak is not None and not (_is_number(peak) and math.isfinite(peak) and peak >= 0):
            raise InvalidInputError("latency_max_us", peak, "must be a finite number >= 0 or None")

    @property
    def error_rate(self) -> float | None:
        """errors / calls: the share of this side's calls that failed (None without calls)."""
        return share(self.errors, self.calls)

    @property
    def fallback_rate(self) -> float | None:
        """fallbacks / calls: the share of this side's calls served by the other side."""
        return share(self.fallbacks, self.calls)


@dataclass(frozen=True)
class OpFigures:
    """Both sides of one operation, and its shadow comparisons, over the window."""

    op: str
    rust: SideFigures = field(default_factory=SideFigures)
    python: SideFigures = field(default_factory=SideFigures)
    shadow_comparisons: int = 0
    shadow_mismatches: int = 0

    def __post_init__(self) -> None:
        _count("shadow_comparisons", self.shadow_comparisons)
        _count("shadow_mismatches", self.shadow_mismatches)
        if self.shadow_mismatches > self.shadow_comparisons:
            reason = f"must be within 0..shadow_comparisons={self.shadow_comparisons!r}"
            raise InvalidInputError("shadow_mismatches", self.shadow_mismatches, reason)

    @property
    def calls(self) -> int:
        """Every call of the operation in the window, whichever side it was routed to."""
        return self.rust.calls + self.python.calls

    @property
    def served_by_rust(self) -> int:
        """Calls whose answer came from Rust: routed to Rust and not fallen back to Python."""
        return self.rust.calls - self.rust.fallbacks

    @property
    def rust_share(self) -> float | None:
        """served_by_rust / calls (None without calls)."""
        return share(self.served_by_rust, self.calls)


@dataclass(frozen=True)
class ReplayFigures:
    """The replay evidence the `replay` criterion judges (`gate.replay_required`).

    `build_id`: the build judged (None: no run recorded one); `captured`: the migration's
    operations that have captures in the store (any run); `results`: per operation, the
    latest `harness replay` of that build as (matched, mismatched) captures, absent when none
    ran (a skipped capture, whose build needs an input it does not hold, is neither).
    """

    build_id: str | None
    captured: tuple[str, ...] = ()
    results: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowFigures:
    """The current stage's window: its name, start (`since_ns`, the moment the stage was
    entered) and end (`until_ns`, now), both ns since the epoch, and the figures per operation
    (an operation with no entry had no traffic). `replay`: the replay evidence, when the gate
    requires a clean replay (`gate.replay_required`), else None."""

    stage: str
    since_ns: int
    until_ns: int
    ops: dict[str, OpFigures] = field(default_factory=dict)
    replay: ReplayFigures | None = None

    def __post_init__(self) -> None:
        for name in ("since_ns", "until_ns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise InvalidInputError(name, value, "must be an integer (ns since the epoch)")
        if self.until_ns < self.since_ns:
            reason = f"before since_ns={self.since_ns!r}"
            raise InvalidInputError("until_ns", self.until_ns, reason)
        for op, figures in self.ops.items():
            if figures.op != op:
                raise ValueError(f"ops[{op!r}] holds the figures of {figures.op!r}")

    def of(self, op: str) -> OpFigures:
        """The figures of `op` (empty ones when the window saw none of it)."""
        return self.ops.get(op) or OpFigures(op)
