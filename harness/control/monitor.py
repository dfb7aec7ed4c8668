"""The automatic rollback and promotion: while a stage runs, a FAIL on a critical criterion rolls
it back, and where `auto_promote` is on, a PASS promotes it one stage.

Every open harness (a bot's `harness.open()`, `harness run`) judges each migration on its own:
every `check_interval_s`, each migration whose `auto_rollback` is on (the `gate` group's, or
its own `rollout.migrations.<name>.gate` override) is judged over its own window, and on a
critical FAIL that migration alone moves one stage down through
`harness.control.actions.rollback(migration=..., automatic=True)`: an `auto_rollback` event
naming it and carrying the verdict, written once even when several processes see the FAIL
together (the action is a compare-and-set on the stage judged: a stage that moved since is left
alone), as Argo Rollouts aborts a failing canary. The other migrations keep their stages.
The latency and rate criteria are anytime-valid, so judging this often does not raise false
alarms (harness/gate).

The automatic promotion is the same judgement's other side: a migration whose `auto_promote`
is on and whose verdict PASSes (which needs its soak, `min_soak_s`, done) moves one stage up
through `actions.promote(migration=..., automatic=True)`: an `auto_promote` event carrying the
verdict, written once by the same compare-and-set (decided on the stage, the kill flag and the
open breakers judged), and alerted like every event. Never above `auto_promote_until` (by
default the stage before the last: the step to production stays a person's), never while one
of the migration's breakers is open or its kill flag (or the global one) is set, never outside
`trading_hours` when they are configured. The new stage's window starts empty, so it must soak
and gather its own evidence again before the next step: one stage per soak, none skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from harness.config import HarnessConfig
from harness.control import actions
from harness.errors import HarnessError
from harness.gate import Verdict
from harness.gate.verdict import Outcome
from harness.store.state import LiveState, StateConflictError, StoreState, read_states

__all__ = ["GateMonitor"]

log = logging.getLogger("harness.gate")


class GateMonitor:
    """A daemon thread judging the gate: rolling back on a critical FAIL, promoting on a PASS
    where `auto_promote` is on.

    `on_rollback(state)` / `on_promote(state)` are called (from the thread) after a rollback /
    promotion this monitor made, with every migration's state read after it (`read_states`),
    so the owner can apply it at once. `now_ns` is the clock the trading hours are read by
    (ns since the epoch; the wall clock by default).
    """

    def __init__(
        self,
        engine: Engine,
        cfg: HarnessConfig,
        *,
        run_id: str | None = None,
        on_rollback: Callable[[StoreState | LiveState], None] | None = None,
        on_promote: Callable[[StoreState | LiveState], None] | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._engine = engine
        self._cfg = cfg
        self._run_id = run_id
        self._on_rollback = on_rollback
        self._on_promote = on_promote
        self._now_ns = now_ns
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="harness-gate", daemon=True)
        self.rollbacks = 0
        self.promotions = 0
        self.checks = 0
        self.last_error: str | None = None
        self.held: dict[str, str] = {}
        """Why each migration whose gate PASSed at its latest check was not promoted (a
        breaker open, the kill flag, outside trading hours, at `auto_promote_until`)."""

    def _acts(self, migration: str) -> bool:
        gate = actions.gate_of(self._cfg, migration)
        return gate.auto_rollback or gate.auto_promote

    def _watched(self) -> list[str]:
        """The migrations this monitor judges: those with `auto_rollback` or `auto_promote`
        on."""
        known = actions.acted_on(self._engine, self._cfg)
        return [m for m in known if self._acts(m)]

    def _interval(self) -> float:
        """How often to judge: the shortest `check_interval_s` of any migration."""
        names = self._cfg.rollout.migration_names()
        intervals = [actions.gate_of(self._cfg, m).check_interval_s for m in names]
        return min(intervals, default=self._cfg.gate.check_interval_s)

    def start(self) -> GateMonitor:
        """Start judging (no-op when no migration has `auto_rollback` or `auto_promote` on)."""
        names = self._cfg.rollout.migration_names()
        gate = self._cfg.gate
        if gate.auto_rollback or gate.auto_promote or any(self._acts(m) for m in names):
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop; waits for a judgement in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval()):
            self.check_once()

    def check_once(self) -> bool:
        """Judge every watched migration once; True if this call rolled any back or promoted
        any."""
        self.checks += 1
        try:
            names = self._watched()
        except Exception as exc:  # the monitor must never die
            self.last_error = str(exc)
            return False
        rolled = False
        for name in names:
            rolled = self._check(name) or rolled
        return rolled

    def _check(self, migration: str) -> bool:
        """Judge `migration`; roll it (alone) back on a critical FAIL (with `auto_rollback`), or
        promote it one stage on a PASS (with `auto_promote`, `_promote`). True if this did."""
        self.held.pop(migration, None)  # said again below if it still holds
        try:
            state = actions.current_state(self._engine, self._cfg, migration)
            if state.kill or not state.started:
                if state.kill and actions.gate_of(self._cfg, migration).auto_promote:
                    self.held[migration] = "the kill flag is set"
                return False  # everything already goes to Python, or nothing ran yet
            verdict = actions.verdict(self._engine, self._cfg, state)
            gate = actions.gate_of(self._cfg, migration)
            failures = verdict.critical_failures() if gate.auto_rollback else []
            if not failures:
                if gate.auto_promote and verdict.result is Outcome.PASS:
                    return self._promote(migration, state, verdict)
                return False
            names = ", ".join(
                f"{str(c.op) if c.op else 'stage'} {c.criterion.value} ({c.figure})"
                for c in failures
            )
            # Decided on the stage judged: if it moved meanwhile (a person promoted or rolled
            # back), that verdict is not the new stage's, and nothing is rolled back.
            result = actions.rollback(
                self._engine,
                self._cfg,
                who="gate",
                reason=f"critical criteria FAILed: {names}",
                automatic=True,
                seen=state,
                migration=migration,
            )
        except StateConflictError:
            return False  # another process rolled back (or promoted) first
        except actions.ActionError as exc:
            self.last_error = str(exc)  # e.g. the first stage: nothing to roll back to
            return False
        except (HarnessError, Exception) as exc:  # the monitor must never die
            self.last_error = str(exc)
            log.debug("gate check failed: %s", exc)
            return False
        self.rollbacks += 1
        log.warning(
            "automatic rollback of %s %s -> %s: %s",
            migration,
            result.before.stage,
            result.after.stage,
            names,
        )
        if self._on_rollback is not None:
            # Every migration's state, not the one rolled back: a `LiveState` would be taken
            # as one stage for every migration (`build_snapshot`).
            with self._engine.connect() as conn:
                fresh = read_states(conn)
            self._on_rollback(fresh if fresh is not None else result.after)
        return True

    def _held(self, migration: str, state: LiveState) -> str | None:
        """Why `migration`, its gate PASSing at `state`, is not promoted now (None: it is)."""
        auto = actions.auto_promotion(self._cfg, migration)
        names = [s.name for s in self._cfg.rollout.ladder(migration)]
        if auto.until is None or state.stage not in names or auto.until not in names:
            return "no stage to promote to automatically"
        if names.index(state.stage) >= names.index(auto.until):
            return f"at or above auto_promote_until ({auto.until})"
        if state.kill:
            return "the kill flag is set"
        if state.open_breakers:
            return f"the {', '.join(sorted(state.open_breakers))} breaker is open"
        hours = auto.trading_hours
        if hours is not None and not hours.is_open_ns(self._now_ns()):
            return f"outside trading hours ({hours.describe()})"
        return None

    def _promote(self, migration: str, state: LiveState, verdict: Verdict) -> bool:
        """Promote `migration` one stage on its PASS, unless held (`_held`). True if this did.
        Errors are caught by `_check`."""
        held = self._held(migration, state)
        if held is not None:
            self.held[migration] = held
            return False
        self.held.pop(migration, None)
        soaked = (verdict.until_ns - verdict.since_ns) / 1e9
        until = actions.auto_promotion(self._cfg, migration).until
        # Decided on the state judged (stage, kill flag, open breakers): a stage that moved, a
        # kill or a breaker trip since refuses it (StateMovedError), so it lands once.
        result = actions.promote(
            self._engine,
            self._cfg,
            who="gate",
            reason=(
                f"the gate PASSed stage {state.stage!r} after {soaked:.0f} s: automatic "
                f"promotion (gate.auto_promote, up to {until})"
            ),
            seen=state,
            migration=migration,
            automatic=True,
        )
        self.promotions += 1
        log.warning(
            "automatic promotion of %s %s -> %s", migration, result.before.stage,
            result.after.stage,
        )  # fmt: skip
        if self._on_promote is not None:
            with self._engine.connect() as conn:
                fresh = read_states(conn)
            self._on_promote(fresh if fresh is not None else result.after)
        return True
