"""What the gate, `harness query`, `harness status` and the dashboard read: window figures and
history, the same answers on SQLite and PostgreSQL, in time that does not grow with the history.

A window `[since, until)` is read in three parts: whole minutes whose rollups are clean come
from `outcome_rollups` (counts summed in SQL, latency sketches merged with numpy); the partial
minutes at the two edges and any minute still marked dirty come from the raw `outcomes` (with
its rollup too when the minute was pruned: its raw rows are then only late ones). So a
window's counts are exact (but for an edge inside what `harness db prune` deleted: that partial
minute has no raw rows left, so the window counts from its first whole minute), and its
percentiles are the sketch's: the nearest-rank percentile (the value of rank ceil(p/100 * n),
numpy's `method="inverted_cdf"`) within 1% relative error.

Filters are bound parameters (SQLAlchemy expressions), never text pasted into SQL.

One module per job: `filters` (a user's filters), `plan` (which rollup and raw rows make up a
window), `groups` (figures per group over a plan), `window` (the gate's per-operation figures),
`latency` and `rates` (history figures), `names` (the operations and migrations a store
holds), `rows` (history rows: errors, fallbacks, shadow comparisons, events, runs), `totals`
(all-time counts for the metrics exporter). This package re-exports what callers use.
"""

from harness.durations import parse_duration
from harness.store.queries.filters import Filters, parse_instant
from harness.store.queries.latency import (
    MS_DIGITS,
    LatencyRow,
    latency,
    percentile_ms,
    percentiles,
)
from harness.store.queries.names import (
    known_builds,
    known_migrations,
    known_ops,
    known_runs,
    known_stages,
)
from harness.store.queries.rates import RateRow, rates
from harness.store.queries.rows import (
    errors,
    events,
    fallbacks,
    latest_build,
    reconciled,
    replay_figures,
    runs,
    shadow,
)
from harness.store.queries.totals import call_totals
from harness.store.queries.window import op_figures, window_figures

__all__ = [
    "MS_DIGITS",
    "Filters",
    "LatencyRow",
    "RateRow",
    "call_totals",
    "errors",
    "events",
    "fallbacks",
    "known_builds",
    "known_migrations",
    "known_ops",
    "known_runs",
    "known_stages",
    "latency",
    "latest_build",
    "op_figures",
    "parse_duration",
    "parse_instant",
    "percentile_ms",
    "percentiles",
    "rates",
    "reconciled",
    "replay_figures",
    "runs",
    "shadow",
    "window_figures",
]
