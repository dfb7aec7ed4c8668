"""A probe the signal tests put on the PYTHONPATH of the `harness` processes they start: Python
loads it as `sitecustomize`, and it sends its own process SIGINT at a moment chosen by the
process's progress, never by a clock, so that a moment is the same on a quiet machine and on a
loaded one.

`HARNESS_PROBE_AT="FROM:MARKER+N"`: N audited events (imports, file opens, compilations,
sockets, database connections: `sys.addaudithook`) after the first event matching MARKER,
looked for from FROM: `main` (once `harness.cli.main` runs; before it the interpreter is still
starting and loading the package, and a signal there is answered by Python, not by the harness)
or `process` (from the interpreter's start). MARKER is `start` (the first event looked at), an
event name such as `sqlite3.connect`, or `import:MODULE` (the first import of MODULE).
`HARNESS_PROBE_REPORT`: a file the probe writes, when it sends, naming the event it sent at
(the test fails if the moment never came).
"""

from __future__ import annotations

import _signal
import _thread
import os
import sys
from types import FrameType
from typing import Any

_CLI = os.path.join("harness", "cli.py")


def _in_main() -> bool:
    """Whether `harness.cli.main` is on this thread's stack."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "main" and code.co_filename.endswith(_CLI):
            return True
        frame = frame.f_back
    return False


def _install(spec: str, report: str) -> None:
    start_from, _, rest = spec.partition(":")
    marker, _, after = rest.rpartition("+")
    left = int(after)
    armed, seen, walking = start_from == "process", False, False
    once = _thread.allocate_lock()  # taken by the one event that sends (events come from threads)

    def matches(event: str, args: tuple[Any, ...]) -> bool:
        if marker == "start":
            return True
        if marker.startswith("import:"):
            return event == "import" and bool(args) and args[0] == marker[len("import:") :]
        return event == marker

    def hook(event: str, args: tuple[Any, ...]) -> None:
        nonlocal armed, seen, left, walking
        if once.locked() or walking:  # (the walk below raises audited events of its own)
            return
        if not armed:
            walking = True
            try:
                armed = _in_main()
            finally:
                walking = False
            if not armed:
                return
        if not seen:
            if not matches(event, args):
                return
            seen = True
        if left > 0:
            left -= 1
            return
        if not once.acquire(blocking=False):
            return
        with open(report, "w") as out:  # an audited event too: `once` is taken, so it passes
            out.write(f"{event} {str(args[0])[:200] if args else ''}\n")
        os.kill(os.getpid(), _signal.SIGINT)

    sys.addaudithook(hook)


if os.environ.get("HARNESS_PROBE_AT"):
    _install(os.environ["HARNESS_PROBE_AT"], os.environ["HARNESS_PROBE_REPORT"])
