"""The promotion gate: judge a stage's window of figures against the configured criteria.

    from harness.gate import judge, WindowFigures, OpFigures, SideFigures
    verdict = judge(figures, cfg.gate, stage)      # -> Verdict
    verdict.result                                  # Outcome.PASS | FAIL | INCONCLUSIVE
    verdict.to_dict()                               # what `harness gate --json` prints
    verdict.critical_failures()                     # what rolls a running stage back

Pure logic: no database, no Hydra. The store builds `WindowFigures` from its rollups; the CLI,
the dashboard and the automatic rollback call `judge`. Methods and sources: `harness.gate.stats`
and `docs/gate.md`.
"""

from harness.gate.figures import OpFigures, SideFigures, WindowFigures
from harness.gate.verdict import CriterionResult, Outcome, Skipped, Verdict, judge

__all__ = [
    "CriterionResult",
    "OpFigures",
    "Outcome",
    "SideFigures",
    "Skipped",
    "Verdict",
    "WindowFigures",
    "judge",
]
