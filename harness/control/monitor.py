"""The automatic rollback: while a stage runs, a FAIL on a critical criterion rolls it back.

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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from harness.config import HarnessConfig
from harness.control import actions
from harness.errors import HarnessError
from harness.store.state import LiveState, StateConflictError, StoreState, read_states

__all__ = ["GateMonitor"]

log = logging.getLogger("harness.gate")


class GateMonitor:
    """A daemon thread judging the gate and rolling back on a critical FAIL.

    `on_rollback(state)` is called (from the thread) after a rollback this monitor made, with
    every migration's state read after it (`read_states`), so the owner can apply it at once.
    """

    def __init__(
        self,
        engine: Engine,
        cfg: HarnessConfig,
        *,
        run_id: str | None = None,
        on_rollback: Callable[[StoreState | LiveState], None] | None = None,
    ) -> None:
        self._engine = engine
        self._cfg = cfg
        self._run_id = run_id
        self._on_rollback = on_rollback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="harness-gate", daemon=True)
        self.rollbacks = 0
        self.checks = 0
        self.last_error: str | None = None

    def _watched(self) -> list[str]:
        """The migrations this monitor judges: those with `auto_rollback` on."""
        known = actions.acted_on(self._engine, self._cfg)
        return [m for m in known if actions.gate_of(self._cfg, m).auto_rollback]

    def _interval(self) -> float:
        """How often to judge: the shortest `check_interval_s` of any migration."""
        names = self._cfg.rollout.migration_names()
        intervals = [actions.gate_of(self._cfg, m).check_interval_s for m in names]
        return min(intervals, default=self._cfg.gate.check_interval_s)

    def start(self) -> GateMonitor:
        """Start judging (no-op when no migration has `auto_rollback` on)."""
        names = self._cfg.rollout.migration_names()
        if self._cfg.gate.auto_rollback or any(
            actions.gate_of(self._cfg, m).auto_rollback for m in names
        ):
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
        """Judge every watched migration once; True if this call rolled any back."""
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
        """Judge `migration`; roll it (alone) back on a critical FAIL. True if this did."""
        try:
            state = actions.current_state(self._engine, self._cfg, migration)
            if state.kill or not state.started:
                return False  # everything already goes to Python, or nothing ran yet
            verdict = actions.verdict(self._engine, self._cfg, state)
            failures = verdict.critical_failures()
            if not failures:
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
