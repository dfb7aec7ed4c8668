"""Shadow runs in worker processes: the job, the comparison, the worker's loop, and its pool.

    python -m harness.router.worker        # a worker: pickled jobs on stdin, results on stdout

Why not `multiprocessing` / `ProcessPoolExecutor`: with the `spawn` and `forkserver` start
methods (the only safe ones in a process running tokio threads) every worker first imports the
parent's `__main__` module. A bot script without an `if __name__ == "__main__":` guard would
then run again inside the shadow worker: connect, trade. These workers are plain child
processes (`python -m harness.router.worker`) that import only the harness, with the parent's
`sys.path` (so an engine importable in the parent is importable here too).

Frames are an 8-byte little-endian length and a pickle. The worker answers `READY` once it has
loaded the comparison code, then one `(job_id, ("ok", ShadowResult) | ("error", text))` per
job, in order. The pool (`WorkerPool`) keeps one thread per worker that sends a job, waits for
its answer and settles its future; a worker that dies fails its job and is restarted for the
next one.

This module imports no SQL, config or router code: a worker starts in well under a second.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Final

import numpy as np

from harness.bars import Bars
from harness.compare import Difference, describe_error, first_result_difference

__all__ = ["ShadowJob", "ShadowResult", "WorkerDiedError", "WorkerPool", "run_shadow"]

log = logging.getLogger("harness.router")

READY: Final = b"harness-shadow-worker-ready"
_LEN: Final = 8


@dataclass(frozen=True, slots=True)
class ShadowJob:
    """What a shadow run needs; picklable (plain arrays, lists, a module name, the primary's
    outcome: `{timeframe: Bars}` or the exception it raised)."""

    engine: str
    columns: tuple[np.ndarray, ...]
    periods: list[int]
    offsets: list[int]
    names: list[str]
    primary: Mapping[str, Bars] | BaseException


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """A shadow run's comparison: the first difference (None: same), its time, its error."""

    difference: Difference | None
    latency_us: float
    error: str | None


def run_shadow(job: ShadowJob) -> ShadowResult:
    """Run the shadow side on the job's input and compare with the primary's outcome.

    Runs in a worker process or thread; every exception of the shadow side is part of the
    result, never raised.
    """
    engine = importlib.import_module(job.engine)
    started = time.perf_counter_ns()
    outcome: Mapping[str, Bars] | BaseException
    try:
        series = engine.aggregate_columns(*job.columns, job.periods, job.offsets)
        outcome = {name: Bars(*s) for name, s in zip(job.names, series, strict=True)}
    except Exception as exc:
        outcome = exc
    latency_us = (time.perf_counter_ns() - started) / 1000.0
    difference = first_result_difference(job.primary, outcome)
    error = describe_error(outcome) if isinstance(outcome, BaseException) else None
    return ShadowResult(difference, latency_us, error)


# ----- framing -----------------------------------------------------------------------------------


def _send(stream: IO[bytes], payload: bytes) -> None:
    stream.write(len(payload).to_bytes(_LEN, "little") + payload)
    stream.flush()


def _receive(stream: IO[bytes]) -> bytes | None:
    """One frame, or None at end of stream."""
    header = stream.read(_LEN)
    if len(header) < _LEN:
        return None
    size = int.from_bytes(header, "little")
    payload = stream.read(size)
    return payload if len(payload) == size else None


# ----- the worker (child side) -------------------------------------------------------------------


def main() -> int:
    """Serve jobs from stdin until it closes; Ctrl-C is the parent's business."""
    # Run as `python -m`, this file is `__main__`; jobs and results must name the real module.
    from harness.router.worker import run_shadow as run

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by an engine may corrupt the frames
    importlib.import_module("harness.bars.python")
    _send(stdout, READY)
    while (frame := _receive(stdin)) is not None:
        job_id, job = pickle.loads(frame)
        answer: tuple[str, Any]
        try:
            answer = ("ok", run(job))
        except BaseException as exc:  # e.g. the engine module cannot be imported
            answer = ("error", describe_error(exc))
        try:
            _send(stdout, pickle.dumps((job_id, answer), protocol=pickle.HIGHEST_PROTOCOL))
        except (pickle.PicklingError, TypeError) as exc:
            _send(stdout, pickle.dumps((job_id, ("error", describe_error(exc)))))
    return 0


# ----- the pool (parent side) --------------------------------------------------------------------


class WorkerDiedError(RuntimeError):
    """A shadow worker process exited (or answered garbage) before finishing a job."""


class _Worker:
    """One child process and the thread that feeds it jobs one at a time."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self._pool = pool
        self._index = index
        self.process: subprocess.Popen[bytes] | None = None
        self.thread = threading.Thread(
            target=self._serve, name=f"harness-shadow-worker-{index}", daemon=True
        )
        self.thread.start()

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        process = subprocess.Popen(
            [sys.executable, "-m", "harness.router.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None
        if _receive(process.stdout) != READY:
            process.kill()
            process.wait()
            raise WorkerDiedError("a shadow worker did not start (see its stderr)")
        self._pool.started.release()
        return process

    def _serve(self) -> None:
        try:
            self.process = self._start()  # at once: the pool itself is made at first need
        except (OSError, WorkerDiedError) as exc:
            log.warning("shadow worker %d did not start: %s", self._index, exc)
        jobs = self._pool.jobs
        while True:
            item = jobs.get()
            if item is None:
                break
            job_id, job, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                if self.process is None or self.process.poll() is not None:
                    self.process = self._start()
                result = self._run(job_id, job)
            except BaseException as exc:
                self._stop_process()
                future.set_exception(exc)
            else:
                future.set_result(result)
        self._stop_process()

    def _run(self, job_id: int, job: ShadowJob) -> ShadowResult:
        process = self.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            _send(process.stdin, pickle.dumps((job_id, job), protocol=pickle.HIGHEST_PROTOCOL))
            frame = _receive(process.stdout)
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDiedError(f"shadow worker exited: {exc}") from None
        if frame is None:
            raise WorkerDiedError(f"shadow worker exited (status {process.wait()})")
        answered_id, (kind, value) = pickle.loads(frame)
        if answered_id != job_id:
            raise WorkerDiedError(f"shadow worker answered job {answered_id}, not {job_id}")
        if kind != "ok":
            raise WorkerDiedError(f"shadow worker could not run the job: {value}")
        assert isinstance(value, ShadowResult)
        return value

    def _stop_process(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Kill the child now (a job still running is abandoned)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()


class WorkerPool:
    """`workers` shadow worker processes fed from one queue (see the module docstring)."""

    def __init__(self, workers: int) -> None:
        self.jobs: queue.SimpleQueue[tuple[int, ShadowJob, cf.Future[ShadowResult]] | None] = (
            queue.SimpleQueue()
        )
        self.started = threading.Semaphore(0)
        """Released once per worker process that has started and said READY."""
        self._next_id = 0
        self._lock = threading.Lock()
        self._workers = [_Worker(self, i) for i in range(workers)]

    def wait_started(self, timeout: float) -> bool:
        """Wait until every worker process has started once; False on time-out."""
        deadline = time.monotonic() + timeout
        for _ in self._workers:
            if not self.started.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
        for _ in self._workers:
            self.started.release()
        return True

    def submit(self, job: ShadowJob) -> cf.Future[ShadowResult]:
        """Queue `job`; its future settles when a worker has run it."""
        future: cf.Future[ShadowResult] = cf.Future()
        with self._lock:
            self._next_id += 1
            job_id = self._next_id
        self.jobs.put((job_id, job, future))
        return future

    def shutdown(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop every worker after the queued jobs (or now, with `kill`)."""
        if kill:
            while True:
                try:
                    item = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[2].cancel()
            for worker in self._workers:
                worker.kill()
        for _ in self._workers:
            self.jobs.put(None)
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))


if __name__ == "__main__":
    from harness.router.worker import main as worker_main

    raise SystemExit(worker_main())
