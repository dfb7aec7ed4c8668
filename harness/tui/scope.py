"""The dashboard's one door to the actions, with a migration scope: `migration=None` is every
migration at once (what the dashboard did before migrations), a name is that migration alone.

Every read and action of the dashboard that depends on the scope goes through here, written as
`harness.control.actions` spells it with its `migration=` keyword (issue 21: `promote`,
`rollback`, `kill`, `unkill`, `reset_breaker`, `overview`, the plans). With `None` each call
is the action itself. With a name, until the actions take `migration=` themselves, the
calls below do what they will do, from the same pieces (`harness.store.state`'s
compare-and-set writers with `migration=`, `harness.gate.judge` of the migration's
operations, its own ladder and gate settings): nothing else in the dashboard changes when
they are replaced by a plain `actions.X(..., migration=migration)`.

The operations of a migration are its configured ones (`rollout.migrations.<m>.operations`,
else the shipped ones) and any other operation the store recorded in it over the stage's
window (a bot's registered operation): `migration_ops`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, select

from harness.config import HarnessConfig, StageConfig
from harness.control import actions
from harness.control.actions import (
    REASON_MAX_CHARS,
    WHO_MAX_CHARS,
    ActionError,
    ActionInputError,
    ActionPlan,
    ActionResult,
    BreakerState,
    BusyHook,
    Overview,
    person_text,
)
from harness.control.gates import judging, stage_gate
from harness.gate import judge
from harness.gate.figures import OpFigures, WindowFigures
from harness.gate.verdict import Outcome
from harness.operations import BUILTIN_MIGRATIONS, BUILTIN_SPECS, Operation
from harness.store.models import Breaker, MigrationState, OutcomeRollup, Run
from harness.store.queries import Filters, op_figures
from harness.store.rollups import HOUR_NS
from harness.store.state import (
    EventKind,
    Expected,
    LiveState,
    change_kill,
    ensure_state,
    moved_error,
    not_started,
    read_state,
    set_stage,
)
from harness.store.state import reset_breaker as _reset_breaker

__all__ = [
    "configured_ops",
    "kill",
    "migration_names",
    "operation_names",
    "overview",
    "plan_promote",
    "plan_rollback",
    "promote",
    "reset_breaker",
    "rollback",
    "unkill",
]


def configured_ops(cfg: HarnessConfig, migration: str) -> list[str]:
    """The operations `migration` names in the config (a shipped migration not configured:
    its shipped operations), in config order."""
    return cfg.rollout.operations_of(migration) or list(BUILTIN_MIGRATIONS.get(migration, ()))


def migration_names(engine: Engine, cfg: HarnessConfig) -> list[str]:
    """Every migration to show: the configured ones in config order, then the ones only the
    store knows (a bot's registered migration), by name."""
    named = cfg.rollout.migration_names()
    with engine.connect() as conn:
        stored = conn.execute(
            select(MigrationState.migration).order_by(MigrationState.migration)
        ).scalars()
        return [*named, *(m for m in stored if m not in named)]


def operation_names(engine: Engine, cfg: HarnessConfig) -> list[tuple[str, str]]:
    """(migration, operation) of every operation configured, then of every other one the
    store recorded (a bot's registered operations), by name. The store's are read from the
    hourly rollups (one row per hour and group, so the read stays small on a long history):
    an operation first recorded in the current hour is found by the overview's windows."""
    pairs = [(m, op) for m in cfg.rollout.migration_names() for op in configured_ops(cfg, m)]
    query = (
        select(OutcomeRollup.migration, OutcomeRollup.op)
        .where(OutcomeRollup.period_ns == HOUR_NS)
        .distinct()
    )
    with engine.connect() as conn:
        stored = sorted((str(m), str(op)) for m, op in conn.execute(query))
    known = {op for _m, op in pairs}
    return [*pairs, *((m, op) for m, op in stored if op not in known)]


def _ladder_stage(ladder: tuple[StageConfig, ...], name: str, migration: str) -> StageConfig:
    for stage in ladder:
        if stage.name == name:
            return stage
    names = ", ".join(s.name for s in ladder)
    raise ActionError(f"the store's stage {name!r} of {migration} is not on its ladder ({names})")


def _overview_of(
    engine: Engine, cfg: HarnessConfig, migration: str, now_ns: int | None
) -> Overview:
    """One migration now: its state, its ladder, its window's figures (the operations it
    configures and any other one recorded in it), the verdict of its gate on them, the
    breakers of its operations."""
    ladder = tuple(cfg.rollout.ladder(migration))
    with engine.connect() as conn:
        state = read_state(conn, with_gate=True, migration=migration)
        breakers = conn.execute(select(Breaker)).all()
        last_run = conn.execute(select(Run).order_by(Run.started_ns.desc()).limit(1)).first()
    if state is None:
        state = not_started(cfg.rollout.start_of(migration), migration=migration)
    stage = _ladder_stage(ladder, state.stage, migration)
    since = state.stage_since_ns
    until = max(now_ns or time.time_ns(), since)
    found = op_figures(
        engine, Filters(stage=state.stage, since_ns=since, until_ns=until + 1, migration=migration)
    )
    own = configured_ops(cfg, migration)
    recorded = sorted(
        op for op, f in found.items() if op not in own and (f.calls or f.shadow_comparisons)
    )
    ops = [*own, *recorded]
    figures = WindowFigures(
        stage=state.stage,
        since_ns=since,
        until_ns=until,
        ops={op: found.get(op) or OpFigures(op) for op in ops},
    )
    gate = cfg.gate.for_migration(cfg.rollout.migration(migration))
    how = judging(gate, state.gate)
    judged = replace(
        judge(figures, how.gate, stage, ops, migration=migration), gate_settings=how.ref()
    )
    return Overview(
        state=state,
        stage=stage,
        ladder=ladder,
        figures=figures,
        verdict=judged,
        breakers={
            b.op: BreakerState(b.op, bool(b.is_open), b.reason, int(b.failures), b.opened_ns)
            for b in breakers
            if b.op in ops
        },
        native_available=None if last_run is None else bool(last_run.native_available),
        native_error=None if last_run is None else last_run.native_error,
        judging=how,
    )


def overview(
    engine: Engine, cfg: HarnessConfig, now_ns: int | None = None, *, migration: str | None = None
) -> Overview:
    """`actions.overview` of `migration` (None: every migration at once)."""
    if migration is None:
        return actions.overview(engine, cfg, now_ns)
    return _overview_of(engine, cfg, migration, now_ns)


def _decided(
    engine: Engine,
    cfg: HarnessConfig,
    migration: str,
    now_ns: int | None,
    seen: LiveState | None,
    *,
    kill: bool = False,
    breakers: bool = False,
) -> tuple[Overview, Expected]:
    """The migration read now, and what the action expects of it (`seen`'s stage, and its
    kill flag and open breakers when asked); `StateMovedError` at once when it moved."""
    view = _overview_of(engine, cfg, migration, now_ns)
    expect = Expected.of(seen or view.state, kill=kill, breakers=breakers)
    if expect.moves(view.state):
        with engine.connect() as conn:
            raise moved_error(conn, expect, view.state)
    return view, expect


def plan_promote(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    force: bool = False,
    now_ns: int | None = None,
    seen: LiveState | None = None,
    migration: str | None = None,
) -> ActionPlan:
    """`actions.plan_promote` of `migration` (None: every migration at once)."""
    if migration is None:
        return actions.plan_promote(engine, cfg, force=force, now_ns=now_ns, seen=seen)
    view, expect = _decided(engine, cfg, migration, now_ns, seen, kill=True, breakers=True)
    ladder, state, judged = view.ladder, view.state, view.verdict
    i = [s.name for s in ladder].index(state.stage)
    if i + 1 >= len(ladder):
        raise ActionError(
            f"{state.stage!r} is the last stage of {migration}: nothing to promote to"
        )
    passed = judged.result is Outcome.PASS
    if not passed and not force:
        failing = sorted(
            (c for c in judged.criteria if c.result is not Outcome.PASS),
            key=lambda c: c.result is not Outcome.FAIL,  # the FAILs first
        )
        said = [f"{c.op or 'stage'} {c.criterion.value}: {c.result.value}" for c in failing]
        shown = "; ".join(said[:6]) + (" ..." if len(said) > 6 else "")
        raise ActionError(
            f"the gate says {judged.result.value} for {migration} at stage {state.stage!r} "
            f"({shown}): not promoted",
            advice=f"`harness gate --migration {migration}` shows why; --force --reason TEXT "
            "overrides",
            key_advice="the gate screen, key 2, shows why; P forces it, with a reason",
        )
    own = stage_gate(cfg.gate.for_migration(cfg.rollout.migration(migration)))
    forced = force and not passed
    return ActionPlan("promote", state, ladder[i], ladder[i + 1], judged, forced, expect, own)


def plan_rollback(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    now_ns: int | None = None,
    seen: LiveState | None = None,
    migration: str | None = None,
) -> ActionPlan:
    """`actions.plan_rollback` (one stage down) of `migration` (None: every migration)."""
    if migration is None:
        return actions.plan_rollback(engine, cfg, now_ns=now_ns, seen=seen)
    view, expect = _decided(engine, cfg, migration, now_ns, seen)
    ladder, state = view.ladder, view.state
    i = [s.name for s in ladder].index(state.stage)
    if i == 0:
        raise ActionError(f"{state.stage!r} is the first stage of {migration}: nothing below")
    own = stage_gate(cfg.gate.for_migration(cfg.rollout.migration(migration)))
    return ActionPlan(
        "rollback", state, ladder[i], ladder[i - 1], view.verdict, expect=expect, next_gate=own
    )


def _texts(who: str | None, reason: str | None, action: str, required: bool) -> tuple[Any, Any]:
    """(who, reason) as stored, held to `person_text`'s rule as the actions hold them."""
    said = person_text("--reason", reason, limit=REASON_MAX_CHARS)
    if required and said is None:
        raise ActionInputError(f"{action} needs a reason (--reason TEXT)")
    return person_text("--who", who, limit=WHO_MAX_CHARS), said


def _started(engine: Engine, cfg: HarnessConfig, migration: str, state: LiveState) -> None:
    """Write the migration's state first (at its start stage) when the store has none yet."""
    if not state.started:
        gate = stage_gate(cfg.gate.for_migration(cfg.rollout.migration(migration)))
        ensure_state(
            engine,
            cfg.rollout.start_of(migration),
            migration=migration,
            gate=gate,
            wait_s=cfg.db.write_wait_s,
        )


def _move(
    engine: Engine,
    cfg: HarnessConfig,
    plan: ActionPlan,
    migration: str,
    kind: str,
    who: str | None,
    reason: str | None,
    on_busy: BusyHook,
) -> LiveState:
    _started(engine, cfg, migration, plan.before)
    assert plan.next_gate is not None
    settings = {"name": plan.next_gate.name, "fingerprint": plan.next_gate.fingerprint}
    return set_stage(
        engine,
        plan.to_stage.name,
        kind=kind,
        migration=migration,
        who=who,
        reason=reason,
        forced=plan.forced,
        gate={**plan.verdict.to_dict(), "next_stage_gate": settings},
        expect=plan.expect,
        stage_gate=plan.next_gate,
        wait_s=cfg.db.write_wait_s,
        on_busy=on_busy,
    )


def promote(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    who: str | None = None,
    reason: str | None = None,
    force: bool = False,
    seen: LiveState | None = None,
    on_busy: BusyHook = None,
    migration: str | None = None,
) -> ActionResult:
    """`actions.promote` of `migration` (None: every migration at once)."""
    if migration is None:
        return actions.promote(
            engine, cfg, who=who, reason=reason, force=force, seen=seen, on_busy=on_busy
        )
    asked = "a forced promotion" if force else "promote"
    who, reason = _texts(who, reason, asked, force)
    plan = plan_promote(engine, cfg, force=force, seen=seen, migration=migration)
    after = _move(engine, cfg, plan, migration, EventKind.PROMOTE, who, reason, on_busy)
    return ActionResult("promote", plan.before, after, plan.verdict, forced=plan.forced)


def rollback(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    to: str | None = None,
    who: str | None = None,
    reason: str | None = None,
    seen: LiveState | None = None,
    on_busy: BusyHook = None,
    migration: str | None = None,
) -> ActionResult:
    """`actions.rollback` (one stage down; `to` is the stage the plan showed) of
    `migration` (None: every migration at once)."""
    if migration is None:
        return actions.rollback(
            engine, cfg, to=to, who=who, reason=reason, seen=seen, on_busy=on_busy
        )
    who, reason = _texts(who, reason, "rollback", False)
    plan = plan_rollback(engine, cfg, seen=seen, migration=migration)
    if to is not None and plan.to_stage.name != to:
        raise ActionError(f"{migration} would roll back to {plan.to_stage.name!r}, not {to!r}")
    after = _move(engine, cfg, plan, migration, EventKind.ROLLBACK, who, reason, on_busy)
    return ActionResult("rollback", plan.before, after, plan.verdict)


def _verdict(engine: Engine, cfg: HarnessConfig, migration: str) -> tuple[Overview | None, Any]:
    """The migration now and its verdict as an event records it (None, None when this config
    cannot judge the store's stage: a kill must land all the same)."""
    try:
        view = _overview_of(engine, cfg, migration, None)
    except ActionError:
        return None, None
    return view, view.verdict


def kill(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    who: str | None = None,
    reason: str | None = None,
    on_busy: BusyHook = None,
    migration: str | None = None,
) -> ActionResult:
    """`actions.kill` of `migration` (None: the global flag, every migration)."""
    if migration is None:
        return actions.kill(engine, cfg, who=who, reason=reason, on_busy=on_busy)
    who, reason = _texts(who, reason, "kill", False)
    view, judged = _verdict(engine, cfg, migration)
    before = view.state if view is not None else not_started(cfg.rollout.start_of(migration))
    _started(engine, cfg, migration, before)
    after, changed = change_kill(
        engine,
        True,
        migration=migration,
        who=who,
        reason=reason,
        gate=None if judged is None else judged.to_dict(),
        wait_s=cfg.db.write_wait_s,
        on_busy=on_busy,
    )
    return ActionResult("kill", before, after, judged, changed=changed)


def unkill(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    who: str | None = None,
    reason: str | None = None,
    seen: LiveState | None = None,
    on_busy: BusyHook = None,
    migration: str | None = None,
) -> ActionResult:
    """`actions.unkill` of `migration` (None: the global flag and every migration's)."""
    if migration is None:
        return actions.unkill(engine, cfg, who=who, reason=reason, seen=seen, on_busy=on_busy)
    who, reason = _texts(who, reason, "unkill", False)
    view, expect = _decided(engine, cfg, migration, None, seen)
    if not view.state.started:
        return ActionResult("unkill", view.state, view.state, view.verdict, changed=False)
    after, changed = change_kill(
        engine,
        False,
        migration=migration,
        who=who,
        reason=reason,
        gate=view.verdict.to_dict(),
        expect=expect,
        wait_s=cfg.db.write_wait_s,
        on_busy=on_busy,
    )
    return ActionResult("unkill", view.state, after, view.verdict, changed=changed)


def reset_breaker(
    engine: Engine,
    cfg: HarnessConfig,
    op: str,
    *,
    who: str | None = None,
    reason: str | None = None,
    seen: LiveState | None = None,
    on_busy: BusyHook = None,
    migration: str | None = None,
) -> ActionResult:
    """`actions.reset_breaker` of `op` (any operation's name), decided on `migration`'s stage
    (None: every migration's)."""
    if migration is None and op in BUILTIN_SPECS:
        return actions.reset_breaker(
            engine, cfg, Operation(op), who=who, reason=reason, seen=seen, on_busy=on_busy
        )
    who, reason = _texts(who, reason, "reset", False)
    if migration is None:  # a registered operation's breaker, decided on the stage shown
        before = actions.current_state(engine, cfg)
        expect = Expected.of(seen or before)
    else:
        before = _overview_of(engine, cfg, migration, None).state
        expect = Expected.of(seen or before)
    closed = before.started and _reset_breaker(
        engine,
        op,
        migration=migration,
        who=who,
        reason=reason,
        expect=expect,
        wait_s=cfg.db.write_wait_s,
        on_busy=on_busy,
    )
    if not closed:
        raise ActionError(f"the {op} breaker is not open")
    with engine.connect() as conn:
        after = read_state(conn, migration=migration) or before
    return ActionResult("breaker_reset", before, after, None)
