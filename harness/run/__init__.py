"""`harness run`, the main job: a trading session played through the router, and its summary.

`Session(cfg).run()` plays it (`harness.run.session`); the round trips live in
`harness.run.workload`, their pace in `harness.run.pace`, the summary in `harness.run.summary`,
and the command in `harness.run.cli`.
"""

from __future__ import annotations

from harness.run.session import RunRefusedError, Session, Watcher
from harness.run.workload import Problem, Tally, Workload

__all__ = ["Problem", "RunRefusedError", "Session", "Tally", "Watcher", "Workload"]
