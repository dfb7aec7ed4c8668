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

**An action acts on what the person saw.** Every action but a kill carries the state it was
decided on: `seen` (the state the dashboard showed, or its confirmation dialog), `from_stage`
(`--from STAGE` on the CLI) or, without either, the state the action itself read. It is refused
(`StateMovedError`, exit 1, saying what moved and by which event) when that moved before its
compare-and-set: the stage for every action; for a promotion also the kill flag and the open
breakers (news the person did not see). A kill expects nothing and always lands; a second kill
(or an unkill with nothing to clear) writes nothing and says so.

Every action raises `ActionError` with a sentence a person can act on when it is refused
(gate not passing, no stage above or below), `ActionInputError` (a subclass) when it was asked
wrongly (a stage not on the ladder, a reason missing, a text breaking `person_text`'s rule);
nothing is written then. A busy database is waited out for `db.write_wait_s`, then
`StoreBusyError` (`harness.store.state.write_transaction`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy import Engine, select

from harness.config import (
    GateConfig,
    HarnessConfig,
    StageConfig,
    TradingHours,
    auto_promote_until,
    trading_hours,
)
from harness.control.gates import Judging, judging, stage_gate
from harness.errors import HarnessError
from harness.gate import Verdict, judge
from harness.gate.figures import WindowFigures
from harness.gate.verdict import Outcome
from harness.operations import Operation
from harness.output import printable, unsafe_character
from harness.router.policy import env_allows_rust
from harness.store.models import Breaker, MigrationState, OutcomeRollup, Run
from harness.store.queries import latest_build, replay_figures, window_figures
from harness.store.state import (
    EventKind,
    Expected,
    LiveState,
    StageGate,
    StageMove,
    StateConflictError,
    change_kill,
    ensure_state,
    moved_error,
    not_started,
    read_state,
    set_stages,
)
from harness.store.state import (
    reset_breaker as _reset_breaker,
)

__all__ = [
    "REASON_MAX_CHARS",
    "WHO_MAX_CHARS",
    "ActionError",
    "ActionInputError",
    "ActionPlan",
    "ActionResult",
    "AutoPromotion",
    "BreakerState",
    "Overview",
    "auto_promotion",
    "auto_promotion_text",
    "check_migration",
    "current_state",
    "gate_judging",
    "gate_of",
    "kill",
    "known_migrations",
    "operations_of",
    "overview",
    "person_text",
    "plan_promote",
    "plan_rollback",
    "promote",
    "reset_breaker",
    "rollback",
    "stage_config",
    "status",
    "unkill",
    "verdict",
    "verdicts",
]

BusyHook = Callable[[str], None] | None
"""Called once with a sentence when an action finds the database busy (see
`harness.store.state.write_transaction`)."""


class ActionError(HarnessError):
    """An action was refused; nothing was written.

    `str(error)` is the sentence with the command line's advice (`advice`: which command shows
    why, which flag overrides), `for_dashboard()` the same sentence with the dashboard's
    (`key_advice`: which screen, which key).
    """

    def __init__(
        self, message: str, *, advice: str | None = None, key_advice: str | None = None
    ) -> None:
        self.message = message
        self.advice = advice
        self.key_advice = key_advice
        super().__init__(message if advice is None else f"{message} ({advice})")

    def for_dashboard(self) -> str:
        """The sentence with the dashboard's advice instead of the command line's."""
        return self.message if self.key_advice is None else f"{self.message} ({self.key_advice})"


class ActionInputError(ActionError):
    """An action was asked wrongly (a stage not on the ladder, a reason or an operation
    missing): a usage error, exit status 2 from the CLI, where a refusal by the state or the
    gate is 1. Nothing was written."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action did: the state before and after, and the verdict it was judged by.

    `changed` is False when there was nothing to do (a kill while the kill flag is already
    set, an unkill while it is clear): nothing was written then. `migration` is the migration
    acted on (None: every migration at once); an action on every migration that moved them one
    by one (a promotion or rollback without `--migration`) holds each one's result in `parts`,
    and `left_alone` names the migrations it did not move (already at the top, or the bottom).
    """

    action: str
    before: LiveState
    after: LiveState
    verdict: Verdict | None
    forced: bool = False
    changed: bool = True
    migration: str | None = None
    parts: tuple[ActionResult, ...] = ()
    left_alone: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (stable keys); `migrations` holds each part's, by migration."""
        out: dict[str, Any] = {
            "action": self.action,
            "migration": self.migration,
            "from_stage": self.before.stage,
            "to_stage": self.after.stage,
            "kill": self.after.kill,
            "forced": self.forced,
            "changed": self.changed,
            "verdict": None if self.verdict is None else self.verdict.result.value,
        }
        if self.parts or self.left_alone:
            out["migrations"] = {p.migration: p.to_dict() for p in self.parts}
            out["left_alone"] = {name: why for name, why in self.left_alone}
        return out

    def summary(self) -> str:
        """For a person, as `harness promote` (and the others) print it: one line, or one per
        migration for an action on every migration."""
        if self.parts or self.left_alone:
            lines = [part.summary() for part in self.parts]
            uniform = {line.split(": ", 2)[0] + ": " + line.split(": ", 2)[2] for line in lines}
            if len(uniform) == 1 and not self.left_alone:
                return uniform.pop()  # every migration, from one stage to one stage
            lines += [f"{self.action}: {name}: left alone ({why})" for name, why in self.left_alone]
            return "\n".join(lines)
        who = "" if self.migration is None else f"{self.migration}: "
        if self.action in ("kill", "unkill"):
            if not self.changed:
                if self.after.kill:
                    why = printable(self.after.kill_reason or "no reason given")
                    return (
                        f"{self.action}: {who}the kill flag was already set at stage "
                        f"{self.after.stage} ({why}): nothing written"
                    )
                return (
                    f"{self.action}: {who}the kill flag was not set at stage "
                    f"{self.after.stage}: nothing written"
                )
            flag = "set" if self.after.kill else "cleared"
            scope = "" if self.migration is not None else " (every migration)"
            return f"{self.action}: {who}kill flag {flag}{scope} at stage {self.after.stage}"
        line = f"{self.action}: {who}{self.before.stage} -> {self.after.stage}"
        if self.forced:
            said = self.verdict.result.value if self.verdict else "?"
            line += f" (FORCED: the gate said {said})"
        return line


# ----- migrations -------------------------------------------------------------------------------


def known_migrations(engine: Engine | None, cfg: HarnessConfig) -> list[str]:
    """The migrations an action may name: the config's, in config order, then any other the
    store holds (one a bot registered at run time), by name."""
    names = cfg.rollout.migration_names()
    if engine is not None:
        names += [name for name in _stored_migrations(engine) if name not in names]
    return names


def _stored_migrations(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(MigrationState.migration).order_by(MigrationState.migration)
            ).scalars()
        )


def acted_on(engine: Engine, cfg: HarnessConfig) -> list[str]:
    """The migrations an action or verdict without `--migration` covers: every migration the
    store holds a state for (in `known_migrations` order), or, in a store that holds none
    yet, every configured one (which such an action starts first). A migration added to the
    config later joins once a run (or an action naming it) starts it."""
    stored = set(_stored_migrations(engine))
    names = known_migrations(engine, cfg)
    return [name for name in names if name in stored] if stored else names


def check_migration(engine: Engine | None, cfg: HarnessConfig, name: str | None) -> str | None:
    """`name` if it is a known migration (`known_migrations`), None for None;
    `ActionInputError` naming the known ones otherwise (exit 2 from the CLI)."""
    if name is None:
        return None
    known = known_migrations(engine, cfg)
    if name not in known:
        raise ActionInputError(
            f"unknown migration {printable(name)!r} (known: {', '.join(known) or 'none'})"
        )
    return name


def operations_of(engine: Engine, cfg: HarnessConfig, migration: str) -> list[str]:
    """The operations of `migration`: the config's, then any other its recorded outcomes
    name (a bot's registered operation the config does not list)."""
    ops = cfg.rollout.operations_of(migration)
    with engine.connect() as conn:
        recorded = conn.execute(
            select(OutcomeRollup.op)
            .where(OutcomeRollup.migration == migration)
            .distinct()
            .order_by(OutcomeRollup.op)
        ).scalars()
        ops += [op for op in recorded if op not in ops]
    return ops


def _ladder(cfg: HarnessConfig, migration: str | None) -> list[StageConfig]:
    return cfg.rollout.stages if migration is None else cfg.rollout.ladder(migration)


def _start_stage(cfg: HarnessConfig, migration: str | None = None) -> str:
    if migration is not None:
        return cfg.rollout.start_of(migration)
    return cfg.rollout.start_stage or cfg.rollout.stages[0].name


def gate_of(cfg: HarnessConfig, migration: str | None) -> GateConfig:
    """The gate settings of `migration` (its `gate` overrides applied)."""
    if migration is None:
        return cfg.gate
    return cfg.gate.for_migration(cfg.rollout.migration(migration))


def current_state(engine: Engine, cfg: HarnessConfig, migration: str | None = None) -> LiveState:
    """The store's state of `migration` (None: every migration at once, `read_state`) with its
    stage's gate settings; if there is none yet, the one the first run or action would start
    (`LiveState.started` False), with nothing written: reading needs no write access (a
    read-only store, `harness status` on a copy). A migration's open breakers are those of its
    own operations."""
    ops = None if migration is None else frozenset(operations_of(engine, cfg, migration))
    with engine.connect() as conn:
        state = read_state(conn, with_gate=True, migration=migration, ops=ops)
    if state is not None:
        return state
    return not_started(_start_stage(cfg, migration), migration=migration)


def started_state(engine: Engine, cfg: HarnessConfig) -> LiveState:
    """The store's rollout state, written first at `rollout.start_stage` (with its `start`
    event, judged by `cfg.gate` from then on) if there is none yet: what an action that writes
    does before it compares and sets."""
    return _stored(engine, cfg, current_state(engine, cfg))


def _stored(engine: Engine, cfg: HarnessConfig, state: LiveState) -> LiveState:
    """`state`, written first (with its `start` event, judged by its migration's gate) if it
    is one no store holds yet: an action about to write needs the row it compares and sets.
    Every configured migration gets its row then (each at its own start stage)."""
    if state.started:
        return state
    names = cfg.rollout.migration_names()
    if state.migration is not None and state.migration not in names:
        names.append(state.migration)
    for name in names:
        ensure_state(
            engine,
            cfg.rollout.start_of(name),
            migration=name,
            gate=stage_gate(gate_of(cfg, name)),
            wait_s=cfg.db.write_wait_s,
        )
    return current_state(engine, cfg, state.migration)


def stage_config(cfg: HarnessConfig, name: str, migration: str | None = None) -> StageConfig:
    """The stage called `name` on `migration`'s ladder (None: the default ladder);
    ActionError naming the ladder otherwise."""
    ladder = _ladder(cfg, migration)
    for stage in ladder:
        if stage.name == name:
            return stage
    names = ", ".join(s.name for s in ladder)
    raise ActionError(f"stage {name!r} is not on this ladder ({names})")


def _store_stage(cfg: HarnessConfig, name: str, migration: str | None) -> StageConfig:
    """The stage the store says `migration` is at, on the config's ladder of it;
    `ActionInputError` (`off_ladder`) when the ladder lacks it."""
    return _ladder(cfg, migration)[_index(cfg, name, migration)]


def _index(cfg: HarnessConfig, name: str, migration: str | None = None) -> int:
    ladder = _ladder(cfg, migration)
    for i, stage in enumerate(ladder):
        if stage.name == name:
            return i
    raise ActionInputError(off_ladder(cfg, migration, name))


def off_ladder(cfg: HarnessConfig, migration: str | None, stage: str) -> str:
    """The sentence for a store whose `migration` is at `stage`, which the config's ladder of
    it lacks: the config is not the one the store was promoted with. It names the packaged
    `rollout` options whose ladder has the stage, and the way back to this ladder."""
    from harness.config import CONF_DIR, compose

    ladder = _ladder(cfg, migration)
    names = ", ".join(s.name for s in ladder)
    which = "" if migration is None else f" {migration}"
    having = []
    for path in sorted((CONF_DIR / "rollout").glob("*.yaml")):
        try:
            other = compose([f"rollout={path.stem}"], environ={}).rollout
            stages = other.ladder(migration) if migration in other.migrations else other.stages
        except HarnessError:
            continue
        if any(s.name == stage for s in stages):
            having.append(f"rollout={path.stem}")
    hint = (
        f"run with {' or '.join(having)}, the config the store was promoted with"
        if having
        else "run with the config the store was promoted with"
    )
    back = f"harness rollback{'' if migration is None else ' --migration ' + migration}"
    return (
        f"the store's migration{which} is at stage {stage!r}, which this config's ladder "
        f"({names}) does not have: {hint}, or move it back to a stage of this ladder with "
        f"that config first (`{back} --to {ladder[0].name} ...`)"
    )


# ----- the gate ---------------------------------------------------------------------------------

_SEVERITY: Final = {Outcome.PASS: 0, Outcome.INCONCLUSIVE: 1, Outcome.FAIL: 2}


def worst(results: list[Outcome]) -> Outcome:
    """FAIL over INCONCLUSIVE over PASS (PASS for none): the verdict of several migrations."""
    return max(results, key=_SEVERITY.__getitem__, default=Outcome.PASS)


def combined(judged: dict[str, Verdict]) -> Verdict:
    """Several migrations' verdicts as one (`migration` None): every criterion of each, the
    window from the earliest start to the latest end, and the stage they share (else
    `orders=canary bars=production`). Its result is the worst of theirs, since a FAIL or an
    INCONCLUSIVE of any criterion decides it. The build judged is theirs (each judges the
    latest run's build, so they share it), the calls of other builds left out their sum."""
    parts = list(judged.values())
    if len(parts) == 1:
        return replace(parts[0], migration=None)
    stages = {v.stage for v in parts}
    stage = (
        stages.pop() if len(stages) == 1 else " ".join(f"{m}={v.stage}" for m, v in judged.items())
    )
    return Verdict(
        stage,
        min(v.since_ns for v in parts),
        max(v.until_ns for v in parts),
        parts[0].alpha,
        tuple(c for v in parts for c in v.criteria),
        tuple(k for v in parts for k in v.skipped),
        gate_settings=parts[0].gate_settings,
        migration=None,
        build_id=parts[0].build_id,
        other_builds_calls=sum(v.other_builds_calls for v in parts),
    )


def verdict(
    engine: Engine,
    cfg: HarnessConfig,
    state: LiveState | None = None,
    now_ns: int | None = None,
    *,
    rejudge: bool = False,
    migration: str | None = None,
) -> Verdict:
    """The gate's judgement of `migration`'s current stage since it was entered (the
    migration of `state` when given), by the gate settings stored with the stage
    (`harness.control.gates`; `rejudge`: by this config's instead). None: every migration's,
    `combined` (`verdicts` gives them one by one)."""
    name = state.migration if state is not None else migration
    if name is None:
        return combined(verdicts(engine, cfg, now_ns, rejudge=rejudge))
    state = state or current_state(engine, cfg, name)
    return _judged(engine, cfg, state, now_ns, rejudge=rejudge)[1]


def verdicts(
    engine: Engine, cfg: HarnessConfig, now_ns: int | None = None, *, rejudge: bool = False
) -> dict[str, Verdict]:
    """The verdict of every migration `acted_on` covers, each over its own window."""
    return {
        name: verdict(engine, cfg, now_ns=now_ns, rejudge=rejudge, migration=name)
        for name in acted_on(engine, cfg)
    }


def gate_judging(cfg: HarnessConfig, state: LiveState, *, rejudge: bool = False) -> Judging:
    """Which gate settings judge `state`'s stage for a command configured with `cfg`
    (`harness.control.gates.judging`, with `state`'s migration's own overrides): its `note()`
    is the line a command prints when they are not its own."""
    return judging(gate_of(cfg, state.migration), state.gate, rejudge=rejudge)


def _judged(
    engine: Engine,
    cfg: HarnessConfig,
    state: LiveState,
    now_ns: int | None,
    *,
    rejudge: bool = False,
) -> tuple[WindowFigures, Verdict, Judging]:
    """One migration's window figures (`[stage_since, now)`, its operations only), the gate's
    verdict on them, and the settings it was judged by (stored with the stage, see
    `gate_judging`). `state.migration` None: every operation over the shared stage (what a
    store with one migration, or every migration on one stage, is judged by).

    A stage entered after `now` (another machine's clock runs ahead of this one) is judged
    over an empty window, not refused.
    """
    name = state.migration
    stage = _store_stage(cfg, state.stage, name)
    until = max(now_ns or time.time_ns(), state.stage_since_ns)
    ops = None if name is None else operations_of(engine, cfg, name)
    build = latest_build(engine) if cfg.gate.per_build else None
    figures = window_figures(engine, state.stage, state.stage_since_ns, until, ops=ops, build=build)
    left_out = 0
    if build is not None:  # what the window holds of other builds, said in the verdict
        everyone = window_figures(engine, state.stage, state.stage_since_ns, until, ops=ops)
        left_out = _calls(everyone) - _calls(figures)
    if cfg.gate.replay_required:  # the command's own setting, as per_build
        replayed = replay_figures(engine, build or latest_build(engine), ops)
        figures = replace(figures, replay=replayed)
    how = gate_judging(cfg, state, rejudge=rejudge)
    judged = replace(
        judge(figures, how.gate, stage, ops, migration=name),
        gate_settings=how.ref(),
        build_id=build,
        other_builds_calls=left_out,
    )
    return figures, judged, how


def _calls(figures: WindowFigures) -> int:
    return sum(side.calls for f in figures.ops.values() for side in (f.rust, f.python))


def _event_gate(judged: Verdict, cfg: HarnessConfig, migration: str | None) -> dict[str, Any]:
    """A stage change's event: the verdict it was judged by, and in full the gate settings the
    new stage is stored with (this command's, with the migration's overrides), so the log says
    what judged every stage."""
    own = stage_gate(gate_of(cfg, migration))
    settings = json.loads(own.settings)
    return {
        **judged.to_dict(),
        "next_stage_gate": {"name": own.name, "fingerprint": own.fingerprint, **settings},
    }


def _decided_on(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    seen: LiveState | None,
    from_stage: str | None,
    kill: bool = False,
    breakers: bool = False,
    migration: str | None = None,
) -> tuple[LiveState, Expected]:
    """`migration`'s state read now, and what the action expects of it when it writes: the
    stage (and the kill flag and open breakers, when asked) of `seen`, else the stage
    `from_stage` names, else what this read found. Raises `ActionInputError` for a
    `from_stage` not on the migration's ladder and `StateMovedError` at once when the read
    already differs from the expectation."""
    ladder = _ladder(cfg, migration)
    if from_stage is not None and from_stage not in {s.name for s in ladder}:
        names = ", ".join(s.name for s in ladder)
        where = "" if migration is None else f" (migration {migration})"
        raise ActionInputError(f"--from {from_stage!r} is not on this ladder{where} ({names})")
    state = current_state(engine, cfg, migration)
    if seen is not None:
        expect = Expected.of(seen, kill=kill, breakers=breakers)
    else:
        read = Expected.of(state, kill=kill, breakers=breakers)
        expect = read if from_stage is None else Expected(from_stage, read.kill, read.open_breakers)
    if expect.moves(state):
        with engine.connect() as conn:
            raise moved_error(conn, expect, state)
    return state, expect


def _on_ladder(flag: str, stage: str | None, ladder: list[StageConfig]) -> None:
    """`ActionInputError` when `stage` (given with `flag`) is not on `ladder`."""
    if stage is not None and stage not in {s.name for s in ladder}:
        names = ", ".join(s.name for s in ladder)
        raise ActionInputError(f"{flag} {stage!r} is not on this ladder ({names})")


def _check_seen_all(
    engine: Engine, cfg: HarnessConfig, seen: LiveState | None, **what: bool
) -> None:
    """For an action on every migration decided on `seen` (every migration's state at once):
    `StateMovedError` when that moved (each migration is then checked on what is read)."""
    if seen is None:
        return
    expect = Expected.of(seen, **what)
    state = current_state(engine, cfg)
    if expect.moves(state):
        with engine.connect() as conn:
            raise moved_error(conn, expect, state)


# ----- plans ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """What a promotion or rollback would do, checked as the action checks it; nothing written.

    `verdict` is the gate's judgement it was checked against; `forced` is True for a promotion
    that goes ahead only because it was forced (the gate did not PASS); `expect` is what the
    action will require of the state when it writes (see `_decided_on`); `next_gate` the gate
    settings the new stage will be stored with (the acting config's own, with the migration's
    overrides). A plan for every migration (`migration` None) holds one plan per migration it
    moves in `parts` (its own fields are the first part's, its verdict `combined`), and the
    migrations it leaves alone, with why, in `left_alone`.
    """

    action: str
    before: LiveState
    from_stage: StageConfig
    to_stage: StageConfig
    verdict: Verdict
    forced: bool = False
    expect: Expected | None = None
    next_gate: StageGate | None = None
    migration: str | None = None
    ops: tuple[str, ...] = ()
    parts: tuple[ActionPlan, ...] = ()
    left_alone: tuple[tuple[str, str], ...] = ()

    def percent_changes(self) -> list[tuple[str, float, float]]:
        """(operation, % to Rust now, % after) for every operation the plan moves."""
        if self.parts:
            return [change for part in self.parts for change in part.percent_changes()]
        ops = self.ops or tuple(Operation)
        return [(op, self.from_stage.percent.of(op), self.to_stage.percent.of(op)) for op in ops]


def _refused_by(migration: str | None, exc: ActionError) -> ActionError:
    """`exc` naming the migration that refused an action on every migration."""
    if migration is None:
        return exc
    kind = type(exc)
    return kind(
        f"migration {migration}: {exc.message}", advice=exc.advice, key_advice=exc.key_advice
    )


def _plan_all(
    action: str,
    engine: Engine,
    cfg: HarnessConfig,
    plan_one: Callable[[str], ActionPlan | str],
) -> ActionPlan:
    """A plan over every migration `acted_on` covers: each planned by `plan_one` (a plan, or
    the reason it is left alone), all checked before anything is written; the first refusal
    refuses the whole, naming its migration."""
    parts: list[ActionPlan] = []
    alone: list[tuple[str, str]] = []
    for name in acted_on(engine, cfg):
        try:
            planned = plan_one(name)
        except StateConflictError:
            raise
        except ActionError as exc:
            raise _refused_by(name, exc) from None
        if isinstance(planned, str):
            alone.append((name, planned))
        else:
            parts.append(planned)
    if not parts:
        why = "; ".join(f"{name}: {reason}" for name, reason in alone)
        raise ActionError(f"nothing to {action} to ({why})")
    first = parts[0]
    return replace(
        first,
        before=current_state(engine, cfg),
        verdict=combined({p.migration or "": p.verdict for p in parts}),
        forced=any(p.forced for p in parts),
        expect=None,
        migration=None,
        parts=tuple(parts),
        left_alone=tuple(alone),
    )


def plan_promote(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    force: bool = False,
    now_ns: int | None = None,
    seen: LiveState | None = None,
    from_stage: str | None = None,
    rejudge: bool = False,
    migration: str | None = None,
) -> ActionPlan:
    """The promotion `promote` would make now, of `migration` (None: every migration; one
    already at the last stage of its ladder is left alone), from the state `seen` (or
    `from_stage`, or the state read now), judged by the gate settings stored with the stage
    (`rejudge`: by `cfg.gate`); ActionError (the sentence `promote` raises, naming the
    migration) when there is no stage above, or the gate does not PASS and `force` is off;
    `StateMovedError` when the state is no longer what was seen."""
    name = migration if migration is not None else (seen.migration if seen else None)
    if name is None:
        _check_seen_all(engine, cfg, seen, kill=True, breakers=True)

        def one(each: str) -> ActionPlan | str:
            state = current_state(engine, cfg, each)
            ladder = _ladder(cfg, each)
            _on_ladder("--from", from_stage, ladder)
            if _index(cfg, state.stage, each) + 1 >= len(ladder):
                return f"already at the last stage, {state.stage}"
            return plan_promote(
                engine, cfg, force=force, now_ns=now_ns, from_stage=from_stage,
                rejudge=rejudge, migration=each,
            )  # fmt: skip

        return _plan_all("promote", engine, cfg, one)
    state, expect = _decided_on(
        engine, cfg, seen=seen, from_stage=from_stage, kill=True, breakers=True, migration=name
    )
    stages = _ladder(cfg, name)
    i = _index(cfg, state.stage, name)
    if i + 1 >= len(stages):
        raise ActionError(f"{state.stage!r} is the last stage: nothing to promote to")
    judged = verdict(engine, cfg, state, now_ns, rejudge=rejudge)
    passed = judged.result is Outcome.PASS
    if not passed and not force:
        not_passed = [c for c in judged.criteria if c.result is not Outcome.PASS]
        not_passed.sort(key=lambda c: c.result is not Outcome.FAIL)  # the FAILs first
        failing = [
            f"{str(c.op) if c.op else 'stage'} {c.criterion.value}: {c.result.value}"
            for c in not_passed
        ]
        shown = "; ".join(failing[:6]) + (" ..." if len(failing) > 6 else "")
        settings = judged.gate_settings or {}
        by = f", judged by gate settings {settings['name']!r}" if settings else ""
        flag = f" --migration {name}" if migration is not None else ""
        raise ActionError(
            f"the gate says {judged.result.value} for stage {state.stage!r} ({shown}){by}: "
            "not promoted",
            advice=f"`harness gate{flag}` shows why; --force --reason TEXT overrides",
            key_advice="the gate screen, key 2, shows why; P forces it, with a reason",
        )
    forced = force and not passed
    own = stage_gate(gate_of(cfg, name))
    return ActionPlan(
        "promote", state, stages[i], stages[i + 1], judged, forced, expect, own, name,
        tuple(operations_of(engine, cfg, name)),
    )  # fmt: skip


def plan_rollback(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    to: str | None = None,
    now_ns: int | None = None,
    seen: LiveState | None = None,
    from_stage: str | None = None,
    migration: str | None = None,
) -> ActionPlan:
    """The rollback `rollback` would make now (one stage down, or to the stage `to`), of
    `migration` (None: every migration; one already at the first stage, or at or below `to`,
    is left alone), from the stage `seen` (or `from_stage`, or read now); ActionError when
    there is no stage below or `to` is not below the current stage, ActionInputError when `to`
    is not on the ladder, `StateMovedError` when the stage is no longer the one seen."""
    name = migration if migration is not None else (seen.migration if seen else None)
    if name is None:
        _check_seen_all(engine, cfg, seen)

        def one(each: str) -> ActionPlan | str:
            ladder = _ladder(cfg, each)
            _on_ladder("--from", from_stage, ladder)
            if to is not None and to not in {s.name for s in ladder}:
                names = ", ".join(s.name for s in ladder)
                raise ActionInputError(f"--to {to!r} is not on this ladder ({names})")
            state = current_state(engine, cfg, each)
            i = _index(cfg, state.stage, each)
            if to is not None and _index(cfg, to, each) >= i:
                return f"--to {to!r} is not below its stage {state.stage!r}"
            if i == 0:
                return f"already at the first stage, {state.stage}"
            return plan_rollback(
                engine, cfg, to=to, now_ns=now_ns, from_stage=from_stage, migration=each
            )

        return _plan_all("roll back", engine, cfg, one)
    stages = _ladder(cfg, name)
    if to is not None and to not in {s.name for s in stages}:
        names = ", ".join(s.name for s in stages)
        raise ActionInputError(f"--to {to!r} is not on this ladder ({names})")
    state, expect = _decided_on(engine, cfg, seen=seen, from_stage=from_stage, migration=name)
    i = _index(cfg, state.stage, name)
    if to is None:
        if i == 0:
            raise ActionError(f"{state.stage!r} is the first stage: nothing to roll back to")
        target = stages[i - 1]
    else:
        target = stage_config(cfg, to, name)
        if _index(cfg, to, name) >= i:
            raise ActionError(f"--to {to!r} is not below the current stage {state.stage!r}")
    judged = verdict(engine, cfg, state, now_ns)
    own = stage_gate(gate_of(cfg, name))
    return ActionPlan(
        "rollback", state, stages[i], target, judged, expect=expect, next_gate=own,
        migration=name, ops=tuple(operations_of(engine, cfg, name)),
    )  # fmt: skip


WHO_MAX_CHARS: Final = 255
"""The longest `who` accepted: the size of `rollout_events.who` (String(255)). PostgreSQL would
refuse a longer one in the middle of the action's transaction and SQLite would keep it, so the
same text is refused on both before anything is written."""
REASON_MAX_CHARS: Final = 1_000
"""The longest reason accepted (`rollout_events.reason` is unbounded Text): a sentence and a
ticket link fit many times over, and it stays a few lines on the 80-column event log and the
kill banner, where 100,000 characters would bury every other line."""


def _shown(text: str, limit: int = 60) -> str:
    """`text` as an error line quotes it: escaped, and cut after `limit` characters."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return repr(printable(cut))


def person_text(field: str, text: str | None, *, limit: int) -> str | None:
    """The one rule for text a person types that is shown later (`--reason`, `--who`, and the
    dashboard's reason and who fields): stripped, None when empty. Raises `ActionInputError`
    naming `field` and the value (escaped, cut) when it holds a character a screen would act
    on instead of showing (`harness.output.unsafe_character`: a terminal escape would be
    replayed on every screen showing the event log, a line break would forge a line), or when
    it is longer than `limit` characters (`WHO_MAX_CHARS`, `REASON_MAX_CHARS`)."""
    value = (text or "").strip()
    bad = unsafe_character(value)
    if bad is not None:
        raise ActionInputError(
            f"{field} holds a control character ({printable(bad)}; a terminal escape, a tab or "
            f"a line break would be replayed by every screen showing it): {_shown(value)}"
        )
    if len(value) > limit:
        raise ActionInputError(
            f"{field} is {len(value):,} characters long, at most {limit:,} are kept: "
            f"{_shown(value)}"
        )
    return value or None


def _reason(reason: str | None, action: str, *, required: bool) -> str | None:
    """The reason as stored (`person_text`); `ActionInputError` when one is required and
    missing."""
    text = person_text("--reason", reason, limit=REASON_MAX_CHARS)
    if required and text is None:
        raise ActionInputError(f"{action} needs a reason (--reason TEXT)")
    return text


def _who(who: str | None) -> str | None:
    """Who acts, as stored (`person_text`; None: the OS user)."""
    return person_text("--who", who, limit=WHO_MAX_CHARS)


def _moves(plan: ActionPlan, cfg: HarnessConfig) -> list[StageMove]:
    parts = plan.parts or (plan,)
    return [
        StageMove(
            p.migration or "",
            p.to_stage.name,
            expect=p.expect,
            gate=_event_gate(p.verdict, cfg, p.migration),
            stage_gate=p.next_gate,
            ops=frozenset(p.ops) if p.migration else None,
        )
        for p in parts
    ]


def _result(action: str, plan: ActionPlan, after: dict[str, LiveState]) -> ActionResult:
    """The result of a stage change written by `set_stages` from `plan`."""
    parts = tuple(
        ActionResult(
            action,
            p.before,
            after[p.migration or ""],
            p.verdict,
            forced=p.forced,
            migration=p.migration,
        )
        for p in (plan.parts or (plan,))
    )
    if not plan.parts:
        return parts[0]
    first = parts[0]
    return ActionResult(
        action, plan.before, first.after, plan.verdict, forced=plan.forced, parts=parts,
        left_alone=plan.left_alone,
    )  # fmt: skip


def promote(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    who: str | None = None,
    reason: str | None = None,
    force: bool = False,
    seen: LiveState | None = None,
    from_stage: str | None = None,
    rejudge: bool = False,
    on_busy: BusyHook = None,
    migration: str | None = None,
    automatic: bool = False,
) -> ActionResult:
    """Move `migration` to the next stage of its ladder if the gate PASSes (or, with `force`
    and a reason, regardless). `automatic` marks the promotion the gate monitor made on a PASS
    (event `auto_promote`, `harness.control.monitor`); it decides which stages it may reach
    and when, this only writes it, as any promotion.

    `migration` None: every migration, each to the next stage of its own ladder, atomically:
    each is checked first and one refusal refuses the whole (naming the migration), nothing
    written; a migration already at the last stage is left alone (named in the result), so
    `harness promote` keeps climbing the ones below. Judged by the gate settings stored with
    each stage; `rejudge` (with a reason) judges by `cfg.gate` instead, recorded as such in
    the event's verdict. Decided on `seen` / `from_stage` (see the module docstring): refused
    with `StateMovedError` when the stage, the kill flag or the open breakers moved since. A
    forced promotion is recorded with `forced = True` and the verdict it overrode. One event
    per migration moved, naming it.
    """
    asked = "a forced promotion" if force else "a re-judged promotion" if rejudge else "promote"
    reason = _reason(reason, asked, required=force or rejudge)
    who = _who(who)
    check_migration(engine, cfg, migration)
    plan = plan_promote(
        engine, cfg, force=force, seen=seen, from_stage=from_stage, rejudge=rejudge,
        migration=migration,
    )  # fmt: skip
    for part in plan.parts or (plan,):
        _stored(engine, cfg, part.before)
    kind = EventKind.AUTO_PROMOTE if automatic else EventKind.PROMOTE
    after = set_stages(
        engine, _moves(plan, cfg), kind=kind, who=who, reason=reason,
        forced=plan.forced, wait_s=cfg.db.write_wait_s, on_busy=on_busy,
    )  # fmt: skip
    return _result(kind, plan, after)


def rollback(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    to: str | None = None,
    who: str | None = None,
    reason: str | None = None,
    automatic: bool = False,
    seen: LiveState | None = None,
    from_stage: str | None = None,
    on_busy: BusyHook = None,
    migration: str | None = None,
) -> ActionResult:
    """Move `migration` down its ladder at once: one stage, or to the stage `to` (below the
    current one).

    `migration` None: every migration, atomically (one refusal refuses the whole, naming the
    migration); one already at its first stage, or at or below `to`, is left alone. Decided
    on the stage of `seen` / `from_stage` (see the module docstring): `StateMovedError` when it
    moved since. `automatic` marks the rollback a running stage's critical FAIL made (event
    `auto_rollback`), decided on the state that was judged. One event per migration moved.
    """
    reason = _reason(reason, "rollback", required=False)
    who = _who(who)
    check_migration(engine, cfg, migration)
    plan = plan_rollback(engine, cfg, to=to, seen=seen, from_stage=from_stage, migration=migration)
    for part in plan.parts or (plan,):
        _stored(engine, cfg, part.before)
    kind = EventKind.AUTO_ROLLBACK if automatic else EventKind.ROLLBACK
    after = set_stages(
        engine, _moves(plan, cfg), kind=kind, who=who, reason=reason,
        wait_s=cfg.db.write_wait_s, on_busy=on_busy,
    )  # fmt: skip
    return _result("auto_rollback" if automatic else "rollback", plan, after)


def _verdict_if_judged(engine: Engine, cfg: HarnessConfig, state: LiveState) -> Verdict | None:
    """The verdict for a kill's or unkill's event, or None when this config cannot judge the
    store's stage (not on its ladder): the kill must land all the same."""
    try:
        return verdict(engine, cfg, state)
    except ActionError:
        return None


def kill(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    who: str | None = None,
    reason: str | None = None,
    on_busy: BusyHook = None,
    migration: str | None = None,
) -> ActionResult:
    """Send `migration`'s operations to Python in every process (within about a second);
    `migration` None: the global kill flag, every migration, registered later ones too.

    A kill expects nothing of the state, so it always lands: its compare-and-set is made again
    when something else commits at the same moment (a promotion, a breaker trip). When the
    flag is already set, nothing is written (`changed` False). A store with no rollout state
    yet gets one first (each migration at its start stage), then the kill.
    """
    reason = _reason(reason, "kill", required=False)
    who = _who(who)
    check_migration(engine, cfg, migration)
    state = current_state(engine, cfg, migration)
    judged = _verdict_if_judged(engine, cfg, state)
    state = _stored(engine, cfg, state)
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
    return ActionResult("kill", state, after, judged, changed=changed, migration=migration)


def unkill(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    who: str | None = None,
    reason: str | None = None,
    seen: LiveState | None = None,
    from_stage: str | None = None,
    on_busy: BusyHook = None,
    migration: str | None = None,
) -> ActionResult:
    """Clear `migration`'s kill flag (None: the global one and every migration's own): routing
    follows the stage again, the stage of `seen` / `from_stage` (`StateMovedError` when it
    moved since). When the flag is already clear, nothing is written (`changed` False). A
    migration's own unkill leaves the global flag as it is (`harness status` says so)."""
    reason = _reason(reason, "unkill", required=False)
    who = _who(who)
    check_migration(engine, cfg, migration)
    name = migration if migration is not None else (seen.migration if seen else None)
    state, expect = _decided_on(engine, cfg, seen=seen, from_stage=from_stage, migration=name)
    judged = _verdict_if_judged(engine, cfg, state)
    if not state.started:  # no rollout state yet, so no kill flag to clear: nothing written
        return ActionResult("unkill", state, state, judged, changed=False, migration=name)
    after, changed = change_kill(
        engine,
        False,
        migration=name,
        who=who,
        reason=reason,
        gate=None if judged is None else judged.to_dict(),
        expect=expect,
        ops=None if name is None else frozenset(operations_of(engine, cfg, name)),
        wait_s=cfg.db.write_wait_s,
        on_busy=on_busy,
    )
    return ActionResult("unkill", state, after, judged, changed=changed, migration=name)


def reset_breaker(
    engine: Engine,
    cfg: HarnessConfig,
    op: str,
    *,
    who: str | None = None,
    reason: str | None = None,
    seen: LiveState | None = None,
    from_stage: str | None = None,
    on_busy: BusyHook = None,
    migration: str | None = None,
) -> ActionResult:
    """Close `op`'s circuit breaker (ActionError if it is not open): `op` returns to the
    percentage of its migration's stage of `seen` / `from_stage` (`StateMovedError` when it
    moved). `migration`, when given, must be `op`'s (`ActionInputError` otherwise)."""
    reason = _reason(reason, "reset", required=False)
    who = _who(who)
    op = str(op)
    check_migration(engine, cfg, migration)
    owner = cfg.rollout.migration_of(op)
    if owner is None:
        owner = next(
            (m for m in known_migrations(engine, cfg) if op in operations_of(engine, cfg, m)), None
        )
    if migration is not None and owner != migration:
        raise ActionInputError(
            f"{op} is not an operation of migration {migration} ({owner or 'no migration'}'s)"
        )
    name = migration or owner
    state, expect = _decided_on(engine, cfg, seen=seen, from_stage=from_stage, migration=name)
    if not state.started:  # no breaker trips before there is a rollout state
        raise ActionError(f"the {op} breaker is not open")
    closed = _reset_breaker(
        engine,
        op,
        migration=name,
        who=who,
        reason=reason,
        expect=expect,
        ops=None if name is None else frozenset(operations_of(engine, cfg, name)),
        wait_s=cfg.db.write_wait_s,
        on_busy=on_busy,
    )
    if not closed:
        raise ActionError(f"the {op} breaker is not open")
    after = current_state(engine, cfg, name)
    return ActionResult("breaker_reset", state, after, None, migration=name)


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
    """One migration's rollout at one moment, read in one pass: what `harness status` prints
    and the dashboard shows every second.

    `figures` and `verdict` cover the current stage's window `[state.stage_since_ns, now)` of
    the migration's operations (`ops`), the window the gate judges, by the settings `judging`
    says (stored with the stage, see `harness.control.gates`); `breakers` holds a row per
    operation whose breaker ever tripped (every operation's); `native_available` /
    `native_error` are what the latest run saw (None: no run yet), `build_id` the build of the
    native module it loaded (None: no run, or one before 0006). `migration` None: every
    migration at once (`read_state`'s shared view, the default ladder, the `combined` verdict).
    """

    state: LiveState
    stage: StageConfig
    ladder: tuple[StageConfig, ...]
    figures: WindowFigures
    verdict: Verdict
    breakers: dict[str, BreakerState]
    native_available: bool | None
    native_error: str | None
    judging: Judging | None = None
    migration: str | None = None
    ops: tuple[str, ...] = ()
    build_id: str | None = None

    @property
    def gate_note(self) -> str | None:
        """One line when the settings judging the stage are not this config's own."""
        return None if self.judging is None else self.judging.note(self.state.stage)

    @property
    def next_stage(self) -> StageConfig | None:
        """The stage a promotion would move to (None at the top of the ladder)."""
        names = [s.name for s in self.ladder]
        if self.state.stage not in names:
            return None
        i = names.index(self.state.stage)
        return self.ladder[i + 1] if i + 1 < len(self.ladder) else None


def overview(
    engine: Engine,
    cfg: HarnessConfig,
    now_ns: int | None = None,
    *,
    rejudge: bool = False,
    migration: str | None = None,
) -> Overview:
    """`migration`'s rollout now (see `Overview`; None: every migration at once); `now_ns`
    ends the window (default: the clock); `rejudge` judges with `cfg.gate` instead of the
    settings stored with the stage."""
    state = current_state(engine, cfg, migration)
    with engine.connect() as conn:
        # Core rows (one attribute per column): `.scalars()` would keep only the first column.
        breakers = conn.execute(select(Breaker)).all()
        last_run = conn.execute(select(Run).order_by(Run.started_ns.desc()).limit(1)).first()
    if migration is None:
        names = acted_on(engine, cfg)
        first = sorted(names)[0] if names else None  # read_state's shared stage is the first's
        ladder = _ladder(cfg, first)
        stage = next((s for s in ladder if s.name == state.stage), ladder[0])
        until = max(now_ns or time.time_ns(), state.stage_since_ns)
        figures = window_figures(engine, state.stage, state.stage_since_ns, until)
        judged = combined(verdicts(engine, cfg, now_ns, rejudge=rejudge))
        how = None if first is None else gate_judging(cfg, current_state(engine, cfg, first))
        ops: tuple[str, ...] = tuple(op for m in names for op in operations_of(engine, cfg, m))
    else:
        ladder = _ladder(cfg, migration)
        stage = _store_stage(cfg, state.stage, migration)
        figures, judged, how = _judged(engine, cfg, state, now_ns, rejudge=rejudge)
        ops = tuple(operations_of(engine, cfg, migration))
    return Overview(
        state=state,
        stage=stage,
        ladder=tuple(ladder),
        figures=figures,
        verdict=judged,
        breakers={
            b.op: BreakerState(b.op, bool(b.is_open), b.reason, int(b.failures), b.opened_ns)
            for b in breakers
        },
        native_available=None if last_run is None else bool(last_run.native_available),
        native_error=None if last_run is None else last_run.native_error,
        judging=how,
        migration=migration,
        ops=ops,
        build_id=None if last_run is None else last_run.build_id,
    )


@dataclass(frozen=True, slots=True)
class AutoPromotion:
    """Whether the gate monitor promotes a migration on its own, and how far: `on`
    (`gate.auto_promote`), `until` (the last stage it promotes to, `gate.auto_promote_until`
    or the stage before the last), `trading_hours` (None: any time)."""

    on: bool
    until: str | None
    trading_hours: TradingHours | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: {on, until, trading_hours} (the hours as `TradingHours.describe` says)."""
        hours = None if self.trading_hours is None else self.trading_hours.describe()
        return {"on": self.on, "until": self.until, "trading_hours": hours}

    def text(self) -> str:
        """For a person (`auto_promotion_text`)."""
        return auto_promotion_text(self.to_dict())


def auto_promotion_text(data: dict[str, Any]) -> str:
    """`AutoPromotion.to_dict()` for a person: `on, up to staging_50, only in trading hours
    sun,mon,tue,wed,thu 17:00 -> 16:00 next day (America/Chicago)`, or `off`."""
    if not data["on"]:
        return "off"
    said = f"on, up to {data['until']}" if data["until"] else "on, nothing to promote to"
    if data["trading_hours"] is not None:
        said += f", only in trading hours {data['trading_hours']}"
    return said


def auto_promotion(cfg: HarnessConfig, migration: str) -> AutoPromotion:
    """`migration`'s automatic promotion as this config sets it (`AutoPromotion`); a
    migration the config does not know (a bot's, registered at run time) gets the gate's."""
    gate = gate_of(cfg, migration)
    return AutoPromotion(gate.auto_promote, auto_promote_until(cfg, migration), trading_hours(gate))


def _migration_status(view: Overview, cfg: HarnessConfig) -> dict[str, Any]:
    """One migration's part of `status` (stable keys)."""
    how = view.judging
    assert how is not None
    state, stage = view.state, view.stage
    following = view.next_stage
    return {
        "stage": state.stage,
        "started": state.started,
        "stage_since": view.verdict.to_dict()["since"] if state.started else None,
        "ladder": [s.name for s in view.ladder],
        "next_stage": None if following is None else following.name,
        "operations": list(view.ops),
        "percent": {op: stage.percent.of(op) for op in view.ops},
        "shadow_sample_rate": stage.shadow_sample_rate,
        "targets": {
            "symbols": list(stage.targets.symbols),
            "accounts": list(stage.targets.accounts),
        },
        "kill": state.kill,
        "kill_reason": state.kill_reason,
        "open_breakers": sorted(op for op in state.open_breakers if op in view.ops),
        "verdict": view.verdict.result.value,
        "gate_settings": {
            "judged_by": how.ref(),
            "this_command": {"name": how.own.name, "fingerprint": how.own.fingerprint},
            "note": view.gate_note,
        },
        "gate": view.verdict.to_dict(),
        "auto_promote": auto_promotion(cfg, view.migration or "").to_dict(),
    }


def status(
    engine: Engine, cfg: HarnessConfig, *, rejudge: bool = False, migration: str | None = None
) -> dict[str, Any]:
    """The rollout at a glance (JSON-able, stable keys).

    `migrations`: each migration's stage, `started` (False: the store holds no state for it
    yet, nothing is written to show it; `stage` is the one the first run or action starts),
    `stage_since`, ladder, next stage, operations and their percentages, shadow sample rate,
    targets, kill flag (its own or the global one), open breakers of its operations, the
    gate's verdict on its own window and `gate_settings` (which settings judged it, this
    command's own, and the `note` a command prints when they differ), by migration in config
    order (only `migration`'s when given).

    The top-level keys are every migration's at once (a script written before migrations keeps
    working), of the migrations `acted_on` covers: `stage` / `ladder` / `next_stage` /
    `shadow_sample_rate` / `stage_since` when they all share them, else null; `percent` of
    every operation (each belongs to one migration); `kill` (the global flag, or every
    migration's own), `kill_reason`; `env_kill`
    (`TOPSTEPX_USE_RUST` is false in this process's environment: any process started with it
    sends everything to Python whatever the stage); `breakers` of every operation; the native
    module as the latest run saw it and its `build_id`; `verdict`, the worst of the verdicts of
    the migrations `acted_on` covers; `gate` their `combined` verdict and `gate_settings` the
    first migration's. With `migration`, the top-level keys are that migration's.
    """
    check_migration(engine, cfg, migration)
    names = [migration] if migration is not None else known_migrations(engine, cfg)
    views = {name: overview(engine, cfg, rejudge=rejudge, migration=name) for name in names}
    parts = {name: _migration_status(view, cfg) for name, view in views.items()}
    any_view = next(iter(views.values()))

    judged_on = [name for name in acted_on(engine, cfg) if name in views] or list(views)

    def shared(key: str) -> Any:
        values = {json.dumps(parts[name][key], sort_keys=True) for name in judged_on}
        return parts[judged_on[0]][key] if len(values) == 1 else None

    every = current_state(engine, cfg, migration)
    judged = combined({name: views[name].verdict for name in judged_on})
    return {
        "stage": shared("stage"),
        "started": any(p["started"] for p in parts.values()),
        "stage_since": shared("stage_since"),
        "ladder": shared("ladder"),
        "next_stage": shared("next_stage"),
        "percent": {op: pct for p in parts.values() for op, pct in p["percent"].items()},
        "shadow_sample_rate": shared("shadow_sample_rate"),
        "kill": every.kill,
        "kill_reason": every.kill_reason,
        "env_kill": not env_allows_rust(),
        "breakers": {
            b.op: {"open": b.is_open, "reason": b.reason, "failures": b.failures}
            for b in any_view.breakers.values()
        },
        "native_available": any_view.native_available,
        "native_error": any_view.native_error,
        "build_id": any_view.build_id,
        "verdict": judged.result.value,
        "gate_settings": next(iter(parts.values()))["gate_settings"],
        "gate": judged.to_dict(),
        "migrations": parts,
    }
