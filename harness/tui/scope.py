"""Which migrations and operations the dashboard offers to choose from.

The scope itself (one migration, or all at once) is passed to `harness.control.actions` as its
`migration=` keyword by the app and `harness.tui.data`; this module only says what there is
to choose: the migrations (`actions.known_migrations`: the config's, then the store's own) and
the operations the store has recorded, for the drill-downs' operation filter.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from harness.config import HarnessConfig
from harness.control import actions
from harness.store.models import OutcomeRollup
from harness.store.rollups import HOUR_NS

__all__ = ["migration_names", "operation_names"]


def migration_names(engine: Engine, cfg: HarnessConfig) -> list[str]:
    """Every migration to show: the configured ones in config order, then the ones only the
    store knows (a bot's registered migration), by name."""
    return actions.known_migrations(engine, cfg)


def operation_names(engine: Engine, cfg: HarnessConfig) -> list[tuple[str, str]]:
    """(migration, operation) of every operation configured, then of every other one the
    store recorded (a bot's registered operations), by name. The store's are read from the
    hourly rollups (one row per hour and group, so the read stays small on a long history):
    an operation first recorded in the current hour is found by the overview's windows."""
    names = cfg.rollout.migration_names()
    pairs = [(m, op) for m in names for op in cfg.rollout.operations_of(m)]
    query = (
        select(OutcomeRollup.migration, OutcomeRollup.op)
        .where(OutcomeRollup.period_ns == HOUR_NS)
        .distinct()
    )
    with engine.connect() as conn:
        stored = sorted((str(m), str(op)) for m, op in conn.execute(query))
    known = {op for _m, op in pairs}
    return [*pairs, *((m, op) for m, op in stored if op not in known)]
