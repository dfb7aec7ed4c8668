"""Rollout actions and the figures they rest on: one implementation for the CLI, the dashboard
and the automatic rollback.

- `verdict(engine, cfg)`: the gate's judgement of the current stage's window.
- `promote` (to the next stage, only on PASS unless forced with a reason), `rollback` (one
  stage down, or to a named stage), `kill`, `unkill`, `reset_breaker`: each writes its event
  with who, when, why and the gate's figures at that moment (`harness.store.state`).
- `status(engine, cfg)`: the stage, its percentages, the kill flag, breakers, the native
  module's availability as the last run saw it, and the verdict.
- `overview(engine, cfg)`: the same read as typed values, with the window's figures (what the
  dashboard shows every second); `plan_promote` / `plan_rollback`: what a promotion or rollback
  would change (from -> to, the percentages), checked exactly as the action checks it, with
  nothing written (what the dashboard's confirmation shows).

Every action raises `ActionError` with a sentence a person can act on when it is refused
(gate not passing, no stage above or below), `ActionInputError` (a subclass) when it was asked
wrongly (a stage not on the ladder, a reason missing); nothing is written then.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from harness.config import HarnessConfig, StageConfig
from harness.errors import HarnessError
from harness.gate import Verdict, judge
from harness.gate.figures import WindowFigures
from harness.gate.verdict import Outcome
from harness.operations import Operation
from harness.router.policy import env_allows_rust
from harness.store.models import Breaker, Run
from harness.store.queries import window_figures
from harness.store.state import (
    EventKind,
    LiveState,
    ensure_state,
    not_started,
    read_state,
    set_kill,
    set_stage,
)
from harness.store.state import (
    reset_breaker as _reset_breaker,
)

__all__ = [
    "ActionError",
    "ActionInputError",
    "ActionPlan",
    "ActionResult",
    "BreakerState",
    "Overview",
    "current_state",
    "kill",
    "overview",
    "plan_promote",
    "plan_rollback",
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


class ActionInputError(ActionError):
    """An action was asked wrongly (a stage not on the ladder, a reason or an operation
    missing): a usage error, exit status 2 from the CLI, where a refusal by the state or the
    gate is 1. Nothing was written."""


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

    def summary(self) -> str:
        """One line for a person, as `harness promote` (and the others) print it."""
        if self.action in ("kill", "unkill"):
            flag = "set" if self.after.kill else "cleared"
            return f"{self.action}: kill flag {flag} at stage {self.after.stage}"
        line = f"{self.action}: {self.before.stage} -> {self.after.stage}"
        if self.forced:
            said = self.verdict.result.value if self.verdict else "?"
            line += f" (FORCED: the gate said {said})"
        return line


def _start_stage(cfg: HarnessConfig) -> str:
    return cfg.rollout.start_stage or cfg.rollout.stages[0].name


def current_state(engine: Engine, cfg: HarnessConfig) -> LiveState:
    """The store's rollout state; if there is none yet, the one the first run or action would
    start at `rollout.start_stage` (`LiveState.started` False), with nothing written: reading
    needs no write access (a read-only store, `harness status` on a copy)."""
    with engine.connect() as conn:
        state = read_state(conn)
    return state if state is not None else not_started(_start_stage(cfg))


def _stored(engine: Engine, cfg: HarnessConfig, state: LiveState) -> LiveState:
    """`state`, written first (with its `start` event) if it is one no store holds yet: an
    action about to write needs the row it compares and sets."""
    return state if state.started else ensure_state(engine, _start_stage(cfg))


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
    return _judged(engine, cfg, state, now_ns)[1]


def _judged(
    engine: Engine, cfg: HarnessConfig, state: LiveState, now_ns: int | None
) -> tuple[WindowFigures, Verdict]:
    """The current stage's window figures (`[stage_since, now)`) and the gate's verdict on them.

    A stage entered after `now` (another machine's clock runs ahead of this one) is judged
    over an empty window, not refused.
    """
    stage = stage_config(cfg, state.stage)
    until = max(now_ns or time.time_ns(), state.stage_since_ns)
    figures = window_figures(engine, state.stage, state.stage_since_ns, until)
    return figures, judge(figures, cfg.gate, stage)


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """What a promotion or rollback would do, checked as the action checks it; nothing written.

    `verdict` is the gate's judgement it was checked against; `forced` is True for a promotion
    that goes ahead only because it was forced (the gate did not PASS).
    """

    action: str
    before: LiveState
    from_stage: StageConfig
    to_stage: StageConfig
    verdict: Verdict
    forced: bool = False

    def percent_changes(self) -> list[tuple[Operation, float, float]]:
        """(operation, % to Rust now, % after) for every operation, in `Operation` order."""
        return [
            (op, self.from_stage.percent.of(op), self.to_stage.percent.of(op)) for op in Operation
        ]


def plan_promote(
    engine: Engine, cfg: HarnessConfig, *, force: bool = False, now_ns: int | None = None
) -> ActionPlan:
    """The promotion `promote` would make now; ActionError (the sentence `promote` raises)
    when there is no stage above, or the gate does not PASS and `force` is off."""
    state = current_state(engine, cfg)
    i = _index(cfg, state.stage)
    if i + 1 >= len(cfg.rollout.stages):
        raise ActionError(f"{state.stage!r} is the last stage: nothing to promote to")
    judged = verdict(engine, cfg, state, now_ns)
    passed = judged.result is Outcome.PASS
    if not passed and not force:
        not_passed = [c for c in judged.criteria if c.result is not Outcome.PASS]
        not_passed.sort(key=lambda c: c.result is not Outcome.FAIL)  # the FAILs first
        failing = [
            f"{c.op.value if c.op else 'stage'} {c.criterion.value}: {c.result.value}"
            for c in not_passed
        ]
        shown = "; ".join(failing[:6]) + (" ..." if len(failing) > 6 else "")
        raise ActionError(
            f"the gate says {judged.result.value} for stage {state.stage!r} ({shown}): "
            "not promoted (`harness gate` shows why; --force --reason TEXT overrides)"
        )
    stages = cfg.rollout.stages
    return ActionPlan("promote", state, stages[i], stages[i + 1], judged, force and not passed)


def plan_rollback(
    engine: Engine, cfg: HarnessConfig, *, to: str | None = None, now_ns: int | None = None
) -> ActionPlan:
    """The rollback `rollback` would make now (one stage down, or to the stage `to`);
    ActionError when there is no stage below or `to` is not below the current stage,
    ActionInputError when `to` is not on the ladder."""
    state = current_state(engine, cfg)
    i = _index(cfg, state.stage)
    if to is None:
        if i == 0:
            raise ActionError(f"{state.stage!r} is the first stage: nothing to roll back to")
        target = cfg.rollout.stages[i - 1]
    else:
        if to not in {s.name for s in cfg.rollout.stages}:
            names = ", ".join(s.name for s in cfg.rollout.stages)
            raise ActionInputError(f"--to {to!r} is not on this ladder ({names})")
        target = stage_config(cfg, to)
        if _index(cfg, to) >= i:
            raise ActionError(f"--to {to!r} is not below the current stage {state.stage!r}")
    judged = verdict(engine, cfg, state, now_ns)
    return ActionPlan("rollback", state, cfg.rollout.stages[i], target, judged)


def _reason(reason: str | None, action: str, *, required: bool) -> str | None:
    """The reason as stored (stripped), None if empty. Raises `ActionInputError` when one is
    required and missing, or when it holds a control character: a terminal escape in a reason
    would be replayed on every screen that shows the event log."""
    text = (reason or "").strip()
    if required and not text:
        raise ActionInputError(f"{action} needs a reason (--reason TEXT)")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise ActionInputError(
            f"{action}: --reason holds a control character (a terminal escape, a tab or a line "
            f"break): {text!r}"
        )
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
    plan = plan_promote(engine, cfg, force=force)
    _stored(engine, cfg, plan.before)
    after = set_stage(
        engine,
        plan.to_stage.name,
        kind=EventKind.PROMOTE,
        who=who,
        reason=reason,
        forced=plan.forced,
        gate=plan.verdict.to_dict(),
        expect_stage=plan.before.stage,
    )
    return ActionResult("promote", plan.before, after, plan.verdict, forced=plan.forced)


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
    reason = _reason(reason, "rollback", required=False)
    plan = plan_rollback(engine, cfg, to=to)
    _stored(engine, cfg, plan.before)
    after = set_stage(
        engine,
        plan.to_stage.name,
        kind=EventKind.AUTO_ROLLBACK if automatic else EventKind.ROLLBACK,
        who=who,
        reason=reason,
        gate=plan.verdict.to_dict(),
        expect_stage=plan.before.stage,
    )
    action = "auto_rollback" if automatic else "rollback"
    return ActionResult(action, plan.before, after, plan.verdict)


def kill(
    engine: Engine, cfg: HarnessConfig, *, who: str | None = None, reason: str | None = None
) -> ActionResult:
    """Send every operation to Python in every process (within about a second)."""
    reason = _reason(reason, "kill", required=False)
    state = current_state(engine, cfg)
    judged = verdict(engine, cfg, state)
    state = _stored(engine, cfg, state)
    after = set_kill(engine, True, who=who, reason=reason, gate=judged.to_dict())
    return ActionResult("kill", state, after, judged)


def unkill(
    engine: Engine, cfg: HarnessConfig, *, who: str | None = None, reason: str | None = None
) -> ActionResult:
    """Clear the kill flag: routing follows the stage again."""
    reason = _reason(reason, "unkill", required=False)
    state = current_state(engine, cfg)
    judged = verdict(engine, cfg, state)
    state = _stored(engine, cfg, state)
    after = set_kill(engine, False, who=who, reason=reason, gate=judged.to_dict())
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
    reason = _reason(reason, "reset", required=False)
    state = current_state(engine, cfg)
    if not state.started or not _reset_breaker(engine, op.value, who=who, reason=reason):
        raise ActionError(f"the {op.value} breaker is not open")  # none trips without a state
    return ActionResult("breaker_reset", state, current_state(engine, cfg), None)


@dataclass(frozen=True, slots=True)
class BreakerState:
    """One operation's circuit breaker as the store holds it (`opened_ns`: ns since the epoch)."""

    op: str
    is_open: bool
    reason: str | None
    failures: int
    opened_ns: int | None


@dataclass(frozen=True, slots=True)
class Overview:
    """The rollout at one moment, read in one pass: what `harness status` prints and the
    dashboard shows every second.

    `figures` and `verdict` cover the current stage's window `[state.stage_since_ns, now)`,
    the window the gate judges; `breakers` holds a row per operation whose breaker ever
    tripped; `native_available` / `native_error` are what the latest run saw (None: no run yet).
    """

    state: LiveState
    stage: StageConfig
    ladder: tuple[StageConfig, ...]
    figures: WindowFigures
    verdict: Verdict
    breakers: dict[str, BreakerState]
    native_available: bool | None
    native_error: str | None

    @property
    def next_stage(self) -> StageConfig | None:
        """The stage a promotion would move to (None at the top of the ladder)."""
        names = [s.name for s in self.ladder]
        i = names.index(self.state.stage)
        return self.ladder[i + 1] if i + 1 < len(self.ladder) else None


def overview(engine: Engine, cfg: HarnessConfig, now_ns: int | None = None) -> Overview:
    """The rollout now (see `Overview`); `now_ns` ends the window (default: the clock)."""
    state = current_state(engine, cfg)
    stage = stage_config(cfg, state.stage)
    figures, judged = _judged(engine, cfg, state, now_ns)
    with engine.connect() as conn:
        # Core rows (one attribute per column): `.scalars()` would keep only the first column.
        breakers = conn.execute(select(Breaker)).all()
        last_run = conn.execute(select(Run).order_by(Run.started_ns.desc()).limit(1)).first()
    return Overview(
        state=state,
        stage=stage,
        ladder=tuple(cfg.rollout.stages),
        figures=figures,
        verdict=judged,
        breakers={
            b.op: BreakerState(b.op, bool(b.is_open), b.reason, int(b.failures), b.opened_ns)
            for b in breakers
        },
        native_available=None if last_run is None else bool(last_run.native_available),
        native_error=None if last_run is None else last_run.native_error,
    )


def status(engine: Engine, cfg: HarnessConfig) -> dict[str, Any]:
    """The rollout at a glance (JSON-able, stable keys): stage and its percentages, the kill
    flag, `env_kill` (`TOPSTEPX_USE_RUST` is false in this process's environment: any process
    started with it sends everything to Python whatever the stage), breakers, the native module
    as the latest run saw it, and the gate's verdict. `started` False: the store holds no
    rollout state yet (nothing is written to show it); `stage` is the one the first run or
    action starts, `stage_since` None."""
    view = overview(engine, cfg)
    state, stage = view.state, view.stage
    ladder = [s.name for s in view.ladder]
    following = view.next_stage
    return {
        "stage": state.stage,
        "started": state.started,
        "stage_since": view.verdict.to_dict()["since"] if state.started else None,
        "ladder": ladder,
        "next_stage": None if following is None else following.name,
        "percent": {op.value: stage.percent.of(op) for op in Operation},
        "shadow_sample_rate": stage.shadow_sample_rate,
        "kill": state.kill,
        "kill_reason": state.kill_reason,
        "env_kill": not env_allows_rust(),
        "breakers": {
            b.op: {"open": b.is_open, "reason": b.reason, "failures": b.failures}
            for b in view.breakers.values()
        },
        "native_available": view.native_available,
        "native_error": view.native_error,
        "verdict": view.verdict.result.value,
        "gate": view.verdict.to_dict(),
    }
