"""The store as Prometheus metrics: a collector that reads it on every scrape.

Nothing is counted in this process: every figure is read from the store when Prometheus
scrapes, so one exporter covers every process recording into a database, and a restart of the
exporter loses nothing. Counters are totals since the beginning, read as `harness query rates`
reads all time (hour and minute rollups plus the raw tail: `queries.call_totals`), so
`harness_calls_total` summed per (op, side) equals that query's `calls`. Latency quantiles come
from the same sketches the gate merges, over a trailing window.

Outcome of a call (`outcome` label), by the side the router chose (`side`): `ok` served by that
side without a fallback; `fallback` routed to Rust, failed there, served by Python without an
error; `error` the caller got an error, whether or not a fallback was tried first (so the
error count equals the gate's and `query rates`' errors). `harness_fallbacks_total` counts every
fallback, the ones that then failed too (`query rates`' fallbacks).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select

from harness.config import RolloutConfig
from harness.store import queries
from harness.store.db import error_line
from harness.store.models import Breaker, Run, ShadowComparison
from harness.store.state import read_states

__all__ = ["METRICS", "QUANTILES", "StoreCollector"]

log = logging.getLogger("harness.metrics")

QUANTILES: Final = (0.5, 0.95, 0.99)
"""The latency quantiles served, as `quantile` label values "0.5", "0.95", "0.99"."""

GLOBAL: Final = "all"
"""The `migration` label of the global kill flag (as `harness query events` names it)."""

UNKNOWN: Final = "unknown"
"""The `migration` label of an operation neither a recorded call nor the configuration places."""

METRICS: Final = {
    "harness_calls_total": "counter",
    "harness_fallbacks_total": "counter",
    "harness_latency_seconds": "gauge",
    "harness_stage": "gauge",
    "harness_shadow_comparisons_total": "counter",
    "harness_breaker_open": "gauge",
    "harness_kill": "gauge",
    "harness_rows_dropped_total": "counter",
    "harness_store_up": "gauge",
    "harness_scrape_duration_seconds": "gauge",
    "harness_scrape_errors_total": "counter",
}
"""Every metric the exporter serves (sample names) and its type: what a dashboard may name."""


@dataclass(frozen=True, slots=True)
class _Reading:
    """One scrape's figures, read from the store."""

    calls: dict[tuple[str | None, str, str, str, bool, bool], int]
    latency: list[queries.LatencyRow]
    shadows: dict[tuple[str, bool], int]
    breakers: dict[str, bool]
    stages: dict[str, str]
    kills: dict[str, bool]
    global_kill: bool | None
    rows_dropped: int


class StoreCollector(Collector):
    """A `prometheus_client` collector of the store at `engine` (see the module docstring).

    `rollout` names each migration's ladder (for the zeros of `harness_stage`) and the
    migration of an operation no recorded call names; `window_ns` is the trailing window of
    the latency quantiles (ns), ending at `clock()` (ns since the epoch). Scrapes are
    serialised (one store read at a time, however many Prometheus servers ask). A store that
    cannot be read gives `harness_store_up 0` and one warning line (the database's password
    never in it), never an HTTP error.
    """

    def __init__(
        self,
        engine: Engine,
        rollout: RolloutConfig,
        window_ns: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._clock = clock
        self._engine = engine
        self._rollout = rollout
        self._window_ns = window_ns
        self._lock = threading.Lock()
        self._errors = 0

    def describe(self) -> list[Metric]:
        """Nothing: registering must not read the store (`collect` would be called instead)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The metric families of one scrape (the store read now)."""
        with self._lock:
            began = time.perf_counter()
            try:
                reading: _Reading | None = self._read()
            except Exception as exc:  # any failure of the store is a scrape of `up 0`
                self._errors += 1
                log.warning("metrics: the store could not be read: %s", error_line(exc))
                reading = None
            took = time.perf_counter() - began
            errors = self._errors
        if reading is not None:
            yield from self._families(reading)
        yield GaugeMetricFamily(
            "harness_store_up",
            "1 when this scrape read the store, 0 when it could not",
            value=0 if reading is None else 1,
        )
        yield GaugeMetricFamily(
            "harness_scrape_duration_seconds", "Time this scrape took to read the store", took
        )
        yield CounterMetricFamily(
            "harness_scrape_errors", "Scrapes of this exporter that could not read the store",
            errors,
        )  # fmt: skip

    def _read(self) -> _Reading:
        since = self._clock() - self._window_ns
        with self._engine.connect() as conn:
            calls = queries.call_totals(conn)
            shadows = _shadow_totals(conn)
            breakers = {
                str(op): bool(is_open)
                for op, is_open in conn.execute(select(Breaker.op, Breaker.is_open))
            }
            state = read_states(conn)
            dropped = conn.execute(select(func.coalesce(func.sum(Run.rows_dropped), 0))).scalar()
        latency = queries.latency(self._engine, queries.Filters(since_ns=since))
        return _Reading(
            calls=calls,
            latency=latency,
            shadows=shadows,
            breakers=breakers,
            stages={} if state is None else {m: r.stage for m, r in state.migrations.items()},
            kills={} if state is None else {m: r.kill for m, r in state.migrations.items()},
            global_kill=None if state is None else state.kill,
            rows_dropped=int(dropped or 0),
        )

    def _families(self, reading: _Reading) -> Iterator[Metric]:
        migration_of: dict[str, str] = {}
        calls = CounterMetricFamily(
            "harness_calls",
            "Calls recorded since the beginning, by the side routed to and how each ended "
            "(ok; fallback: Rust failed, Python served; error: the caller got an error)",
            labels=("migration", "op", "side", "outcome"),
        )
        fallbacks = CounterMetricFamily(
            "harness_fallbacks",
            "Calls routed to Rust and served by Python (those that then failed too)",
            labels=("migration", "op"),
        )
        by_outcome: dict[tuple[str, str, str, str], int] = defaultdict(int)
        fell: dict[tuple[str, str], int] = defaultdict(int)
        for (migration, op, routed, _served, fell_back, ok), n in sorted(
            reading.calls.items(), key=lambda kv: tuple(str(part) for part in kv[0])
        ):
            name = migration or self._rollout.migration_of(op) or UNKNOWN
            migration_of.setdefault(op, name)
            outcome = "error" if not ok else "fallback" if fell_back else "ok"
            by_outcome[(name, op, routed, outcome)] += n
            if fell_back:
                fell[(name, op)] += n
        for labels, n in by_outcome.items():
            calls.add_metric(list(labels), n)
        for labels2, n in fell.items():
            fallbacks.add_metric(list(labels2), n)
        yield calls
        yield fallbacks

        latency = GaugeMetricFamily(
            "harness_latency_seconds",
            f"Latency quantiles of successful calls served without a fallback, over the last "
            f"{self._window_ns // 1_000_000_000} s (nearest rank, within 1%)",
            labels=("op", "side", "quantile"),
        )
        for row in reading.latency:
            for q, ms in zip(QUANTILES, (row.p50_ms, row.p95_ms, row.p99_ms), strict=True):
                if ms is not None:
                    latency.add_metric([row.op, row.impl, str(q)], _seconds(ms))
        yield latency

        stage = GaugeMetricFamily(
            "harness_stage",
            "1 for each migration's current stage, 0 for the other stages of its ladder",
            labels=("migration", "stage"),
        )
        for migration, current in sorted(reading.stages.items()):
            names = [s.name for s in self._rollout.ladder(migration)]
            for name in names if current in names else [*names, current]:
                stage.add_metric([migration, name], 1 if name == current else 0)
        yield stage

        shadow = CounterMetricFamily(
            "harness_shadow_comparisons",
            "Shadow comparisons recorded (raw rows: `harness db prune` removes old ones)",
            labels=("op", "result"),
        )
        for (op, matched), n in sorted(reading.shadows.items()):
            shadow.add_metric([op, "match" if matched else "mismatch"], n)
        yield shadow

        breaker = GaugeMetricFamily(
            "harness_breaker_open",
            "1 while an operation's circuit breaker is open (its calls go to Python)",
            labels=("migration", "op"),
        )
        ops = dict.fromkeys(
            op for m in self._rollout.migration_names() for op in self._rollout.operations_of(m)
        )
        for op in [*ops, *sorted(set(reading.breakers) - set(ops))]:
            name = migration_of.get(op) or self._rollout.migration_of(op) or UNKNOWN
            breaker.add_metric([name, op], 1 if reading.breakers.get(op, False) else 0)
        yield breaker

        kill = GaugeMetricFamily(
            "harness_kill",
            f"1 while a migration is killed (everything to Python); migration={GLOBAL!r}: the "
            "global flag, which kills every migration",
            labels=("migration",),
        )
        if reading.global_kill is not None:
            kill.add_metric([GLOBAL], 1 if reading.global_kill else 0)
        for migration, killed in sorted(reading.kills.items()):
            kill.add_metric([migration], 1 if killed or reading.global_kill else 0)
        yield kill

        yield CounterMetricFamily(
            "harness_rows_dropped",
            "Rows the recorders could not write, summed over every run (must stay 0)",
            value=reading.rows_dropped,
        )


def _seconds(ms: float) -> float:
    """Milliseconds as seconds, to the digits `queries` keeps (no noise of the division)."""
    return float(f"{ms / 1000.0:.{queries.MS_DIGITS}g}")


def _shadow_totals(conn: Connection) -> dict[tuple[str, bool], int]:
    s = ShadowComparison
    query = select(s.op, s.matched, func.count()).group_by(s.op, s.matched)
    return {(str(op), bool(matched)): int(n) for op, matched, n in conn.execute(query)}
