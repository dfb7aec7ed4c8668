"""The recorder: every outcome and shadow comparison reaches SQL without the caller waiting, and
a row that cannot is counted, never silently lost.

- `rows`: the rows (`OutcomeRecord`, `ShadowRecord`, `CaptureRecord`) and what each column
  of the store can hold, with the functions that make a row fit;
- `writer`: `Recorder`, its queue, its writer thread, how it tells a database that is
  unavailable from data it refuses, and its figures (`RecorderStats`);
- `spill`: the spill file, where rows wait on disk while the database is unavailable.
"""

from harness.recorder.rows import (
    CaptureRecord,
    OutcomeRecord,
    ShadowRecord,
    fit_outcome,
    fit_shadow,
)
from harness.recorder.spill import SPILL_PREFIX
from harness.recorder.writer import Recorder, RecorderStats, with_config

__all__ = [
    "SPILL_PREFIX",
    "CaptureRecord",
    "OutcomeRecord",
    "Recorder",
    "RecorderStats",
    "ShadowRecord",
    "fit_outcome",
    "fit_shadow",
    "with_config",
]
