"""Runs: one row per process that routes calls, opened at start, its row counts kept current by
its recorder (`progress`), and closed with its figures.

A run that never closed (its process was killed) keeps `status = 'running'` with no
`ended_ns`; `stale_runs` finds those whose process is gone, so the next run can report them,
and `close_stale_run` marks one `died` once nothing it left is open any more (so it is reported
until then, and never after).
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from sqlalchemy import Engine, Update, bindparam, func, insert, select, update

from harness import __version__
from harness.store.models import Outcome, Run
from harness.store.state import default_who, new_id

__all__ = [
    "close_stale_run",
    "end_run",
    "failure_reason",
    "placed_tags",
    "progress",
    "run_symbols",
    "stale_runs",
    "start_run",
]


def start_run(
    engine: Engine,
    *,
    kind: str,
    config: dict[str, Any],
    native_available: bool,
    native_error: str | None = None,
    build_id: str | None = None,
) -> str:
    """Insert a `running` run row; returns its id. `config` must already be redacted;
    `build_id` names the native module loaded (`harness.native.build_id`)."""
    run_id = new_id()
    with engine.begin() as conn:
        conn.execute(
            insert(Run).values(
                id=run_id,
                started_ns=time.time_ns(),
                ended_ns=None,
                status="running",
                kind=kind,
                host=socket.gethostname(),
                pid=os.getpid(),
                os_user=default_who(),
                version=__version__,
                native_available=native_available,
                native_error=native_error,
                build_id=build_id,
                config=json.dumps(config, sort_keys=True, default=str),
                rows_recorded=0,
                rows_dropped=0,
                summary=None,
            )
        )
    return run_id


FAILURE_REASON_CHARS = 2_000
"""A failed run's reason is cut to this length (a broker's answer can be long)."""


def failure_reason(exc: BaseException) -> str:
    """Why a run failed, for its row's summary: the exception's class and message (a
    `ConfigError` names the key and the value), cut to `FAILURE_REASON_CHARS`."""
    text = str(exc).strip()
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason[:FAILURE_REASON_CHARS]


def end_run(
    engine: Engine,
    run_id: str,
    *,
    status: str,
    rows_recorded: int,
    rows_dropped: int,
    summary: dict[str, Any] | None = None,
) -> None:
    """Close a run with its status and the recorder's figures."""
    with engine.begin() as conn:
        conn.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(
                ended_ns=time.time_ns(),
                status=status,
                rows_recorded=rows_recorded,
                rows_dropped=rows_dropped,
                summary=None if summary is None else json.dumps(summary, default=str),
            )
        )


def progress(run_id: str) -> Update:
    """The statement that keeps a running run's `rows_recorded` and `rows_dropped` current
    (parameters `rows`, `dropped`), which the recorder runs in each transaction that writes the
    run's rows: `harness query runs` and the dashboard show the live count. A run no longer
    `running` is left as `end_run` or `close_stale_run` closed it."""
    return (
        update(Run)
        .where(Run.id == run_id, Run.status == "running")
        .values(rows_recorded=bindparam("rows"), rows_dropped=bindparam("dropped"))
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_runs(engine: Engine) -> list[dict[str, Any]]:
    """Runs still marked `running` on this host whose process no longer exists."""
    host = socket.gethostname()
    with engine.connect() as conn:
        rows = conn.execute(
            select(Run.id, Run.pid, Run.started_ns, Run.kind).where(
                Run.status == "running", Run.host == host
            )
        ).all()
    return [row._asdict() for row in rows if row.pid != os.getpid() and not _alive(row.pid)]


def placed_tags(engine: Engine, run_id: str) -> set[str]:
    """The customTags recorded in a run's outcome rows (its placements), e.g. to find the
    orders a run that died left open."""
    with engine.connect() as conn:
        tags = conn.execute(
            select(Outcome.custom_tag)
            .where(Outcome.run_id == run_id, Outcome.custom_tag.is_not(None))
            .distinct()
        ).scalars()
        return {str(tag) for tag in tags}


def run_symbols(engine: Engine, run_id: str) -> list[str]:
    """The symbols a `harness run` traded (`workload.symbols` of its stored config; [] for a
    bot's run or a config without them)."""
    with engine.connect() as conn:
        row = conn.execute(select(Run.kind, Run.config).where(Run.id == run_id)).first()
    if row is None or row.kind != "run":
        return []
    try:
        symbols = json.loads(row.config).get("workload", {}).get("symbols", [])
    except (ValueError, AttributeError):
        return []
    return [str(s) for s in symbols] if isinstance(symbols, list) else []


def close_stale_run(engine: Engine, run_id: str, *, found_by: str, report: dict[str, Any]) -> bool:
    """Mark a run whose process died `died` (ended now, its stored outcome rows counted, what
    the finder saw and did in its summary). Only a run still `running` is changed: True if it
    was (two processes finding the same dead run close it once)."""
    with engine.begin() as conn:
        stored = conn.execute(
            select(func.count()).select_from(Outcome).where(Outcome.run_id == run_id)
        ).scalar_one()
        done = conn.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == "running")
            .values(
                ended_ns=time.time_ns(),
                status="died",
                rows_recorded=int(stored),
                summary=json.dumps({"found_by": found_by, **report}, default=str),
            )
        )
    return bool(done.rowcount)
