"""The automatic rollback: while a stage runs, a FAIL on a critical criterion rolls it back.

Every open harness (a bot's `harness.open()`, `harness run`) with `gate.auto_rollback` judges
the current stage every `gate.check_interval_s` and, on a critical FAIL, moves one stage down
through `harness.control.actions.rollback(automatic=True)`: an `auto_rollback` event carrying
the verdict, written once even when several processes see the FAIL together (the action is a
compare-and-set on the stage judged: a stage that moved since is left alone), as Argo Rollouts
aborts a failing canary. The latency and rate criteria are anytime-valid, so judging this often
does not raise false alarms (harness/gate).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from harness.config import HarnessConfig
from harness.control import actions
from harness.errors import HarnessError
from harness.store.state import LiveState, StateConflictError

__all__ = ["GateMonitor"]

log = logging.getLogger("harness.gate")


class GateMonitor:
    """A daemon thread judging the gate and rolling back on a critical FAIL.

    `on_rollback(result)` is called (from the thread) after a rollback this monitor made, so the
    owner can apply the new state at once.
    """

    def __init__(
        self,
        engine: Engine,
        cfg: HarnessConfig,
        *,
        run_id: str | None = None,
        on_rollback: Callable[[LiveState], None] | None = None,
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

    def start(self) -> GateMonitor:
        """Start judging (no-op when `gate.auto_rollback` is off)."""
        if self._cfg.gate.auto_rollback:
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop; waits for a judgement in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self._cfg.gate.check_interval_s):
            self.check_once()

    def check_once(self) -> bool:
        """Judge once; True if this call rolled the stage back."""
        self.checks += 1
        try:
            state = actions.current_state(self._engine, self._cfg)
            if state.kill:
                return False  # everything already goes to Python
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
            "automatic rollback %s -> %s: %s", result.before.stage, result.after.stage, names
        )
        if self._on_rollback is not None:
            self._on_rollback(result.after)
        return True
