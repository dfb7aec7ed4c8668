"""Helpers of the fault drills: `harness` commands as real processes, the simulator as a process
of its own (stopped and started again on its port), and the store and the broker's ledger read
directly, as an outside observer would.

Every command runs in the drill's own folder with an environment cleaned of anything that would
change the outcome (a database URL, broker credentials, the kill switch, the native override).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

# The run suite's clean environment and command line, and the router suite's reader of a store
# (tests/ is on sys.path, as pytest puts it for a folder of test packages).
from router.kit import rows
from run.kit import command, environment

from harness.sim import SimSettings, Simulator, SpawnedSimulator

T = TypeVar("T")

SHORT_RUN = (
    "run", "--json", "workload.trades=12", "workload.pace_ms=300", "broker.sim.profile=bench",
    "rollout.start_stage=off", "db.recorder.close_wait_s=2", "db.recorder.retry_s=0.2",
)  # fmt: skip
"""A `harness run` of a few seconds at stage `off` (no shadows: its rows are its calls) that
waits 2 s at close for an unavailable database: the recorder drills' run."""
_SQLITE_LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()
    con.execute("COMMIT")
    """
)

SIM_USER = "drill-user"
SIM_KEY = "drill-key-3c9e-do-not-print"
OPEN = 1
"""`OrderStatus.OPEN` as the ledger prints it."""


def harness(
    folder: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `harness ARGS...` in `folder` to the end (stdout and stderr captured)."""
    return subprocess.run(
        command(*args),
        cwd=folder,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(
    folder: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    program: list[str] | None = None,
    stderr: IO[str] | None = None,
) -> subprocess.Popen[str]:
    """Start `harness ARGS...` (or `program ARGS...`) in `folder`, stdout piped; stderr piped,
    or written to `stderr` (a file: a long run's log would fill a pipe nobody reads yet)."""
    return subprocess.Popen(
        (program or command()) + list(args),
        cwd=folder,
        env=environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr is None else stderr,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """Wait for `process` (killed after `timeout` s, and the drill fails); its output."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"still running after {timeout} s; stderr: {err[-3000:]}") from None


def summary(out: str, err: str = "") -> dict[str, Any]:
    """The JSON summary a `harness run --json` printed."""
    try:
        data: dict[str, Any] = json.loads(out)
    except ValueError:
        raise AssertionError(f"no JSON on stdout: {out[-2000:]!r}\nstderr: {err[-3000:]}") from None
    return data


def projectx(sim: SpawnedSimulator | Simulator) -> tuple[tuple[str, ...], dict[str, str]]:
    """Overrides and environment of a run against `sim` as the real gateway is reached."""
    return ("broker=projectx", f"broker.base_url={sim.url}"), {
        "PROJECTX_USERNAME": SIM_USER,
        "PROJECTX_API_KEY": SIM_KEY,
    }


def gateway(**settings: Any) -> SpawnedSimulator:
    """A `harness sim` process with the drills' credentials (stop it when done)."""
    return Simulator.spawn(SimSettings(username=SIM_USER, api_key=SIM_KEY, **settings))


def outcome_count(url: str, run_id: str | None = None) -> int:
    """Outcome rows in the store (of one run), or -1 while it cannot be read."""
    sql = "SELECT count(*) AS n FROM outcomes" + (" WHERE run_id = :run" if run_id else "")
    try:
        return int(rows(url, sql, run=run_id)[0]["n"])
    except Exception:  # not created yet, locked, or down: the caller polls again
        return -1


def wait_until(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def wait_for_outcomes(
    url: str, at_least: int, process: subprocess.Popen[str], timeout: float
) -> int:
    """Wait until the store holds `at_least` outcome rows (the run is well under way)."""

    def enough() -> int | None:
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"ended early ({process.returncode}): {err[-3000:]}")
        n = outcome_count(url)
        return n if n >= at_least else None

    try:
        return wait_until(enough, timeout, f"{at_least} outcome rows")
    except AssertionError:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.communicate()
        raise


def mid_trip(sim: SpawnedSimulator | Simulator) -> Callable[[], bool]:
    """A condition for `wait_until`: by the broker's own book, a round trip is under way (a
    position held and its stop working), so an outage or a kill now lands in its middle."""

    def under_way() -> bool:
        book = sim.stats()
        return bool(book["positions"] > 0 and book["open_orders"] > 0)

    return under_way


def tag_prefix(run_id: str) -> str:
    """The customTag prefix of a `harness run`'s orders."""
    return f"hr-{run_id[:16]}-"


def orders_of(ledger: Iterable[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """The orders of the broker's ledger that carry a run's tags."""
    prefix = tag_prefix(run_id)
    return [o for o in ledger if (o.get("customTag") or "").startswith(prefix)]


def duplicates(orders: Iterable[dict[str, Any]]) -> int:
    """Orders beyond the first carrying the same customTag (each tag must be placed once)."""
    tags = Counter(o["customTag"] for o in orders if o.get("customTag"))
    return sum(n - 1 for n in tags.values())


def open_positions(sim: SpawnedSimulator | Simulator, account: int) -> list[dict[str, Any]]:
    """The broker's open positions of `account`."""
    return [p for p in sim.positions() if p["accountId"] == account]


def ops(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A run summary's operations by name."""
    return {o["op"]: o for o in data["ops"]}


def total(data: dict[str, Any], key: str) -> int:
    """A summary figure summed over the operations (`calls`, `fallbacks`, ...)."""
    return int(sum(o[key] for o in data["ops"]))


def surfaced_errors(data: dict[str, Any]) -> int:
    """The error outcomes of a run but the refused changes to a stop that had filled meanwhile:
    the simulator's prices move with the clock, so on a slow (loaded) machine a stop is hit
    now and then before its modify or cancel arrives; the broker refuses the change, the
    workload reads the fill (`stopped_out`) and goes on, no problem. At most one such refusal
    per stopped-out round trip (a refused modify ends the trip's changes)."""
    by_op = {o["op"]: o["errors"] for o in data["ops"]}
    refused = by_op.get("modify_order", 0) + by_op.get("cancel_order", 0)
    return total(data, "errors") - min(refused, data["round_trips"]["stopped_out"])


def rss_kib(pid: int) -> int | None:
    """Resident memory of a process in KiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def open_fds(pid: int) -> int | None:
    """File descriptors a process holds open (None once it is gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


@contextlib.contextmanager
def small_disk(folder: Path, size_kib: int, *, owner: str | None = None) -> Iterator[Path]:
    """A tmpfs of `size_kib` KiB mounted at `folder` (a real file system that fills up: ENOSPC,
    EROFS once remounted read-only), owned by `owner` when given; unmounted after. Mounting
    needs root, as the drills run (in CI too)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kib}k,mode=0755"
    if owner is not None:
        import pwd

        user = pwd.getpwnam(owner)
        options += f",uid={user.pw_uid},gid={user.pw_gid}"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"mounting a tmpfs at {folder} failed: {done.stderr}"
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def read_only(folder: Path) -> None:
    """Remount the `small_disk` at `folder` read-only (nothing may hold a file open for writing)."""
    done = subprocess.run(
        ["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True
    )
    assert done.returncode == 0, f"remounting {folder} read-only failed: {done.stderr}"


def fill(folder: Path, name: str = "filler") -> int:
    """Write `folder/name` until its file system is full (ENOSPC at a single byte); the bytes
    written. Delete the file to free the space."""
    written = 0
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = 1 << 20
        while size:
            try:
                written += os.write(fd, b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2
        return written
    finally:
        os.close(fd)


@contextlib.contextmanager
def sqlite_locked(db: Path) -> Iterator[None]:
    """Another process holds the SQLite file `db` locked (`BEGIN EXCLUSIVE`: every write of
    others fails with "database is locked" after its busy time-out) until the block ends."""
    locker = subprocess.Popen(
        [sys.executable, "-c", _SQLITE_LOCKER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        yield
        assert locker.stdin is not None
        locker.stdin.write("\n")
        locker.stdin.flush()
        assert locker.wait(30) == 0
    finally:
        if locker.poll() is None:
            locker.kill()
            locker.wait()


def recorder_figures(
    figures: Any, label: str, url: str, data: dict[str, Any], code: int, err: str
) -> dict[str, int]:
    """Add a recorder drill's figures (calls made, rows recorded, dropped, left in the spill
    file; exit status, tracebacks) and check what always holds: this process's count is the
    store's, and recorded + dropped + spilled = calls made. Returns `made` and `stored`."""
    stored = int(
        rows(url, "SELECT count(*) AS n FROM outcomes WHERE run_id = :run", run=data["run"])[0]["n"]
    )
    recorder = data["recorder"]
    made = total(data, "calls_made")
    figures.add(f"{label}: calls made / rows recorded / dropped / left in the spill file", (
        made, stored, recorder["dropped"], recorder["in_spill"]
    ))  # fmt: skip
    figures.add(f"{label}: exit status / tracebacks", (code, err.count("Traceback")))
    assert "Traceback" not in err, err[-3000:]
    assert data["exit_status"] == code
    assert recorder["rows"] == stored
    assert stored + recorder["dropped"] + recorder["in_spill"] == made
    return {"made": made, "stored": stored}
