"""Helpers of the `harness run` suite: the command as a real subprocess, the store read directly.

Every run happens in its own temporary folder (the default `harness.db` lands there), with an
environment cleaned of anything that would change the outcome (a database URL, broker
credentials, the kill switch, the native override).
"""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SIM_USER = "run-suite-user"
SIM_KEY = "run-suite-key-7f3a-do-not-print"
CLEARED = (
    "HARNESS_DB_URL",
    "HARNESS_CONFIG_DIR",
    "HARNESS_NO_NATIVE",
    "TOPSTEPX_USE_RUST",
    "PROJECTX_USERNAME",
    "PROJECTX_API_KEY",
    "PROJECTX_BASE_URL",
    "TOPSTEPX_USERNAME",
    "TOPSTEPX_API_KEY",
    "HARNESS_LOG_LEVEL",
    "HARNESS_LOG_FORMAT",
)
FAST = ("broker.sim.profile=default",)
"""The embedded simulator without added latency (the default `demo` adds ~90 ms a call)."""


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without the variables in CLEARED, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(extra or {})
    return env


def command(*args: str) -> list[str]:
    """`harness ARGS...` run by this interpreter."""
    return [sys.executable, "-m", "harness", *args]


def harness(
    folder: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run `harness ARGS...` in `folder` to the end."""
    return subprocess.run(
        command(*args),
        cwd=folder,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(folder: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `harness ARGS...` in `folder` (stdout and stderr piped)."""
    return subprocess.Popen(
        command(*args),
        cwd=folder,
        env=environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON summary a `harness run --json` printed."""
    try:
        data: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"no JSON on stdout: {done.stdout!r}\nstderr: {done.stderr}") from None
    return data


def rows(db: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Rows of a query on the SQLite store `db` (a separate reader)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def wait_for_outcomes(
    db: Path, at_least: int, process: subprocess.Popen[str], timeout: float
) -> int:
    """Wait until the store holds `at_least` outcome rows (the run is well under way)."""
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"harness run ended early ({process.returncode}): {err}")
        if db.exists():
            try:
                count = rows(db, "SELECT count(*) AS n FROM outcomes")[0]["n"]
            except sqlite3.OperationalError:  # the schema is still being created
                count = 0
            if count >= at_least:
                return int(count)
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    raise AssertionError(f"only {count} outcome rows after {timeout} s")


def read_stderr_until(
    process: subprocess.Popen[str], text: str, count: int = 1, timeout: float = 60.0
) -> str:
    """Read the process's stderr until `text` has appeared `count` times in all; what was read.

    Reads the pipe itself (never the text wrapper's buffer), so that a later `communicate()`
    returns exactly the rest: the caller puts the two together."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    deadline = time.monotonic() + timeout
    seen = b""
    while seen.decode(errors="replace").count(text) < count:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            process.send_signal(signal.SIGKILL)
            process.communicate()
            raise AssertionError(
                f"{text!r} x{count} not on stderr ({'ended' if ready else 'time-out'}): "
                f"{seen.decode(errors='replace')[-3000:]}"
            )
        seen += chunk
    return seen.decode(errors="replace")
