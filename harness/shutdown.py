"""SIGTERM while harnesses are open: their rows are flushed first, whichever thread opened them.

On SIGTERM every open harness of the process has its recorder flushed (up to `SHUTDOWN_FLUSH_S`
each); then the signal does what it did before the first harness opened: a previous handler is
called, an ignored SIGTERM stays ignored, and the default (terminate) closes every open harness
as `interrupted` (its run row ended) and then lets the process die of SIGTERM as it would have.

Python lets only the main thread install a signal handler, and a bot may open its harness on any
thread, so there are two ways in:

- a harness opened on the main thread installs a Python handler (`signal.signal`), once for
  all the harnesses open; the last one to close puts the previous handler back (if ours is
  still the installed one, and from the main thread: `aclose()` does it there);
- a harness opened on another thread, while the main thread's handler is not ours, arms the
  C-level handler of `faulthandler.register`, which any thread may install and which only
  writes (the interrupted thread's traceback) into a pipe, as a signal handler may; a watcher
  thread blocked on that pipe does the flush and the rest. With a previous Python handler,
  faulthandler chains to it (it then runs on the main thread as before).

A bot that installs its own SIGTERM handler after opening replaces the harness's: it calls
`Harness.flush()` (or `Harness.close(status="interrupted")`) from that handler. In a child made
by `fork()` nothing is watched (the child's copies of the harnesses have no writer thread).
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from harness.api import Harness

__all__ = ["SHUTDOWN_FLUSH_S", "unwatch", "watch"]

log = logging.getLogger("harness.router")

SHUTDOWN_FLUSH_S: Final = 5.0
"""How long SIGTERM waits for each open harness's recorder before the previous handler runs."""

# Re-entrant: the main thread's handler may interrupt that very thread inside `watch`.
_lock = threading.RLock()
_open: set[Harness] = set()
_handler: _PythonHandler | None = None
_watcher: _Watcher | None = None


def watch(harness: Harness) -> None:
    """Flush `harness` on SIGTERM from now on (called when it opens, on any thread)."""
    global _handler, _watcher
    with _lock:
        _open.add(harness)
        if threading.current_thread() is threading.main_thread():
            if _handler is None:
                _handler = _PythonHandler()
        elif _handler is None and _watcher is None:
            _watcher = _Watcher.start()


def unwatch(harness: Harness) -> None:
    """Stop watching `harness` (it closed); once none is open, put SIGTERM back as it was
    (the Python handler only from the main thread: call again from there). Idempotent."""
    global _handler, _watcher
    with _lock:
        _open.discard(harness)
        if _open:
            return
        if _handler is not None and threading.current_thread() is threading.main_thread():
            _handler.remove()
            _handler = None
        if _watcher is not None:
            _watcher.stop()
            _watcher = None


def _flush_all() -> None:
    with _lock:
        harnesses = list(_open)
    for harness in harnesses:
        try:
            if not harness.flush(SHUTDOWN_FLUSH_S):
                log.error("SIGTERM: run %s not flushed in %.0f s", harness.run_id, SHUTDOWN_FLUSH_S)
        except Exception as exc:  # one harness must not keep the others from flushing
            log.error("SIGTERM: flushing run %s failed: %s", harness.run_id, exc)


def _close_all() -> None:
    with _lock:
        harnesses = list(_open)
    for harness in harnesses:
        try:
            harness.close(status="interrupted")
        except Exception as exc:
            log.error("SIGTERM: closing run %s failed: %s", harness.run_id, exc)


def _die_as_before() -> None:
    """Close what is open and die of SIGTERM, as the default disposition would have."""
    _close_all()
    faulthandler.unregister(signal.SIGTERM)  # (a no-op unless the watcher armed it)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


class _PythonHandler:
    """The main thread's way: `signal.signal`, chaining to the handler it replaced."""

    def __init__(self) -> None:
        self.previous: Any = signal.signal(signal.SIGTERM, self.on_sigterm)

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        _flush_all()
        previous = self.previous
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:  # SIG_DFL, or a handler Python does not know
            _die_as_before()

    def remove(self) -> None:
        """Put the previous handler back if ours is still the installed one (a handler the
        bot installed since stays: it replaced ours knowingly)."""
        if signal.getsignal(signal.SIGTERM) == self.on_sigterm and self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


class _Watcher:
    """Any thread's way: faulthandler's C handler writes into a pipe, a thread reads it."""

    def __init__(self, previous: Any, read_fd: int, write_fd: int) -> None:
        self.previous = previous
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._thread = threading.Thread(target=self._run, name="harness-sigterm", daemon=True)

    @classmethod
    def start(cls) -> _Watcher | None:
        """Arm the handler and start the thread; None when SIGTERM is ignored (nothing to do:
        it will not stop the process) or faulthandler cannot (not on this platform)."""
        previous = signal.getsignal(signal.SIGTERM)
        if previous == signal.SIG_IGN or not hasattr(faulthandler, "register"):
            return None
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # a full pipe must never block the signal handler
        # chain: faulthandler then raises the signal again for the previous handler (a Python
        # handler runs on the main thread as before); without it the default (terminate) is
        # not applied: the watcher applies it once the rows are flushed.
        # all_threads=False: the C handler then reads only the frames of the thread it
        # interrupted, which cannot change under it. With every thread's, the handler walks
        # the interpreter's thread list while the watcher (woken by its first write) closes
        # the harnesses and their threads end: on a loaded machine that walk read a freed
        # thread state and the process died of SIGSEGV instead of SIGTERM.
        faulthandler.register(
            signal.SIGTERM, file=write_fd, all_threads=False, chain=previous != signal.SIG_DFL
        )
        watcher = cls(previous, read_fd, write_fd)
        watcher._thread.start()
        _forget_in_a_forked_child()
        return watcher

    def _run(self) -> None:
        try:
            # One SIGTERM writes a traceback in many pieces: each wake-up flushes again (cheap
            # when nothing is queued); the default disposition ends the process at the first.
            while os.read(self._read_fd, 65536):
                _flush_all()
                if self.previous == signal.SIG_DFL:
                    _die_as_before()
                    return
        except OSError:
            pass  # the pipe was closed under us (stop())
        finally:
            os.close(self._read_fd)

    def stop(self) -> None:
        """Disarm (if SIGTERM is still as we found it in Python's table: else a handler
        installed since owns it, and unregistering would put ours back over it) and let the
        thread end."""
        if signal.getsignal(signal.SIGTERM) == self.previous:
            faulthandler.unregister(signal.SIGTERM)
        os.close(self._write_fd)  # the thread's read returns b"": it ends


_fork_hook_registered = False


def _forget_in_a_forked_child() -> None:
    global _fork_hook_registered
    if _fork_hook_registered or not hasattr(os, "register_at_fork"):
        return
    _fork_hook_registered = True

    def in_child() -> None:
        # The pipe is shared with the parent: the child's SIGTERM must not wake the parent's
        # watcher (which would flush and end the parent). The child has no watcher thread.
        global _watcher
        _open.clear()
        if _watcher is not None:
            faulthandler.unregister(signal.SIGTERM)
            for fd in (_watcher._read_fd, _watcher._write_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)
            _watcher = None

    os.register_at_fork(after_in_child=in_child)
