"""The router's view of the rollout: one immutable snapshot, swapped whole when anything changes.

A `Snapshot` joins the stage ladder of this process's config with the live state of the store
(stage, kill flag, open breakers), the config's own kill flag, breakers this process has just
tripped, and whether the Rust core loaded. The hot path reads one attribute (the router's
current snapshot) and one dict entry: no lock, no I/O. `build_snapshot` is pure.

An operation's effective threshold is 0 (everything to Python) when any of these holds, and
`disabled_reason` says which: the stage is not in this process's ladder, the kill switch is set
(config or store), the operation's breaker is open, or the native module is unavailable. The
environment's `TOPSTEPX_USE_RUST` is not part of the snapshot: it is read on every call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harness.config import RolloutConfig, StageConfig
from harness.operations import Operation
from harness.router.decide import threshold
from harness.store.state import LiveState

__all__ = ["Snapshot", "build_snapshot"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the router decides by, at one moment.

    `percent` is the stage's configured share of each operation (0 for an unknown stage);
    `thresholds` the effective bucket threshold (`percent * 100`, or 0 when disabled);
    `open_breakers` merges the store's open breakers with trips not yet written; `version` is
    the store's state version (0 before the first read). `shadow_sample_rate` is the stage's,
    or 0 when Rust may not run at all (kill switch, unknown stage, no native module). The
    mappings are plain dicts for speed: never mutate them.
    """

    stage: str
    stage_known: bool
    stage_since_ns: int
    percent: Mapping[Operation, float]
    thresholds: Mapping[Operation, float]
    shadow_sample_rate: float
    kill: bool
    kill_reason: str | None
    open_breakers: frozenset[Operation]
    native_available: bool
    version: int

    def rust_enabled(self, op: Operation) -> bool:
        """Whether any call of `op` may go to Rust now (the environment aside)."""
        return self.thresholds[op] > 0.0

    def disabled_reason(self, op: Operation) -> str | None:
        """Why `op` sends nothing to Rust (None when some share goes to Rust)."""
        if not self.native_available:
            return "native module unavailable"
        if not self.stage_known:
            return f"stage {self.stage!r} is not in this process's ladder"
        if self.kill:
            return "kill switch" + (f": {self.kill_reason}" if self.kill_reason else "")
        if op in self.open_breakers:
            return "circuit breaker open"
        if self.percent[op] <= 0.0:
            return f"stage {self.stage!r} sends 0% to Rust"
        return None


def _stage(rollout: RolloutConfig, name: str) -> StageConfig | None:
    for stage in rollout.stages:
        if stage.name == name:
            return stage
    return None


def _ops(names: Iterable[str]) -> frozenset[Operation]:
    known = {op.value: op for op in Operation}
    return frozenset(known[n] for n in names if n in known)


def build_snapshot(
    rollout: RolloutConfig,
    live: LiveState | None,
    *,
    native_available: bool,
    tripped: Iterable[Operation] = (),
) -> Snapshot:
    """The snapshot for `live` (None: no state read yet, taken as the start stage)."""
    if live is None:
        name = rollout.start_stage or rollout.stages[0].name
        since, store_kill, kill_reason, version = 0, False, None, 0
        store_open: frozenset[str] = frozenset()
    else:
        name, since, version = live.stage, live.stage_since_ns, live.version
        store_kill, kill_reason, store_open = live.kill, live.kill_reason, live.open_breakers
    stage = _stage(rollout, name)
    percent = {op: (stage.percent.of(op) if stage is not None else 0.0) for op in Operation}
    kill = rollout.kill or store_kill
    if rollout.kill and not store_kill:
        kill_reason = "rollout.kill is set in the config"
    open_breakers = _ops(store_open) | frozenset(tripped)
    enabled = native_available and stage is not None and not kill
    thresholds = {
        op: threshold(percent[op]) if enabled and op not in open_breakers else 0.0
        for op in Operation
    }
    return Snapshot(
        stage=name,
        stage_known=stage is not None,
        stage_since_ns=since,
        percent=percent,
        thresholds=thresholds,
        shadow_sample_rate=stage.shadow_sample_rate if enabled and stage is not None else 0.0,
        kill=kill,
        kill_reason=kill_reason,
        open_breakers=open_breakers,
        native_available=native_available,
        version=version,
    )
