"""Rollout actions and the figures they rest on: one implementation for the CLI, the dashboard
and the automatic rollback.

- `verdict(engine, cfg)`: the gate's judgement of the current stage's window.
- `promote` (to the next stage, only on PASS unless forced with a reason), `rollback` (one
  stage down, or to a named stage), `kill`, `unkill`, `reset_breaker`: each writes its event
  with who, when, why and the gate's figures at that moment (`harness.store.state`).
- `status(engine, cfg)`: the stage, its percentages, the kill flag, breakers, the native
  module's availability as the last run saw it, and the verdict.

Every action raises `ActionError` with a sentence a person can act on when it is refused
(gate not passing, no stage above, unknown stage, a reason missing); nothing is written then.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from harness.config import HarnessConfig, StageConfig
from harness.errors import HarnessError
from harness.gate import Verdict, judge
from harness.gate.verdict import Outcome
from harness.operations import Operation
from harness.store.models import Breaker, Run
from harness.store.queries import window_figures
from harness.store.state import (
    EventKind,
    LiveState,
    ensure_state,
    read_state,
    set_kill,
    set_stage,
)
from harness.store.state import (
    reset_breaker as _reset_breaker,
)

__all__ = [
    "ActionError",
    "ActionResult",
    "current_state",
    "kill",
    "promote",
    "reset_breaker",
    "rollback",
    "stage_config",
    "status",
    "unkill",
    "verdict",
]


class ActionError(HarnessError):
    """An action was refused; nothing was written."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action did: the state before and after, and the verdict it was judged by."""

    action: str
    before: LiveState
    after: LiveState
    verdict: Verdict | None
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (stable keys)."""
        return {
            "action": self.action,
            "from_stage": self.before.stage,
            "to_stage": self.after.stage,
            "kill": self.after.kill,
            "forced": self.forced,
            "verdict": None if self.verdict is None else self.verdict.result.value,
        }


def _start_stage(cfg: HarnessConfig) -> str:
    return cfg.rollout.start_stage or cfg.rollout.stages[0].name


def current_state(engine: Engine, cfg: HarnessConfig) -> LiveState:
    """The store's rollout state, created at `rollout.start_stage` if there is none yet."""
    with engine.connect() as conn:
        state = read_state(conn)
    return state if state is not None else ensure_state(engine, _start_stage(cfg))


def stage_config(cfg: HarnessConfig, name: str) -> StageConfig:
    """The ladder's stage called `name` (ActionError naming the ladder otherwise)."""
    for stage in cfg.rollout.stages:
        if stage.name == name:
            return stage
    names = ", ".join(s.name for s in cfg.rollout.stages)
    raise ActionError(f"stage {name!r} is not on this ladder ({names})")


def _index(cfg: HarnessConfig, name: str) -> int:
    for i, stage in enumerate(cfg.rollout.stages):
        if stage.name == name:
            return i
    names = ", ".join(s.name for s in cfg.rollout.stages)
    raise ActionError(f"the store's stage {name!r} is not on this ladder ({names})")


def verdict(
    engine: Engine, cfg: HarnessConfig, state: LiveState | None = None, now_ns: int | None = None
) -> Verdict:
    """The gate's judgement of the current stage since it was entered."""
    state = state or current_state(engine, cfg)
    stage = stage_config(cfg, state.stage)
    figures = window_figures(engine, state.stage, state.stage_since_ns, now_ns or time.time_ns())
    return judge(figures, cfg.gate, stage)


def _reason(reason: str | None, action: str, *, required: bool) -> str | None:
    text = (reason or "").strip()
    if required and not text:
        raise ActionError(f"{action} needs a reason (--reason TEXT)")
    return text or None


def promote(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    who: str | None = None,
    reason: str | None = None,
    force: bool = False,
) -> ActionResult:
    """Move to the next stage if the gate PASSes (or, with `force` and a reason, regardless).

    A forced promotion is recorded with `forced = True` and the verdict it overrode.
    """
    reason = _reason(reason, "a forced promotion" if force else "promote", required=force)
    state = current_state(engine, cfg)
    i = _index(cfg, state.stage)
    if i + 1 >= len(cfg.rollout.stages):
        raise ActionError(f"{state.stage!r} is the last stage: nothing to promote to")
    judged = verdict(engine, cfg, state)
    passed = judged.result is Outcome.PASS
    if not passed and not force:
        failing = [
            f"{c.op.value if c.op else 'stage'} {c.criterion.value}: {c.result.value}"
            for c in judged.criteria
            if c.result is not Outcome.PASS
        ]
        shown = "; ".join(failing[:6]) + (" ..." if len(failing) > 6 else "")
        raise ActionError(
            f"the gate says {judged.result.value} for stage {state.stage!r} ({shown}): "
            "not promoted (`harness gate` shows why; --force --reason TEXT overrides)"
        )
    target = cfg.rollout.stages[i + 1].name
    after = set_stage(
        engine,
        target,
        kind=EventKind.PROMOTE,
        who=who,
        reason=reason,
        forced=force and not passed,
        gate=judged.to_dict(),
        expect_stage=state.stage,
    )
    return ActionResult("promote", state, after, judged, forced=force and not passed)


def rollback(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    to: str | None = None,
    who: str | None = None,
    reason: str | None = None,
    automatic: bool = False,
) -> ActionResult:
    """Move down the ladder at once: one stage, or to the stage `to` (below the current one).

    `automatic` marks the rollback a running stage's critical FAIL made (event
    `auto_rollback`); it only happens if the stage is still the one judged.
    """
    state = current_state(engine, cfg)
    i = _index(cfg, state.stage)
    if to is None:
        if i == 0:
            raise ActionError(f"{state.stage!r} is the first stage: nothing to roll back to")
        target = cfg.rollout.stages[i - 1].name
    else:
        stage_config(cfg, to)
        if _index(cfg, to) >= i:
            raise ActionError(f"--to {to!r} is not below the current stage {state.stage!r}")
        target = to
    judged = verdict(engine, cfg, state)
    after = set_stage(
        engine,
        target,
        kind=EventKind.AUTO_ROLLBACK if automatic else EventKind.ROLLBACK,
        who=who,
        reason=_reason(reason, "rollback", required=False),
        gate=judged.to_dict(),
        expect_stage=state.stage,
    )
    return ActionResult("auto_rollback" if automatic else "rollback", state, after, judged)


def kill(
    engine: Engine, cfg: HarnessConfig, *, who: str | None = None, reason: str | None = None
) -> ActionResult:
    """Send every operation to Python in every process (within about a second)."""
    state = current_state(engine, cfg)
    judged = verdict(engine, cfg, state)
    after = set_kill(
        engine, True, who=who, reason=_reason(reason, "kill", required=False), gate=judged.to_dict()
    )
    return ActionResult("kill", state, after, judged)


def unkill(
    engine: Engine, cfg: HarnessConfig, *, who: str | None = None, reason: str | None = None
) -> ActionResult:
    """Clear the kill flag: routing follows the stage again."""
    state = current_state(engine, cfg)
    judged = verdict(engine, cfg, state)
    after = set_kill(
        engine,
        False,
        who=who,
        reason=_reason(reason, "unkill", required=False),
        gate=judged.to_dict(),
    )
    return ActionResult("unkill", state, after, judged)


def reset_breaker(
    engine: Engine,
    cfg: HarnessConfig,
    op: Operation,
    *,
    who: str | None = None,
    reason: str | None = None,
) -> ActionResult:
    """Close `op`'s circuit breaker (ActionError if it is not open)."""
    state = current_state(engine, cfg)
    if not _reset_breaker(
        engine, op.value, who=who, reason=_reason(reason, "reset", required=False)
    ):
        raise ActionError(f"the {op.value} breaker is not open")
    return ActionResult("breaker_reset", state, current_state(engine, cfg), None)


def status(engine: Engine, cfg: HarnessConfig) -> dict[str, Any]:
    """The rollout at a glance (JSON-able, stable keys): stage and its percentages, the kill
    flag, breakers, the native module as the latest run saw it, and the gate's verdict."""
    state = current_state(engine, cfg)
    stage = stage_config(cfg, state.stage)
    judged = verdict(engine, cfg, state)
    with engine.connect() as conn:
        # Core rows (one attribute per column): `.scalars()` would keep only the first column.
        breakers = conn.execute(select(Breaker)).all()
        last_run = conn.execute(select(Run).order_by(Run.started_ns.desc()).limit(1)).first()
    ladder = [s.name for s in cfg.rollout.stages]
    return {
        "stage": state.stage,
        "stage_since": judged.to_dict()["since"],
        "ladder": ladder,
        "next_stage": ladder[ladder.index(state.stage) + 1]
        if ladder.index(state.stage) + 1 < len(ladder)
        else None,
        "percent": {op.value: stage.percent.of(op) for op in Operation},
        "shadow_sample_rate": stage.shadow_sample_rate,
        "kill": state.kill,
        "kill_reason": state.kill_reason,
        "breakers": {
            b.op: {"open": bool(b.is_open), "reason": b.reason, "failures": b.failures}
            for b in breakers
        },
        "native_available": None if last_run is None else bool(last_run.native_available),
        "native_error": None if last_run is None else last_run.native_error,
        "verdict": judged.result.value,
        "gate": judged.to_dict(),
    }
