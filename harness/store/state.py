"""The live rollout state and every change to it, as one transaction each.

The state is one row per migration (`migration_state`: stage, since, kill flag, version, the
stage's gate settings) plus the global row (`rollout_state`: the kill flag `harness kill`
without `--migration` sets, and a version that grows with every change of anything).
`read_states` is what every router polls: the global row alone (one indexed row) while its
version stands still, every migration row and the open breakers only when it moved.
`read_state` is one migration's view (`LiveState`), or with `migration=None` every
migration's at once (the stage they share; what scripts written before migrations act on).

The actions (`set_stage`, `set_kill`, `trip_breaker`, `reset_breaker`) are the only writers:
the CLI, the dashboard and the router call these same functions, so an event is always written
the same way, exactly one `rollout_events` row per change and migration, naming the migration
(NULL: the global kill flag).

Each change is a compare-and-set on the state row's `version`. An action carries what it was
decided on (`Expected`: the stage, and for a promotion the kill flag and the open breakers);
when that moved meanwhile it is refused (`StateMovedError`, saying what moved and by whom),
and when only something else moved (a breaker tripped under a rollback) the compare-and-set is
simply made again on the new version, so a kill, which expects nothing, always lands.

A writer that finds the database busy (SQLite: another process holds the write lock;
PostgreSQL: the state row is locked, or a serialization failure) tries again for up to
`wait_s` (`WRITE_WAIT_S` by default), then raises `StoreBusyError` naming the database;
any other database failure is a `StoreUnavailableError`. Either way nothing was written.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from harness.alerts.hub import listening, notify
from harness.errors import HarnessError
from harness.store.db import (
    SQLITE_BUSY_MS,
    StoreUnavailableError,
    after_commit,
    begin,
    describe,
    unavailable_error,
)
from harness.store.models import Breaker, MigrationState, RolloutEvent, RolloutState

__all__ = [
    "WRITE_WAIT_S",
    "EventKind",
    "Expected",
    "LiveState",
    "MigrationRow",
    "StageGate",
    "StageMove",
    "StateConflictError",
    "StateMovedError",
    "StoreBusyError",
    "StoreState",
    "change_kill",
    "default_who",
    "ensure_state",
    "moved_error",
    "not_started",
    "read_state",
    "read_states",
    "reset_breaker",
    "set_kill",
    "set_stage",
    "set_stages",
    "trip_breaker",
    "write_event",
    "write_transaction",
]

STATE_ID: Final = 1
WRITE_WAIT_S: Final = 10.0
"""How long a person's action keeps trying, by default, while another process holds the
database's write lock (`db.write_wait_s`): long enough for any writer of the harness to finish
a batch, short enough that a person is told instead of left waiting."""
_ATTEMPT_S: Final = 2.0
"""The longest one attempt waits on a lock (SQLite's usual busy timeout, `SQLITE_BUSY_MS`), and
never longer than what is left of the action's wait."""
_CAS_ROUNDS: Final = 20
"""Compare-and-set attempts within one transaction before giving up on a state that keeps
changing for reasons the action does not care about (a breaker flapping under a kill)."""
_T = TypeVar("_T")


class EventKind:
    """The `kind` values of `rollout_events`."""

    START = "start"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    AUTO_ROLLBACK = "auto_rollback"
    AUTO_PROMOTE = "auto_promote"
    KILL = "kill"
    UNKILL = "unkill"
    BREAKER_TRIP = "breaker_trip"
    BREAKER_RESET = "breaker_reset"
    NATIVE_UNAVAILABLE = "native_unavailable"
    ROWS_DROPPED = "rows_dropped"


STAGE_EVENT_KINDS: Final = (
    EventKind.START,
    EventKind.PROMOTE,
    EventKind.AUTO_PROMOTE,
    EventKind.ROLLBACK,
    EventKind.AUTO_ROLLBACK,
)
"""The event kinds that make a stage current (their `to_stage`): the one list the report's
`--stage` window, the dashboard's previous stage and a moved-state check read."""


class StateConflictError(HarnessError):
    """The state changed under an action (another process acted first); nothing was written."""


class StateMovedError(StateConflictError):
    """What an action was decided on (`Expected`) is no longer so: the message says what moved,
    and which event moved it. Nothing was written."""


class StoreBusyError(StoreUnavailableError):
    """The database stayed busy (another process holding its write lock) for as long as the
    action waits; nothing was written. The message names the database (password hidden)."""


@dataclass(frozen=True, slots=True)
class StageGate:
    """The gate settings stored with the current stage when it started: `name` for people
    (`quick`), `fingerprint` (16 hex digits of the settings' SHA-256), `settings` (their JSON
    text). Made and read by `harness.control.gates`; the store only keeps them."""

    name: str
    fingerprint: str
    settings: str


@dataclass(frozen=True, slots=True)
class LiveState:
    """One migration's state as an action sees it: the stage, the kill flag, the open breakers.

    `kill` is the migration's own flag or the global one (`kill_reason` says which).
    `stage_since_ns` opens the stage's window; `version` grows with every change of the
    migration (with `migration` None: of anything, and the stage is the one every migration
    is at, or the first's when they differ: see `read_state`). `gate` is the
    stage's stored gate settings, read only when asked (`read_state(with_gate=True)`: the
    actions judge with them, routers never need them); None when not read or none stored.
    """

    stage: str
    stage_since_ns: int
    kill: bool
    kill_reason: str | None
    open_breakers: frozenset[str]
    version: int
    updated_ns: int
    gate: StageGate | None = None
    migration: str | None = None
    """The migration this is the state of (None: every migration at once)."""

    @property
    def started(self) -> bool:
        """Whether the store holds this state (False: `not_started`, what the first run or
        action would start, read from a store that has none yet)."""
        return self.version > 0


@dataclass(frozen=True, slots=True)
class Expected:
    """What an action was decided on: it is refused if any of these moved meanwhile.

    None leaves a part unchecked. A rollback expects its stage; a promotion its stage, the kill
    flag and the open breakers (a kill or a breaker trip after the decision is news the person
    did not see); a kill expects nothing, so it always lands.
    """

    stage: str | None = None
    kill: bool | None = None
    open_breakers: frozenset[str] | None = None

    @classmethod
    def of(cls, state: LiveState, *, kill: bool = False, breakers: bool = False) -> Expected:
        """`state`'s stage, with its kill flag and open breakers when asked."""
        return cls(
            stage=state.stage,
            kill=state.kill if kill else None,
            open_breakers=state.open_breakers if breakers else None,
        )

    def moves(self, state: LiveState) -> list[str]:
        """What differs between this expectation and `state`, one phrase each (empty: none)."""
        return [phrase for phrase, _kinds in self.changes(state)]

    def changes(self, state: LiveState) -> list[tuple[str, tuple[str, ...]]]:
        """(phrase, the event kinds that make such a move) for each difference from `state`."""
        out: list[tuple[str, tuple[str, ...]]] = []
        if self.stage is not None and state.stage != self.stage:
            stage_kinds = tuple(k for k in STAGE_EVENT_KINDS if k != EventKind.START)
            out.append((f"the stage is now {state.stage!r}, not {self.stage!r}", stage_kinds))
        if self.kill is not None and state.kill != self.kill:
            said = "the kill flag was set" if state.kill else "the kill flag was cleared"
            out.append((said, (EventKind.KILL, EventKind.UNKILL)))
        if self.open_breakers is not None and state.open_breakers != self.open_breakers:
            opened = sorted(state.open_breakers - self.open_breakers)
            closed = sorted(self.open_breakers - state.open_breakers)
            kinds = (EventKind.BREAKER_TRIP, EventKind.BREAKER_RESET)
            if opened:
                out.append((f"the {', '.join(opened)} breaker opened", kinds))
            if closed:
                out.append((f"the {', '.join(closed)} breaker was closed", kinds))
        return out


def not_started(
    start_stage: str, now_ns: int | None = None, migration: str | None = None
) -> LiveState:
    """The state a store without one would start at `start_stage` (`version` 0, nothing
    written): what a reader shows, so that reading never needs to write."""
    now = _now() if now_ns is None else now_ns
    return LiveState(start_stage, now, False, None, frozenset(), 0, now, migration=migration)


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


@dataclass(frozen=True, slots=True)
class MigrationRow:
    """One `migration_state` row as read (the stage's gate settings aside)."""

    migration: str
    stage: str
    stage_since_ns: int
    kill: bool
    kill_reason: str | None
    version: int


@dataclass(frozen=True, slots=True)
class StoreState:
    """Everything a router decides by, read in one go: the global kill flag, every
    migration's row, the open breakers; `version` is the global row's (it grows with every
    change of any of them)."""

    kill: bool
    kill_reason: str | None
    version: int
    updated_ns: int
    migrations: dict[str, MigrationRow]
    open_breakers: frozenset[str]


_MIGRATION_COLUMNS: Final = (
    MigrationState.migration,
    MigrationState.stage,
    MigrationState.stage_since_ns,
    MigrationState.kill,
    MigrationState.kill_reason,
    MigrationState.version,
    MigrationState.updated_ns,
)


def read_states(conn: Connection, known: StoreState | None = None) -> StoreState | None:
    """The whole state (None before the first `ensure_state`): one query of the global row
    when its version equals `known`'s (returned as is), else every migration row and the open
    breakers too."""
    top = conn.execute(
        select(
            RolloutState.kill, RolloutState.kill_reason, RolloutState.version,
            RolloutState.updated_ns,
        ).where(RolloutState.id == STATE_ID)
    ).first()  # fmt: skip
    if top is None:
        return None
    if known is not None and known.version == top.version:
        return known
    rows = conn.execute(select(*_MIGRATION_COLUMNS).order_by(MigrationState.migration)).all()
    open_ops = conn.execute(select(Breaker.op).where(Breaker.is_open.is_(True))).scalars()
    return StoreState(
        kill=bool(top.kill),
        kill_reason=top.kill_reason,
        version=int(top.version),
        updated_ns=int(top.updated_ns),
        migrations={
            r.migration: MigrationRow(
                r.migration,
                r.stage,
                int(r.stage_since_ns),
                bool(r.kill),
                r.kill_reason,
                int(r.version),
            )
            for r in rows
        },
        open_breakers=frozenset(open_ops),
    )


def read_state(
    conn: Connection,
    known: LiveState | None = None,
    *,
    with_gate: bool = False,
    migration: str | None = None,
    ops: frozenset[str] | None = None,
) -> LiveState | None:
    """The state of `migration` (None when the store has none for it yet).

    `migration` None: every migration at once: the stage every migration is at (the first's,
    by name, when they differ), the latest `stage_since`, the kill flag set when the global
    one is or every migration's is, the global version. `ops` limits the open breakers to
    those operations (None: all). When `known` has the same version, it is returned as is.
    `with_gate` reads the stage's stored gate settings too, in the same statement (so they
    are the settings of the stage read, never of the next one).
    """
    top = conn.execute(
        select(RolloutState.kill, RolloutState.kill_reason, RolloutState.version).where(
            RolloutState.id == STATE_ID
        )
    ).first()
    if top is None:
        return None
    columns = [*_MIGRATION_COLUMNS]
    if with_gate:
        columns += [
            MigrationState.gate_name,
            MigrationState.gate_fingerprint,
            MigrationState.gate_settings,
        ]
    query = select(*columns).order_by(MigrationState.migration)
    if migration is not None:
        query = query.where(MigrationState.migration == migration)
    rows = conn.execute(query).all()
    if not rows:
        return None
    version = int(top.version) if migration is None else int(rows[0].version)
    if known is not None and known.version == version and not with_gate:
        return known
    breakers = select(Breaker.op).where(Breaker.is_open.is_(True))
    if ops is not None:
        breakers = breakers.where(Breaker.op.in_(sorted(ops)))
    open_ops = frozenset(conn.execute(breakers).scalars())
    first = rows[0]
    gate = None
    if with_gate and first.gate_settings is not None:
        gate = StageGate(first.gate_name or "", first.gate_fingerprint or "", first.gate_settings)
    if top.kill:
        kill, reason = True, top.kill_reason
    elif all(r.kill for r in rows):
        kill, reason = True, first.kill_reason
    else:
        kill, reason = False, None
    return LiveState(
        stage=first.stage,
        stage_since_ns=max(int(r.stage_since_ns) for r in rows),
        kill=kill,
        kill_reason=reason,
        open_breakers=open_ops,
        version=version,
        updated_ns=max(int(r.updated_ns) for r in rows),
        gate=gate,
        migration=migration,
    )


def _gate_values(gate: StageGate | None) -> dict[str, Any]:
    """The `rollout_state` columns of a stage's gate settings (NULLs for None)."""
    if gate is None:
        return {"gate_name": None, "gate_fingerprint": None, "gate_settings": None}
    return {
        "gate_name": gate.name[:255],
        "gate_fingerprint": gate.fingerprint,
        "gate_settings": gate.settings,
    }


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
    migration: str | None = None,
) -> str:
    """Insert one `rollout_events` row in the caller's transaction; returns its id.
    `migration` None: an action on every migration at once (shown as `all`).

    With an alerter open in this process (`harness.alerts`), the event's alert is sent once
    the transaction commits (`harness.store.db.after_commit`): the process that writes an
    event is the one that tells people, once."""
    event_id = new_id()
    values: dict[str, Any] = {
        "id": event_id,
        "ts_ns": _now() if ts_ns is None else ts_ns,
        "kind": kind,
        "op": op,
        "from_stage": from_stage,
        "to_stage": to_stage,
        "who": who or default_who(),
        "reason": reason,
        "forced": forced,
        "run_id": run_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "gate": None if gate is None else json.dumps(gate, sort_keys=True, default=str),
        "migration": migration,
    }
    conn.execute(insert(RolloutEvent).values(**values))
    if listening():
        from harness.alerts.event import Alert

        alert = Alert(
            kind=kind,
            migration=migration,
            from_stage=from_stage,
            to_stage=to_stage,
            reason=reason,
            who=values["who"],
            op=op,
            run_id=run_id,
            gate=gate,
            at_ns=values["ts_ns"],
            host=values["host"],
            id=event_id,
        )
        after_commit(conn, lambda: notify(alert))
    return event_id


def _busy(exc: DBAPIError) -> bool:
    """Whether `exc` says another transaction holds what this one needs: SQLite's BUSY or
    LOCKED, PostgreSQL's lock_not_available (`lock_timeout`), serialization_failure or
    deadlock_detected. Trying again later may succeed; nothing was written."""
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return int(code) & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (extended codes too)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return str(sqlstate) in ("55P03", "40001", "40P01")
    return "database is locked" in str(orig)


def write_transaction(
    engine: Engine,
    work: Callable[[Connection], _T],
    *,
    wait_s: float = WRITE_WAIT_S,
    on_busy: Callable[[str], None] | None = None,
) -> _T:
    """`work(conn)` in one transaction, tried again while the database is busy, for up to
    about `wait_s` seconds (0: once); returns what `work` returns.

    `on_busy(text)` is called once, at the first busy attempt, with a sentence naming the
    database (a command prints it on a terminal, so a person knows why it waits). Raises
    `StoreBusyError` when the database is still busy at the end, `StoreUnavailableError` for
    any other failure of the database (its first line, the password hidden); in both cases
    the transaction was rolled back. Errors `work` raises itself pass through.
    """
    deadline = time.monotonic() + wait_s
    delay = 0.05
    told = False
    while True:
        remaining = deadline - time.monotonic()
        try:
            with begin(engine) as conn:
                # Wait on a lock at most this long: within what is left of `wait_s`, and on
                # PostgreSQL at all (by default it waits for ever on a row a stuck transaction
                # holds).
                ms = max(50, round(min(_ATTEMPT_S, max(remaining, 0.0)) * 1000))
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
                    return work(conn)
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {ms}")
                try:
                    return work(conn)
                finally:  # the connection goes back to the pool with its usual timeout
                    conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        except (OperationalError, InterfaceError) as exc:
            if not _busy(exc):  # the server went away, a read-only file, a full disk...
                raise unavailable_error(engine, exc) from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StoreBusyError(
                    f"the database {describe(engine)} is busy: another process has held its "
                    f"write lock for the {wait_s:g} s this action waits (db.write_wait_s); "
                    "nothing was written, try again"
                ) from None
            if on_busy is not None and not told:
                told = True
                on_busy(
                    f"the database {describe(engine)} is busy (another process holds its write "
                    f"lock): trying again for up to {wait_s:g} s"
                )
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)


def _bump_global(conn: Connection, **values: Any) -> None:
    """Grow the global version (every reader's cheap "anything moved?"), with `values`."""
    conn.execute(
        update(RolloutState)
        .where(RolloutState.id == STATE_ID)
        .values(version=RolloutState.version + 1, updated_ns=_now(), **values)
    )


def ensure_state(
    engine: Engine,
    start_stage: str,
    *,
    migration: str = "orders",
    who: str | None = None,
    run_id: str | None = None,
    gate: StageGate | None = None,
    wait_s: float = WRITE_WAIT_S,
) -> LiveState:
    """The state of `migration`, creating it at `start_stage` (with a `start` event naming the
    migration, and `gate` as the settings that judge the stage) if there is none; the global
    row too, if the store has none yet.

    Safe when several processes start at once: exactly one creates each row (the others read
    it). The creation waits out a busy database as `write_transaction` does.
    """
    with engine.connect() as conn:
        state = read_state(conn, migration=migration)
    if state is not None:
        return state

    def create(conn: Connection) -> None:
        now = _now()
        if conn.execute(select(RolloutState.id).where(RolloutState.id == STATE_ID)).first() is None:
            conn.execute(
                insert(RolloutState).values(
                    id=STATE_ID, kill=False, kill_reason=None, version=1, updated_ns=now
                )
            )
        if (
            conn.execute(
                select(MigrationState.migration).where(MigrationState.migration == migration)
            ).first()
            is not None
        ):
            return
        conn.execute(
            insert(MigrationState).values(
                migration=migration,
                stage=start_stage,
                stage_since_ns=now,
                kill=False,
                kill_reason=None,
                version=1,
                updated_ns=now,
                **_gate_values(gate),
            )
        )
        _bump_global(conn)
        write_event(
            conn,
            EventKind.START,
            who=who,
            to_stage=start_stage,
            reason=f"no state for migration {migration!r} yet: starting at its start stage",
            run_id=run_id,
            ts_ns=now,
            migration=migration,
        )

    # IntegrityError: another process created it between our read and insert: read theirs.
    for _ in range(3):
        try:
            write_transaction(engine, create, wait_s=wait_s)
            break
        except IntegrityError:
            continue
    with engine.connect() as conn:
        created = read_state(conn, migration=migration)
    if created is None:  # pragma: no cover - the row exists after either branch
        raise StateConflictError(f"the state of migration {migration!r} could not be created")
    return created


def _current(
    conn: Connection, migration: str | None, ops: frozenset[str] | None = None
) -> LiveState:
    """`migration`'s state, its open breakers those of `ops` (None: every operation's)."""
    state = read_state(conn, migration=migration, ops=ops)
    if state is None:
        raise StateConflictError("no rollout state yet: start a run first")
    return state


def moved_error(conn: Connection, expect: Expected, state: LiveState) -> StateMovedError:
    """The refusal for an action whose expectation no longer holds in `state`: what moved, and
    the latest event of the kind that makes the first such move (who moved it, and when)."""
    moves = expect.changes(state)
    kinds = moves[0][1] if moves else ()
    query = select(RolloutEvent.kind, RolloutEvent.who, RolloutEvent.ts_ns, RolloutEvent.op)
    query = query.where(RolloutEvent.kind.in_(kinds))
    if state.migration is not None:
        query = query.where(
            (RolloutEvent.migration == state.migration) | RolloutEvent.migration.is_(None)
        )
    latest = conn.execute(query.order_by(RolloutEvent.ts_ns.desc()).limit(1)).first()
    said = "; ".join(phrase for phrase, _kinds in moves)
    if state.migration is not None:
        said = f"migration {state.migration}: {said}"
    if latest is not None:
        from harness.output import printable

        when = datetime.fromtimestamp(latest.ts_ns / 1e9, UTC).strftime("%H:%M:%S UTC")
        what = latest.kind + (f" {latest.op}" if latest.op else "")
        said += f" (latest event: {what} by {printable(latest.who)} at {when})"
    return StateMovedError(
        f"the state moved since this was decided: {said}; nothing was written, look again"
    )


def _migrations(conn: Connection, migration: str | None) -> list[str]:
    if migration is not None:
        return [migration]
    return list(
        conn.execute(select(MigrationState.migration).order_by(MigrationState.migration)).scalars()
    )


def _compare_and_set(
    conn: Connection,
    migration: str | None,
    expect: Expected | None,
    values: Callable[[LiveState], dict[str, Any]],
    *,
    check: Callable[[LiveState], bool] | None = None,
    ops: frozenset[str] | None = None,
) -> tuple[LiveState, LiveState] | None:
    """Bump `migration`'s row (None: every migration's) from the version read, with
    `values(before)`, while `expect` still holds; (before, after), or None when
    `check(before)` says there is nothing to do. The global version grows too. `ops` are the
    migration's operations: `expect` is compared with their breakers only (as the caller read
    it, `harness.control.actions.current_state`), so a breaker of another migration does not
    refuse this one's action.

    When a version moved between the read and the update (another process committed a change
    `expect` does not care about), read again and try again, within this transaction. Raises
    `StateMovedError` when `expect` no longer holds.
    """
    for _ in range(_CAS_ROUNDS):
        state = _current(conn, migration, ops)
        if expect is not None and expect.moves(state):
            raise moved_error(conn, expect, state)
        if check is not None and not check(state):
            return None
        names = _migrations(conn, migration)
        landed = True
        for name in names:
            row = read_state(conn, migration=name)
            assert row is not None
            result = conn.execute(
                update(MigrationState)
                .where(MigrationState.migration == name, MigrationState.version == row.version)
                .values(version=MigrationState.version + 1, updated_ns=_now(), **values(row))
            )
            if result.rowcount != 1:
                landed = False
                break
        if landed:
            _bump_global(conn)
            after = read_state(conn, migration=migration)
            assert after is not None
            return state, after
    raise StateConflictError(
        "the rollout state kept changing under this action (another process is acting in a "
        "loop): nothing was written, look again"
    )


def set_stage(
    engine: Engine,
    to_stage: str,
    *,
    kind: str,
    migration: str | None = None,
    who: str | None = None,
    reason: str | None = None,
    forced: bool = False,
    gate: dict[str, Any] | None = None,
    expect_stage: str | None = None,
    expect: Expected | None = None,
    run_id: str | None = None,
    stage_gate: StageGate | None = None,
    ops: frozenset[str] | None = None,
    wait_s: float = WRITE_WAIT_S,
    on_busy: Callable[[str], None] | None = None,
) -> LiveState:
    """Move `migration` (None: every migration together) to `to_stage` (promote,
    auto_promote, rollback or auto_rollback) and write its event (one; with None its migration
    is NULL: `all`); the new state.
    `stage_gate` is stored as the settings that judge the new stage (None: none, each reader's
    own then judge).

    With `expect` (or `expect_stage`, the same for the stage alone), nothing happens unless the
    state is still as expected: `StateMovedError` otherwise (an automatic rollback from several
    processes lands once; a promotion confirmed after another one is refused). A busy database:
    see `write_transaction`.
    """
    if expect is None and expect_stage is not None:
        expect = Expected(stage=expect_stage)

    def move(conn: Connection) -> LiveState:
        now = _now()
        befores = {name: _current(conn, name).stage for name in _migrations(conn, migration)}
        changed = _compare_and_set(
            conn,
            migration,
            expect,
            lambda _state: {
                "stage": to_stage,
                "stage_since_ns": now,
                **_gate_values(stage_gate),
            },
            ops=ops,
        )
        assert changed is not None
        _before, after = changed
        # One event: the migration's, or with None one for every migration at once (`all`).
        write_event(
            conn,
            kind,
            who=who,
            reason=reason,
            from_stage=befores.get(migration) if migration is not None else _before.stage,
            to_stage=to_stage,
            forced=forced,
            gate=gate,
            run_id=run_id,
            ts_ns=now,
            migration=migration,
        )
        return after

    return write_transaction(engine, move, wait_s=wait_s, on_busy=on_busy)


@dataclass(frozen=True, slots=True)
class StageMove:
    """One migration's part of `set_stages`: where it goes, what it must still be (`expect`),
    the verdict its event carries (`gate`) and the settings stored with its new stage."""

    migration: str
    to_stage: str
    expect: Expected | None = None
    gate: dict[str, Any] | None = None
    stage_gate: StageGate | None = None
    ops: frozenset[str] | None = None  # the migration's: `expect` sees their breakers only


def set_stages(
    engine: Engine,
    moves: list[StageMove],
    *,
    kind: str,
    who: str | None = None,
    reason: str | None = None,
    forced: bool = False,
    run_id: str | None = None,
    wait_s: float = WRITE_WAIT_S,
    on_busy: Callable[[str], None] | None = None,
) -> dict[str, LiveState]:
    """Move several migrations, each to its own stage, in one transaction: all land or none
    does (`StateMovedError` naming the migration whose `expect` no longer holds). One event
    per migration moved, each naming it, all at the same instant; the states after, by
    migration. What `harness promote` without `--migration` writes when the migrations stand
    on different stages or ladders. A busy database: see `write_transaction`."""

    def move(conn: Connection) -> dict[str, LiveState]:
        now = _now()
        out: dict[str, LiveState] = {}
        for part in moves:
            values: dict[str, Any] = {"stage": part.to_stage, "stage_since_ns": now}
            values.update(_gate_values(part.stage_gate))

            def new_values(_state: LiveState, values: dict[str, Any] = values) -> dict[str, Any]:
                return values

            changed = _compare_and_set(conn, part.migration, part.expect, new_values, ops=part.ops)
            assert changed is not None
            before, after = changed
            write_event(
                conn, kind, who=who, reason=reason, from_stage=before.stage,
                to_stage=part.to_stage, forced=forced, gate=part.gate, run_id=run_id, ts_ns=now,
                migration=part.migration,
            )  # fmt: skip
            out[part.migration] = after
        return out

    return write_transaction(engine, move, wait_s=wait_s, on_busy=on_busy)


def change_kill(
    engine: Engine,
    kill: bool,
    *,
    migration: str | None = None,
    who: str | None = None,
    reason: str | None = None,
    gate: dict[str, Any] | None = None,
    expect: Expected | None = None,
    ops: frozenset[str] | None = None,
    wait_s: float = WRITE_WAIT_S,
    on_busy: Callable[[str], None] | None = None,
) -> tuple[LiveState, bool]:
    """Set (kill) or clear (unkill) a kill flag, with its event: `migration`'s own, or with
    None the global one (every migration, registered later ones too; an unkill then clears
    every migration's own flag as well). (the state after, whether this call changed it).
    Already so: nothing is written (False).

    A kill expects nothing (`expect` None): it lands whatever else commits at the same moment.
    An unkill is given the stage it was decided on (routing resumes at that stage's
    percentages): `StateMovedError` when that moved. A busy database: see `write_transaction`.
    """

    def flip(conn: Connection) -> tuple[LiveState, bool]:
        state = _current(conn, migration, ops)
        if expect is not None and expect.moves(state):
            raise moved_error(conn, expect, state)
        now = _now()
        # Conditional updates: a flag another process set (or cleared) since the read above
        # is found by the update itself, so a second kill writes nothing and says so.
        if migration is None:
            flipped = conn.execute(
                update(RolloutState)
                .where(RolloutState.id == STATE_ID, RolloutState.kill.is_(not kill))
                .values(
                    kill=kill, kill_reason=reason if kill else None,
                    version=RolloutState.version + 1, updated_ns=now,
                )
            ).rowcount  # fmt: skip
            cleared = 0
            if not kill:  # an unkill of all clears every migration's own flag too
                cleared = conn.execute(
                    update(MigrationState)
                    .where(MigrationState.kill.is_(True))
                    .values(
                        kill=False, kill_reason=None, version=MigrationState.version + 1,
                        updated_ns=now,
                    )
                ).rowcount  # fmt: skip
            if not flipped and not cleared:
                return _current(conn, migration), False
            if not flipped:
                _bump_global(conn)
        else:
            flipped = conn.execute(
                update(MigrationState)
                .where(MigrationState.migration == migration, MigrationState.kill.is_(not kill))
                .values(
                    kill=kill, kill_reason=reason if kill else None,
                    version=MigrationState.version + 1, updated_ns=now,
                )
            ).rowcount  # fmt: skip
            if not flipped:
                return _current(conn, migration), False
            _bump_global(conn)
        write_event(
            conn,
            EventKind.KILL if kill else EventKind.UNKILL,
            who=who,
            reason=reason,
            from_stage=state.stage,
            to_stage=state.stage,
            gate=gate,
            migration=migration,
        )
        return _current(conn, migration), True

    return write_transaction(engine, flip, wait_s=wait_s, on_busy=on_busy)


def set_kill(
    engine: Engine,
    kill: bool,
    *,
    migration: str | None = None,
    who: str | None = None,
    reason: str | None = None,
    gate: dict[str, Any] | None = None,
) -> LiveState:
    """Set (kill) or clear (unkill) a kill flag, with its event (`change_kill`; the state
    after, nothing written when it was already so)."""
    return change_kill(engine, kill, migration=migration, who=who, reason=reason, gate=gate)[0]


def trip_breaker(
    engine: Engine,
    op: str,
    *,
    failures: int,
    reason: str,
    migration: str | None = None,
    run_id: str | None = None,
    who: str | None = None,
) -> bool:
    """Open `op`'s breaker (an operation of `migration`, named in the event); True if this
    call opened it (False: it was open already).

    One attempt (the router's poller tries again at its next refresh, so it never waits on a
    busy database); a database failure raises as `write_transaction` says.
    """

    def trip(conn: Connection) -> bool:
        row = conn.execute(select(Breaker.is_open).where(Breaker.op == op)).first()
        if row is not None and row.is_open:
            return False
        now = _now()
        values = {"is_open": True, "opened_ns": now, "reason": reason, "failures": failures}
        if row is None:
            conn.execute(insert(Breaker).values(op=op, **values))
        else:
            conn.execute(update(Breaker).where(Breaker.op == op).values(**values))
        state = read_state(conn, migration=migration)
        stage = None if state is None else state.stage
        if migration is not None:
            conn.execute(
                update(MigrationState)
                .where(MigrationState.migration == migration)
                .values(version=MigrationState.version + 1, updated_ns=now)
            )
        _bump_global(conn)
        write_event(
            conn,
            EventKind.BREAKER_TRIP,
            who=who or "router",
            reason=reason,
            op=op,
            from_stage=stage,
            to_stage=stage,
            run_id=run_id,
            ts_ns=now,
            migration=migration,
        )
        return True

    return write_transaction(engine, trip, wait_s=0)


def reset_breaker(
    engine: Engine,
    op: str,
    *,
    migration: str | None = None,
    who: str | None = None,
    reason: str | None = None,
    expect: Expected | None = None,
    ops: frozenset[str] | None = None,
    wait_s: float = WRITE_WAIT_S,
    on_busy: Callable[[str], None] | None = None,
) -> bool:
    """Close `op`'s breaker (a person's decision); True if it was open (False: nothing
    written). With `expect`, `StateMovedError` when `migration`'s state moved from it (the
    operation returns to the stage's percentage, so the stage matters). A busy database: see
    `write_transaction`."""

    def is_open(conn: Connection) -> bool:
        row = conn.execute(select(Breaker.is_open).where(Breaker.op == op)).first()
        return row is not None and bool(row.is_open)

    def close(conn: Connection) -> bool:
        changed = _compare_and_set(
            conn,
            migration,
            expect,
            lambda _state: {},
            check=lambda _state: is_open(conn),
            ops=ops,
        )
        if changed is None:
            return False
        conn.execute(update(Breaker).where(Breaker.op == op).values(is_open=False))
        write_event(
            conn,
            EventKind.BREAKER_RESET,
            who=who,
            reason=reason,
            op=op,
            from_stage=changed[0].stage,
            to_stage=changed[0].stage,
            migration=migration,
        )
        return True

    return write_transaction(engine, close, wait_s=wait_s, on_busy=on_busy)
