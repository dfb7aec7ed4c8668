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

from harness.config import HarnessConfig, StageConfig
from harness.control.gates import Judging, judging, stage_gate
from harness.errors import HarnessError
from harness.gate import Verdict, judge
from harness.gate.figures import WindowFigures
from harness.gate.verdict import Outcome
from harness.operations import Operation
from harness.output import printable, unsafe_character
from harness.router.policy import env_allows_rust
from harness.store.models import Breaker, Run
from harness.store.queries import window_figures
from harness.store.state import (
    EventKind,
    Expected,
    LiveState,
    StageGate,
    change_kill,
    ensure_state,
    moved_error,
    not_started,
    read_state,
    set_stage,
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
    "BreakerState",
    "Overview",
    "current_state",
    "gate_judging",
    "kill",
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
    set, an unkill while it is clear): nothing was written then.
    """

    action: str
    before: LiveState
    after: LiveState
    verdict: Verdict | None
    forced: bool = False
    changed: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (stable keys)."""
        return {
            "action": self.action,
            "from_stage": self.before.stage,
            "to_stage": self.after.stage,
            "kill": self.after.kill,
            "forced": self.forced,
            "changed": self.changed,
            "verdict": None if self.verdict is None else self.verdict.result.value,
        }

    def summary(self) -> str:
        """One line for a person, as `harness promote` (and the others) print it."""
        if self.action in ("kill", "unkill"):
            if not self.changed:
                if self.after.kill:
                    why = printable(self.after.kill_reason or "no reason given")
                    return (
                        f"{self.action}: the kill flag was already set at stage "
                        f"{self.after.stage} ({why}): nothing written"
                    )
                return (
                    f"{self.action}: the kill flag was not set at stage {self.after.stage}: "
                    "nothing written"
                )
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
    """The store's rollout state with its stage's gate settings; if there is none yet, the one
    the first run or action would start at `rollout.start_stage` (`LiveState.started` False),
    with nothing written: reading needs no write access (a read-only store, `harness status` on
    a copy)."""
    with engine.connect() as conn:
        state = read_state(conn, with_gate=True)
    return state if state is not None else not_started(_start_stage(cfg))


def started_state(engine: Engine, cfg: HarnessConfig) -> LiveState:
    """The store's rollout state, written first at `rollout.start_stage` (with its `start`
    event, judged by `cfg.gate` from then on) if there is none yet: what an action that writes
    does before it compares and sets."""
    return _stored(engine, cfg, current_state(engine, cfg))


def _stored(engine: Engine, cfg: HarnessConfig, state: LiveState) -> LiveState:
    """`state`, written first (with its `start` event, judged by `cfg.gate`) if it is one no
    store holds yet: an action about to write needs the row it compares and sets."""
    if state.started:
        return state
    for name in cfg.rollout.migration_names():
        ensure_state(
            engine,
            cfg.rollout.start_of(name),
            migration=name,
            gate=stage_gate(cfg.gate.for_migration(cfg.rollout.migration(name))),
            wait_s=cfg.db.write_wait_s,
        )
    with engine.connect() as conn:
        created = read_state(conn, with_gate=True)
    assert created is not None  # ensure_state made it, or found another process's
    return created


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
    engine: Engine,
    cfg: HarnessConfig,
    state: LiveState | None = None,
    now_ns: int | None = None,
    *,
    rejudge: bool = False,
) -> Verdict:
    """The gate's judgement of the current stage since it was entered, by the gate settings
    stored with the stage (`harness.control.gates`; `rejudge`: by `cfg.gate` instead)."""
    state = state or current_state(engine, cfg)
    return _judged(engine, cfg, state, now_ns, rejudge=rejudge)[1]


def gate_judging(cfg: HarnessConfig, state: LiveState, *, rejudge: bool = False) -> Judging:
    """Which gate settings judge `state`'s stage for a command configured with `cfg`
    (`harness.control.gates.judging`): its `note()` is the line a command prints when they
    are not its own."""
    return judging(cfg.gate, state.gate, rejudge=rejudge)


def _judged(
    engine: Engine,
    cfg: HarnessConfig,
    state: LiveState,
    now_ns: int | None,
    *,
    rejudge: bool = False,
) -> tuple[WindowFigures, Verdict, Judging]:
    """The current stage's window figures (`[stage_since, now)`), the gate's verdict on them,
    and the settings it was judged by (stored with the stage, see `gate_judging`).

    A stage entered after `now` (another machine's clock runs ahead of this one) is judged
    over an empty window, not refused.
    """
    stage = stage_config(cfg, state.stage)
    until = max(now_ns or time.time_ns(), state.stage_since_ns)
    figures = window_figures(engine, state.stage, state.stage_since_ns, until)
    how = gate_judging(cfg, state, rejudge=rejudge)
    judged = replace(judge(figures, how.gate, stage), gate_settings=how.ref())
    return figures, judged, how


def _event_gate(judged: Verdict, cfg: HarnessConfig) -> dict[str, Any]:
    """A stage change's event: the verdict it was judged by, and in full the gate settings the
    new stage is stored with (this command's), so the log says what judged every stage."""
    own = stage_gate(cfg.gate)
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
) -> tuple[LiveState, Expected]:
    """The state read now, and what the action expects of it when it writes: the stage (and
    the kill flag and open breakers, when asked) of `seen`, else the stage `from_stage` names,
    else what this read found. Raises `ActionInputError` for a `from_stage` not on the ladder
    and `StateMovedError` at once when the read already differs from the expectation."""
    if from_stage is not None and from_stage not in {s.name for s in cfg.rollout.stages}:
        names = ", ".join(s.name for s in cfg.rollout.stages)
        raise ActionInputError(f"--from {from_stage!r} is not on this ladder ({names})")
    state = current_state(engine, cfg)
    if seen is not None:
        expect = Expected.of(seen, kill=kill, breakers=breakers)
    else:
        read = Expected.of(state, kill=kill, breakers=breakers)
        expect = read if from_stage is None else Expected(from_stage, read.kill, read.open_breakers)
    if expect.moves(state):
        with engine.connect() as conn:
            raise moved_error(conn, expect, state)
    return state, expect


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """What a promotion or rollback would do, checked as the action checks it; nothing written.

    `verdict` is the gate's judgement it was checked against; `forced` is True for a promotion
    that goes ahead only because it was forced (the gate did not PASS); `expect` is what the
    action will require of the state when it writes (see `_decided_on`); `next_gate` the gate
    settings the new stage will be stored with (the acting config's own).
    """

    action: str
    before: LiveState
    from_stage: StageConfig
    to_stage: StageConfig
    verdict: Verdict
    forced: bool = False
    expect: Expected | None = None
    next_gate: StageGate | None = None

    def percent_changes(self) -> list[tuple[Operation, float, float]]:
        """(operation, % to Rust now, % after) for every operation, in `Operation` order."""
        return [
            (op, self.from_stage.percent.of(op), self.to_stage.percent.of(op)) for op in Operation
        ]


def plan_promote(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    force: bool = False,
    now_ns: int | None = None,
    seen: LiveState | None = None,
    from_stage: str | None = None,
    rejudge: bool = False,
) -> ActionPlan:
    """The promotion `promote` would make now, from the state `seen` (or `from_stage`, or
    the state read now), judged by the gate settings stored with the stage (`rejudge`: by
    `cfg.gate`); ActionError (the sentence `promote` raises) when there is no stage above, or
    the gate does not PASS and `force` is off; `StateMovedError` when the state is no longer
    what was seen."""
    state, expect = _decided_on(
        engine, cfg, seen=seen, from_stage=from_stage, kill=True, breakers=True
    )
    i = _index(cfg, state.stage)
    if i + 1 >= len(cfg.rollout.stages):
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
        raise ActionError(
            f"the gate says {judged.result.value} for stage {state.stage!r} ({shown}){by}: "
            "not promoted",
            advice="`harness gate` shows why; --force --reason TEXT overrides",
            key_advice="the gate screen, key 2, shows why; P forces it, with a reason",
        )
    stages = cfg.rollout.stages
    forced = force and not passed
    own = stage_gate(cfg.gate)
    return ActionPlan("promote", state, stages[i], stages[i + 1], judged, forced, expect, own)


def plan_rollback(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    to: str | None = None,
    now_ns: int | None = None,
    seen: LiveState | None = None,
    from_stage: str | None = None,
) -> ActionPlan:
    """The rollback `rollback` would make now (one stage down, or to the stage `to`), from the
    stage `seen` (or `from_stage`, or read now); ActionError when there is no stage below or
    `to` is not below the current stage, ActionInputError when `to` is not on the ladder,
    `StateMovedError` when the stage is no longer the one seen."""
    if to is not None and to not in {s.name for s in cfg.rollout.stages}:
        names = ", ".join(s.name for s in cfg.rollout.stages)
        raise ActionInputError(f"--to {to!r} is not on this ladder ({names})")
    state, expect = _decided_on(engine, cfg, seen=seen, from_stage=from_stage)
    i = _index(cfg, state.stage)
    if to is None:
        if i == 0:
            raise ActionError(f"{state.stage!r} is the first stage: nothing to roll back to")
        target = cfg.rollout.stages[i - 1]
    else:
        target = stage_config(cfg, to)
        if _index(cfg, to) >= i:
            raise ActionError(f"--to {to!r} is not below the current stage {state.stage!r}")
    judged = verdict(engine, cfg, state, now_ns)
    own = stage_gate(cfg.gate)
    return ActionPlan(
        "rollback", state, cfg.rollout.stages[i], target, judged, expect=expect, next_gate=own
    )


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
) -> ActionResult:
    """Move to the next stage if the gate PASSes (or, with `force` and a reason, regardless).

    Judged by the gate settings stored with the stage; `rejudge` (with a reason) judges by
    `cfg.gate` instead, recorded as such in the event's verdict. Decided on `seen` /
    `from_stage` (see the module docstring): refused with `StateMovedError` when the stage, the
    kill flag or the open breakers moved since. A forced promotion is recorded with
    `forced = True` and the verdict it overrode.
    """
    asked = "a forced promotion" if force else "a re-judged promotion" if rejudge else "promote"
    reason = _reason(reason, asked, required=force or rejudge)
    who = _who(who)
    plan = plan_promote(engine, cfg, force=force, seen=seen, from_stage=from_stage, rejudge=rejudge)
    _stored(engine, cfg, plan.before)
    after = set_stage(
        engine,
        plan.to_stage.name,
        kind=EventKind.PROMOTE,
        who=who,
        reason=reason,
        forced=plan.forced,
        gate=_event_gate(plan.verdict, cfg),
        expect=plan.expect,
        stage_gate=stage_gate(cfg.gate),
        wait_s=cfg.db.write_wait_s,
        on_busy=on_busy,
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
    seen: LiveState | None = None,
    from_stage: str | None = None,
    on_busy: BusyHook = None,
) -> ActionResult:
    """Move down the ladder at once: one stage, or to the stage `to` (below the current one).

    Decided on the stage of `seen` / `from_stage` (see the module docstring):
    `StateMovedError` when it moved since. `automatic` marks the rollback a running stage's
    critical FAIL made (event `auto_rollback`), decided on the state that was judged.
    """
    reason = _reason(reason, "rollback", required=False)
    who = _who(who)
    plan = plan_rollback(engine, cfg, to=to, seen=seen, from_stage=from_stage)
    _stored(engine, cfg, plan.before)
    after = set_stage(
        engine,
        plan.to_stage.name,
        kind=EventKind.AUTO_ROLLBACK if automatic else EventKind.ROLLBACK,
        who=who,
        reason=reason,
        gate=_event_gate(plan.verdict, cfg),
        expect=plan.expect,
        stage_gate=stage_gate(cfg.gate),
        wait_s=cfg.db.write_wait_s,
        on_busy=on_busy,
    )
    action = "auto_rollback" if automatic else "rollback"
    return ActionResult(action, plan.before, after, plan.verdict)


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
) -> ActionResult:
    """Send every operation to Python in every process (within about a second).

    A kill expects nothing of the state, so it always lands: its compare-and-set is made again
    when something else commits at the same moment (a promotion, a breaker trip). When the
    kill flag is already set, nothing is written (`changed` False). A store with no rollout
    state yet gets one first (at `rollout.start_stage`), then the kill.
    """
    reason = _reason(reason, "kill", required=False)
    who = _who(who)
    state = current_state(engine, cfg)
    judged = _verdict_if_judged(engine, cfg, state)
    state = _stored(engine, cfg, state)
    after, changed = change_kill(
        engine,
        True,
        who=who,
        reason=reason,
        gate=None if judged is None else judged.to_dict(),
        wait_s=cfg.db.write_wait_s,
        on_busy=on_busy,
    )
    return ActionResult("kill", state, after, judged, changed=changed)


def unkill(
    engine: Engine,
    cfg: HarnessConfig,
    *,
    who: str | None = None,
    reason: str | None = None,
    seen: LiveState | None = None,
    from_stage: str | None = None,
    on_busy: BusyHook = None,
) -> ActionResult:
    """Clear the kill flag: routing follows the stage again, the stage of `seen` /
    `from_stage` (`StateMovedError` when it moved since). When the flag is already clear,
    nothing is written (`changed` False)."""
    reason = _reason(reason, "unkill", required=False)
    who = _who(who)
    state, expect = _decided_on(engine, cfg, seen=seen, from_stage=from_stage)
    judged = _verdict_if_judged(engine, cfg, state)
    if not state.started:  # no rollout state yet, so no kill flag to clear: nothing written
        return ActionResult("unkill", state, state, judged, changed=False)
    after, changed = change_kill(
        engine,
        False,
        who=who,
        reason=reason,
        gate=None if judged is None else judged.to_dict(),
        expect=expect,
        wait_s=cfg.db.write_wait_s,
        on_busy=on_busy,
    )
    return ActionResult("unkill", state, after, judged, changed=changed)


def reset_breaker(
    engine: Engine,
    cfg: HarnessConfig,
    op: Operation,
    *,
    who: str | None = None,
    reason: str | None = None,
    seen: LiveState | None = None,
    from_stage: str | None = None,
    on_busy: BusyHook = None,
) -> ActionResult:
    """Close `op`'s circuit breaker (ActionError if it is not open): `op` returns to the
    percentage of the stage of `seen` / `from_stage` (`StateMovedError` when it moved)."""
    reason = _reason(reason, "reset", required=False)
    who = _who(who)
    state, expect = _decided_on(engine, cfg, seen=seen, from_stage=from_stage)
    if not state.started:  # no breaker trips before there is a rollout state
        raise ActionError(f"the {op.value} breaker is not open")
    closed = _reset_breaker(
        engine,
        op.value,
        who=who,
        reason=reason,
        expect=expect,
        wait_s=cfg.db.write_wait_s,
        on_busy=on_busy,
    )
    if not closed:
        raise ActionError(f"the {op.value} breaker is not open")
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
    the window the gate judges, by the settings `judging` says (stored with the stage, see
    `harness.control.gates`); `breakers` holds a row per operation whose breaker ever
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
    judging: Judging | None = None

    @property
    def gate_note(self) -> str | None:
        """One line when the settings judging the stage are not this config's own."""
        return None if self.judging is None else self.judging.note(self.state.stage)

    @property
    def next_stage(self) -> StageConfig | None:
        """The stage a promotion would move to (None at the top of the ladder)."""
        names = [s.name for s in self.ladder]
        i = names.index(self.state.stage)
        return self.ladder[i + 1] if i + 1 < len(self.ladder) else None


def overview(
    engine: Engine, cfg: HarnessConfig, now_ns: int | None = None, *, rejudge: bool = False
) -> Overview:
    """The rollout now (see `Overview`); `now_ns` ends the window (default: the clock);
    `rejudge` judges with `cfg.gate` instead of the settings stored with the stage."""
    state = current_state(engine, cfg)
    stage = stage_config(cfg, state.stage)
    figures, judged, how = _judged(engine, cfg, state, now_ns, rejudge=rejudge)
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
        judging=how,
    )


def status(engine: Engine, cfg: HarnessConfig, *, rejudge: bool = False) -> dict[str, Any]:
    """The rollout at a glance (JSON-able, stable keys): stage and its percentages, the kill
    flag, `env_kill` (`TOPSTEPX_USE_RUST` is false in this process's environment: any process
    started with it sends everything to Python whatever the stage), breakers, the native module
    as the latest run saw it, the gate's verdict, and `gate_settings`: which settings judged it
    (`judged_by`: name, fingerprint, source), this command's own (`this_command`) and the
    `note` a command prints when they differ (null when not). `started` False: the store holds
    no rollout state yet (nothing is written to show it); `stage` is the one the first run or
    action starts, `stage_since` None."""
    view = overview(engine, cfg, rejudge=rejudge)
    how = view.judging
    assert how is not None
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
        "gate_settings": {
            "judged_by": how.ref(),
            "this_command": {"name": how.own.name, "fingerprint": how.own.fingerprint},
            "note": view.gate_note,
        },
        "gate": view.verdict.to_dict(),
    }
