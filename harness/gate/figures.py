"""What the gate judges: the figures of the current stage's window, per operation and side.

The store builds these from its rollups (counts and merged latency sketches, never raw rows), so
judging a window of millions of outcomes costs the same as judging a hundred. Everything here is
a plain frozen value: the gate's logic can be used and tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.operations import Operation
from harness.sketch import LatencySketch

__all__ = ["OpFigures", "SideFigures", "WindowFigures", "share"]


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
    (a percentile shown is capped at it; the gate judges the sketch).
    """

    calls: int = 0
    errors: int = 0
    fallbacks: int = 0
    latency: LatencySketch = field(default_factory=LatencySketch)
    latency_max_us: float | None = None

    def __post_init__(self) -> None:
        for name in ("calls", "errors", "fallbacks"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"{name}={value!r}: a count is never negative")
        if self.errors > self.calls:
            raise ValueError(f"errors={self.errors!r}: more than calls={self.calls!r}")
        if self.fallbacks > self.calls:
            raise ValueError(f"fallbacks={self.fallbacks!r}: more than calls={self.calls!r}")

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

    op: Operation
    rust: SideFigures = field(default_factory=SideFigures)
    python: SideFigures = field(default_factory=SideFigures)
    shadow_comparisons: int = 0
    shadow_mismatches: int = 0

    def __post_init__(self) -> None:
        if self.shadow_comparisons < 0:
            raise ValueError(f"shadow_comparisons={self.shadow_comparisons!r}: negative")
        if not 0 <= self.shadow_mismatches <= self.shadow_comparisons:
            raise ValueError(
                f"shadow_mismatches={self.shadow_mismatches!r}: must be within "
                f"0..shadow_comparisons={self.shadow_comparisons!r}"
            )

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
class WindowFigures:
    """The current stage's window: its name, start (`since_ns`, the moment the stage was
    entered) and end (`until_ns`, now), both ns since the epoch, and the figures per operation
    (an operation with no entry had no traffic)."""

    stage: str
    since_ns: int
    until_ns: int
    ops: dict[Operation, OpFigures] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.until_ns < self.since_ns:
            raise ValueError(f"until_ns={self.until_ns!r}: before since_ns={self.since_ns!r}")
        for op, figures in self.ops.items():
            if figures.op is not op:
                raise ValueError(f"ops[{op.value!r}] holds the figures of {figures.op.value!r}")

    def of(self, op: Operation) -> OpFigures:
        """The figures of `op` (empty ones when the window saw none of it)."""
        return self.ops.get(op) or OpFigures(op)
