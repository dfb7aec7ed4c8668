"""The live rollout state and every change to it, as one transaction each.

`read_state` is what every router polls (one indexed row, plus the breakers only when `version`
moved). The actions (`set_stage`, `set_kill`, `trip_breaker`, `reset_breaker`) are the only
writers: the CLI, the dashboard and the router call these same functions, so an event is always
written the same way. Each action is a compare-and-set on the state row, so two processes acting
at once cannot both promote, and each writes exactly one `rollout_events` row.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from harness.errors import HarnessError
from harness.store.models import Breaker, RolloutEvent, RolloutState

__all__ = [
    "EventKind",
    "LiveState",
    "StateConflictError",
    "default_who",
    "ensure_state",
    "not_started",
    "read_state",
    "reset_breaker",
    "set_kill",
    "set_stage",
    "trip_breaker",
    "write_event",
]

STATE_ID: Final = 1


class EventKind:
    """The `kind` values of `rollout_events`."""

    START = "start"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    AUTO_ROLLBACK = "auto_rollback"
    KILL = "kill"
    UNKILL = "unkill"
    BREAKER_TRIP = "breaker_trip"
    BREAKER_RESET = "breaker_reset"
    NATIVE_UNAVAILABLE = "native_unavailable"
    ROWS_DROPPED = "rows_dropped"


class StateConflictError(HarnessError):
    """The state changed under an action (another process acted first); nothing was written."""


@dataclass(frozen=True, slots=True)
class LiveState:
    """What a router needs to decide: the stage, the kill flag, the open breakers.

    `stage_since_ns` opens the stage's window; `version` grows with every change.
    """

    stage: str
    stage_since_ns: int
    kill: bool
    kill_reason: str | None
    open_breakers: frozenset[str]
    version: int
    updated_ns: int

    @property
    def started(self) -> bool:
        """Whether the store holds this state (False: `not_started`, what the first run or
        action would start, read from a store that has none yet)."""
        return self.version > 0


def not_started(start_stage: str, now_ns: int | None = None) -> LiveState:
    """The state a store without one would start at `start_stage` (`version` 0, nothing
    written): what a reader shows, so that reading never needs to write."""
    now = _now() if now_ns is None else now_ns
    return LiveState(start_stage, now, False, None, frozenset(), 0, now)


def default_who() -> str:
    """The OS user, as actions record `who` when none is given."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def _now() -> int:
    return time.time_ns()


def new_id() -> str:
    """A fresh row id: 32 hex digits."""
    return uuid.uuid4().hex


def read_state(conn: Connection, known: LiveState | None = None) -> LiveState | None:
    """The current state (None before the first `ensure_state`).

    When `known` has the same version, it is returned as is (no second query).
    """
    row = conn.execute(
        select(
            RolloutState.stage,
            RolloutState.stage_since_ns,
            RolloutState.kill,
            RolloutState.kill_reason,
            RolloutState.version,
            RolloutState.updated_ns,
        ).where(RolloutState.id == STATE_ID)
    ).first()
    if row is None:
        return None
    if known is not None and known.version == row.version:
        return known
    open_ops = conn.execute(select(Breaker.op).where(Breaker.is_open.is_(True))).scalars()
    return LiveState(
        stage=row.stage,
        stage_since_ns=int(row.stage_since_ns),
        kill=bool(row.kill),
        kill_reason=row.kill_reason,
        open_breakers=frozenset(open_ops),
        version=int(row.version),
        updated_ns=int(row.updated_ns),
    )


def write_event(
    conn: Connection,
    kind: str,
    *,
    who: str | None = None,
    reason: str | None = None,
    op: str | None = None,
    from_stage: str | None = None,
    to_stage: str | None = None,
    forced: bool = False,
    run_id: str | None = None,
    gate: dict[str, Any] | None = None,
    ts_ns: int | None = None,
) -> str:
    """Insert one `rollout_events` row in the caller's transaction; returns its id."""
    event_id = new_id()
    conn.execute(
        insert(RolloutEvent).values(
            id=event_id,
            ts_ns=_now() if ts_ns is None else ts_ns,
            kind=kind,
            op=op,
            from_stage=from_stage,
            to_stage=to_stage,
            who=who or default_who(),
            reason=reason,
            forced=forced,
            run_id=run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            gate=None if gate is None else json.dumps(gate, sort_keys=True, default=str),
        )
    )
    return event_id


def ensure_state(
    engine: Engine, start_stage: str, *, who: str | None = None, run_id: str | None = None
) -> LiveState:
    """The current state, creating it at `start_stage` (with a `start` event) if there is none.

    Safe when several processes start at once: exactly one creates the row.
    """
    with engine.begin() as conn:
        state = read_state(conn)
        if state is not None:
            return state
    now = _now()
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(RolloutState).values(
                    id=STATE_ID,
                    stage=start_stage,
                    stage_since_ns=now,
                    kill=False,
                    kill_reason=None,
                    version=1,
                    updated_ns=now,
                )
            )
            write_event(
                conn,
                EventKind.START,
                who=who,
                to_stage=start_stage,
                reason="no rollout state yet: starting at rollout.start_stage",
                run_id=run_id,
                ts_ns=now,
            )
    except IntegrityError:
        # Another process created it between our read and insert: read theirs.
        with engine.begin() as conn:
            state = read_state(conn)
        if state is None:
            raise
        return state
    with engine.begin() as conn:
        created = read_state(conn)
    assert created is not None
    return created


def _bump(conn: Connection, expect_version: int | None, **values: Any) -> LiveState:
    stmt = update(RolloutState).where(RolloutState.id == STATE_ID)
    if expect_version is not None:
        stmt = stmt.where(RolloutState.version == expect_version)
    result = conn.execute(
        stmt.values(version=RolloutState.version + 1, updated_ns=_now(), **values)
    )
    if result.rowcount != 1:
        raise StateConflictError(
            "the rollout state changed meanwhile (another process acted first): look again"
        )
    state = read_state(conn)
    assert state is not None
    return state


def _current(conn: Connection) -> LiveState:
    state = read_state(conn)
    if state is None:
        raise StateConflictError("no rollout state yet: start a run first")
    return state


def set_stage(
    engine: Engine,
    to_stage: str,
    *,
    kind: str,
    who: str | None = None,
    reason: str | None = None,
    forced: bool = False,
    gate: dict[str, Any] | None = None,
    expect_stage: str | None = None,
    run_id: str | None = None,
) -> LiveState:
    """Move to `to_stage` (promote, rollback or auto_rollback) and write its event.

    With `expect_stage`, nothing happens unless the stage is still that one (an automatic
    rollback from several processes lands once); raises `StateConflictError` otherwise.
    """
    with engine.begin() as conn:
        state = _current(conn)
        if expect_stage is not None and state.stage != expect_stage:
            raise StateConflictError(
                f"the stage is {state.stage!r}, not {expect_stage!r}: another process acted first"
            )
        now = _now()
        new_state = _bump(conn, state.version, stage=to_stage, stage_since_ns=now)
        write_event(
            conn,
            kind,
            who=who,
            reason=reason,
            from_stage=state.stage,
            to_stage=to_stage,
            forced=forced,
            gate=gate,
            run_id=run_id,
            ts_ns=now,
        )
    return new_state


def set_kill(
    engine: Engine,
    kill: bool,
    *,
    who: str | None = None,
    reason: str | None = None,
    gate: dict[str, Any] | None = None,
) -> LiveState:
    """Set (kill) or clear (unkill) the store's kill flag, with its event."""
    with engine.begin() as conn:
        state = _current(conn)
        new_state = _bump(conn, state.version, kill=kill, kill_reason=reason if kill else None)
        write_event(
            conn,
            EventKind.KILL if kill else EventKind.UNKILL,
            who=who,
            reason=reason,
            from_stage=state.stage,
            to_stage=state.stage,
            gate=gate,
        )
    return new_state


def trip_breaker(
    engine: Engine,
    op: str,
    *,
    failures: int,
    reason: str,
    run_id: str | None = None,
    who: str | None = None,
) -> bool:
    """Open `op`'s breaker; True if this call opened it (False: it was open already)."""
    with engine.begin() as conn:
        state = _current(conn)
        row = conn.execute(select(Breaker.is_open).where(Breaker.op == op)).first()
        if row is not None and row.is_open:
            return False
        now = _now()
        values = {"is_open": True, "opened_ns": now, "reason": reason, "failures": failures}
        if row is None:
            conn.execute(insert(Breaker).values(op=op, **values))
        else:
            conn.execute(update(Breaker).where(Breaker.op == op).values(**values))
        _bump(conn, None)
        write_event(
            conn,
            EventKind.BREAKER_TRIP,
            who=who or "router",
            reason=reason,
            op=op,
            from_stage=state.stage,
            to_stage=state.stage,
            run_id=run_id,
            ts_ns=now,
        )
    return True


def reset_breaker(
    engine: Engine, op: str, *, who: str | None = None, reason: str | None = None
) -> bool:
    """Close `op`'s breaker (a person's decision); True if it was open."""
    with engine.begin() as conn:
        state = _current(conn)
        row = conn.execute(select(Breaker.is_open).where(Breaker.op == op)).first()
        if row is None or not row.is_open:
            return False
        conn.execute(update(Breaker).where(Breaker.op == op).values(is_open=False))
        _bump(conn, None)
        write_event(
            conn,
            EventKind.BREAKER_RESET,
            who=who,
            reason=reason,
            op=op,
            from_stage=state.stage,
            to_stage=state.stage,
        )
    return True
