"""Shadow runs of bar aggregation: the side not chosen also runs, off the caller's path.

At the stage's `shadow_sample_rate` (a seeded RNG decides, so tests are deterministic) the
router hands a copy of the input and of its result to a `ShadowRunner`, returns to the caller
at once, and the other side runs elsewhere: `run_shadow` times it, compares the two outcomes
with `harness.compare.first_result_difference` (the contract tests' equality) and the runner
records a `ShadowRecord` (match, first differing bar, both values, both latencies, the
shadow's error). The shadow's exceptions and slowness never reach the caller: at most
`max_in_flight` shadows run or wait at once, more are skipped (and counted).

Where the shadow runs (`rollout.shadow.mechanism`):
- `thread`: a thread pool in this process. A Rust shadow releases the GIL and costs the event
  loop nothing; a pure-Python shadow holds the GIL for its whole run (about 9 ms for 3,000 bars
  into three timeframes), which the bot's event loop feels as lag.
- `process`: a small pool of worker processes (`harness.router.worker`, started at the first
  process shadow), arrays sent by pickling; the caller's process only pickles about 150 kB
  per 3,000 bars. They are plain `python -m` children, not `multiprocessing` ones, which would
  first re-import the bot's own `__main__` script (see that module).
- `auto` (the default): a Python shadow in a process, a Rust shadow on a thread. The choice is
  justified by the event-loop lag measured in `benches/router.py` (`benches/reports/router.md`).

A shadow that cannot run at all (a worker process died) is not a comparison: it is counted in
`ShadowStats.failed` and logged, not recorded as a mismatch.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from harness.bars import Bars
from harness.compare import describe_error
from harness.config import ShadowConfig, ShadowMechanism
from harness.operations import Impl, Operation
from harness.recorder import ShadowRecord
from harness.router.core import Router
from harness.router.worker import ShadowJob, ShadowResult, WorkerPool, run_shadow

__all__ = ["DEFAULT_ENGINES", "ShadowRunner", "ShadowStats"]

log = logging.getLogger("harness.router")

DEFAULT_ENGINES: Final = {Impl.RUST: "harness._native", Impl.PYTHON: "harness.bars.python"}
"""The module serving each side's aggregation: `aggregate_columns` and `Aggregator`."""
OP: Final = Operation.AGGREGATE_BARS.value  # a plain str, as the store takes it


@dataclass(frozen=True, slots=True)
class ShadowStats:
    """Shadow runs since the harness opened.

    `submitted` ran or are running; `skipped` were sampled but dropped because
    `max_in_flight` shadows were already in flight, or were order shadows that could not be
    compared (an input unknown without I/O, `harness.router.order_shadow`); `matched` /
    `mismatched` are recorded comparisons; `failed` could not run at all (not recorded);
    `abandoned` were still running at close after `timeout_s`.
    """

    submitted: int
    skipped: int
    matched: int
    mismatched: int
    failed: int
    abandoned: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class _Meta:
    ts_ns: int
    stage: str
    key: str | None
    primary: Impl
    shadow: Impl
    primary_latency_us: float
    bars_in: int


class ShadowRunner:
    """Runs and records shadow comparisons for one harness (see the module docstring)."""

    def __init__(self, config: ShadowConfig, router: Router, *, seed: str) -> None:
        self.config = config
        self._router = router
        self._rng = random.Random(f"{seed}|shadow")
        self.draw: Callable[[], float] = self._rng.random
        """The seeded RNG's next draw in [0, 1): a call is sampled at rate r when `draw() < r`
        (`sample`; the order shadow draws inline, the same one draw per call, for speed)."""
        self._lock = threading.Lock()
        self._in_flight = 0
        self._futures: set[cf.Future[ShadowResult]] = set()
        self._threads: cf.ThreadPoolExecutor | None = None
        self._processes: WorkerPool | None = None
        self._closed = False
        self._n = {"submitted": 0, "skipped": 0, "matched": 0, "mismatched": 0, "failed": 0}
        self._abandoned = 0

    def sample(self, rate: float) -> bool:
        """Whether this call is shadowed at `rate` (0..1), from the seeded RNG."""
        if rate <= 0.0:
            return False
        return rate >= 1.0 or self._rng.random() < rate

    def mechanism_for(self, shadow: Impl) -> ShadowMechanism:
        """Where a shadow of side `shadow` runs under the configured mechanism."""
        mechanism = ShadowMechanism(self.config.mechanism)
        if mechanism is ShadowMechanism.auto:
            return ShadowMechanism.process if shadow is Impl.PYTHON else ShadowMechanism.thread
        return mechanism

    def submit(
        self,
        *,
        engine: str,
        shadow: Impl,
        primary: Impl,
        columns: Sequence[np.ndarray],
        periods: list[int],
        offsets: list[int],
        names: list[str],
        outcome: Mapping[str, Bars] | BaseException,
        primary_latency_us: float,
        ts_ns: int,
        stage: str,
        key: str | None,
    ) -> bool:
        """Start one shadow run; False if skipped (`max_in_flight` reached, or closed).

        The input columns and the primary's bars are copied here, so the caller may reuse or
        change its arrays as soon as this returns.
        """
        with self._lock:
            if self._closed or self._in_flight >= self.config.max_in_flight:
                self._n["skipped"] += 1
                return False
            self._in_flight += 1
            self._n["submitted"] += 1
        try:
            job = ShadowJob(
                engine=engine,
                columns=tuple(np.array(c, copy=True) for c in columns),
                periods=list(periods),
                offsets=list(offsets),
                names=list(names),
                primary=_copy_outcome(outcome),
            )
            meta = _Meta(ts_ns, stage, key, primary, shadow, primary_latency_us, len(columns[0]))
            future = self._submit(self.mechanism_for(shadow), job)
        except Exception as exc:
            self._finished(None)
            self._count("failed")
            log.warning("shadow run could not start: %s", exc)
            return False
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(lambda f: self._done(f, meta))
        return True

    def submit_call(self, work: Callable[[], bool | None]) -> bool:
        """Run `work` on the shadow threads, off the caller's path (a registered operation's
        or an order's shadow: it compares and records, returning whether it matched, None
        when it was no comparison, counted as `skipped`);
        False if skipped (`max_in_flight` reached, or closed). Its exceptions are counted as
        `failed` and logged, never raised."""
        with self._lock:
            if self._closed or self._in_flight >= self.config.max_in_flight:
                self._n["skipped"] += 1
                return False
            self._in_flight += 1
            self._n["submitted"] += 1
        future = self._thread_pool().submit(work)

        def done(f: cf.Future[bool | None]) -> None:
            try:
                if f.cancelled():
                    return
                error = f.exception()
                if error is not None:
                    self._count("failed")
                    log.warning("shadow run failed to run: %s", describe_error(error))
                else:
                    matched = f.result()
                    if matched is None:  # not a comparison (an order shadow's input unknown)
                        self._count("skipped")
                    else:
                        self._count("matched" if matched else "mismatched")
            finally:
                self._finished(f)  # type: ignore[arg-type]

        with self._lock:
            self._futures.add(future)  # type: ignore[arg-type]
        future.add_done_callback(done)
        return True

    def prestart(self, shadow: Impl, timeout: float = 60.0) -> bool:
        """Start the pool that shadows of side `shadow` run in and wait until its workers are
        up (benchmarks: keep the one-off start out of the figures); False on time-out."""
        if self.mechanism_for(shadow) is ShadowMechanism.thread:
            self._thread_pool()
            return True
        return self._process_pool().wait_started(timeout)

    def _submit(self, mechanism: ShadowMechanism, job: ShadowJob) -> cf.Future[ShadowResult]:
        if mechanism is ShadowMechanism.thread:
            return self._thread_pool().submit(run_shadow, job)
        return self._process_pool().submit(job)

    def _thread_pool(self) -> cf.ThreadPoolExecutor:
        with self._lock:
            if self._threads is None:
                self._threads = cf.ThreadPoolExecutor(
                    max_workers=self.config.max_in_flight, thread_name_prefix="harness-shadow"
                )
            return self._threads

    def _process_pool(self) -> WorkerPool:
        with self._lock:
            if self._processes is None:
                workers = min(self.config.max_in_flight, max(1, (os.cpu_count() or 2) - 1))
                self._processes = WorkerPool(workers)
            return self._processes

    def _done(self, future: cf.Future[ShadowResult], meta: _Meta) -> None:
        try:
            self._settle(future, meta)
        finally:  # only now is it out of flight: `wait` returns after the row is queued
            self._finished(future)

    def _settle(self, future: cf.Future[ShadowResult], meta: _Meta) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self._count("failed")
            log.warning("shadow run failed to run (not a comparison): %s", describe_error(error))
            return
        result = future.result()
        diff = result.difference
        if diff is not None:
            log.warning("shadow mismatch (%s, key %s): %s", meta.shadow.value, meta.key, diff)
        self._router.record_shadow(
            ShadowRecord(
                meta.ts_ns,
                self._router.run_id,
                OP,
                meta.stage,
                meta.key,
                meta.primary.value,
                meta.shadow.value,
                diff is None,
                None if diff is None else diff.timeframe,
                None if diff is None else diff.index,
                None if diff is None else diff.field,
                None if diff is None else _text(diff.left),
                None if diff is None else _text(diff.right),
                meta.primary_latency_us,
                result.latency_us,
                None if result.error is None else self._router.scrub(result.error)[:1000],
                meta.bars_in,
                self._router.migration_of(OP),
            )
        )
        self._count("matched" if diff is None else "mismatched")

    def _finished(self, future: cf.Future[ShadowResult] | None) -> None:
        with self._lock:
            self._in_flight -= 1
            if future is not None:
                self._futures.discard(future)

    def _count(self, name: str) -> None:
        with self._lock:
            self._n[name] += 1

    def stats(self) -> ShadowStats:
        """Counts since the harness opened (see `ShadowStats`)."""
        with self._lock:
            return ShadowStats(**self._n, abandoned=self._abandoned, in_flight=self._in_flight)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no shadow is in flight; False on time-out (tests and benches)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._futures)
                if not pending and self._in_flight == 0:
                    return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            cf.wait(pending, timeout=0.05 if left is None else min(left, 0.05))

    def close(self) -> None:
        """Stop taking shadows, wait up to `timeout_s` for those in flight, then abandon the
        rest (worker processes still busy are terminated)."""
        with self._lock:
            self._closed = True
        done = self.wait(self.config.timeout_s)
        with self._lock:
            if not done:
                self._abandoned += self._in_flight
            threads, processes = self._threads, self._processes
            self._threads = self._processes = None
        if threads is not None:
            threads.shutdown(wait=done, cancel_futures=True)
        if processes is not None:
            processes.shutdown(kill=not done)


def _copy_outcome(
    outcome: Mapping[str, Bars] | BaseException,
) -> Mapping[str, Bars] | BaseException:
    if isinstance(outcome, BaseException):
        return outcome
    return {name: Bars(*(b[k].copy() for k in "tohlcv")) for name, b in outcome.items()}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
