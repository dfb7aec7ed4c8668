"""Who can open the store (issue 20): a SQLite file and its -wal and -shm are created owner-only;
a store the process cannot write (a copy, a backup, a read-only mount) is read by every command
that only reads, the dashboard included; reading writes nothing, not even the rollout state.

Permissions do not bind root, so as root the folder is made read-only by a read-only bind mount
in a mount namespace of the command's own (`unshare -m`: EROFS, which binds root too); as
another user, by its mode (0555, files 0444). Either way the command first proves it cannot
write there.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import storekit
from sqlalchemy import text

from harness.store.db import SCHEMA_REVISION, open_engine, open_store, upgrade

from .schemakit import act

pytestmark = pytest.mark.timeout(300)

PROBE = ".write-probe"
DASHBOARD = """
import asyncio
from harness.config import compose
from harness.tui.app import make_app

async def main():
    app = make_app(compose([]))
    async with app.run_test(size=(100, 30)) as pilot:
        while app.refreshes < 1 and app.store_problem is None:
            await pilot.pause(0.05)
        print(app.snapshot.overview.state.stage, app.store_problem)

asyncio.run(main())
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "TOPSTEPX"))}


def read_only(
    folder: Path, *args: str, program: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Run `harness ARGS` (or `python PROGRAM`) in `folder`, which the process cannot write."""
    command = [sys.executable, *program] if program else [sys.executable, "-m", "harness", *args]
    # The shell proves the folder read-only first: a probe file it could create fails the test.
    guard = f'cd "$0" && if touch {PROBE} 2>/dev/null; then echo WRITABLE >&2; exit 99; fi'
    if os.geteuid() == 0:
        script = f'mount --bind -o ro "$0" "$0" && {guard} && exec "$@"'
        wrapped = ["unshare", "-m", "sh", "-c", script, str(folder), *command]
    else:
        for path in folder.iterdir():
            path.chmod(0o444)
        folder.chmod(0o555)
        wrapped = ["sh", "-c", f'{guard} && exec "$@"', str(folder), *command]
    try:
        done = subprocess.run(
            wrapped, capture_output=True, text=True, timeout=240, env=environment()
        )
    finally:
        if os.geteuid() != 0:
            folder.chmod(0o755)
            for path in folder.iterdir():
                path.chmod(0o644)
    assert done.returncode != 99, "the folder could be written: the test proves nothing"
    if "unshare" in done.stderr or "mount:" in done.stderr:
        pytest.fail(f"cannot make a read-only mount here: {done.stderr.strip()}")
    return done


def harness(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=240,
        env=environment(),
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ----- owner-only ------------------------------------------------------------------------------


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)  # the usual umask, under which SQLite makes 0644 files
    yield
    os.umask(previous)


def test_harness_db_upgrade_creates_the_file_owner_only(tmp_path, umask_022):
    done = harness(tmp_path, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / "harness.db") == 0o600


@pytest.mark.parametrize("action", ["open", "upgrade"])
def test_the_file_and_its_wal_and_shm_are_owner_only(tmp_path, umask_022, action):
    db = tmp_path / "harness.db"
    url = f"sqlite:///{db}"
    act(action, url)  # `harness run`'s opening, or `harness db upgrade`
    engine = open_engine(url)
    with engine.begin() as conn:  # a writer holds the WAL open: -wal and -shm exist now
        conn.execute(text("INSERT INTO breakers (op, is_open, failures) VALUES ('x', false, 0)"))
        made = {p.name: mode(p) for p in tmp_path.iterdir()}
    engine.dispose()
    assert made == {"harness.db": 0o600, "harness.db-wal": 0o600, "harness.db-shm": 0o600}


# ----- read-only -------------------------------------------------------------------------------


@pytest.fixture
def seeded(tmp_path) -> Path:
    """A folder holding a store with a rollout at `staging` and 2,050 outcomes, closed (its
    WAL checkpointed into the file and removed, as after the last process ended)."""
    folder = tmp_path / "store"
    folder.mkdir()
    url = f"sqlite:///{folder / 'harness.db'}"
    engine = open_engine(url)
    upgrade(engine)
    engine.dispose()
    seeded = storekit.seed_rollout(url, tmp_path, time.time_ns())
    seeded.engine.dispose()
    assert sorted(p.name for p in folder.iterdir()) == ["harness.db"]
    return folder


def test_every_reading_command_reads_a_store_it_cannot_write(seeded):
    writable = {
        args: harness(seeded, *args)
        for args in (("query", "latency", "--json"), ("query", "runs", "--json"))
    }
    before = snapshot(seeded)
    for args in writable:
        done = read_only(seeded, *args)
        assert done.returncode == 0, done.stderr
        assert done.stdout == writable[args].stdout  # the same answer as from a writable copy
    status = read_only(seeded, "status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert (data["stage"], data["started"]) == ("staging", True)
    assert read_only(seeded, "status").returncode == 0
    gate = read_only(seeded, "gate", "--json")
    assert gate.returncode in (0, 1, 3) and json.loads(gate.stdout)["stage"] == "staging"
    current = read_only(seeded, "db", "current", "--json")
    assert json.loads(current.stdout)["revision"] == SCHEMA_REVISION and current.returncode == 0
    breakers = read_only(seeded, "breaker", "--json")
    assert breakers.returncode == 0 and len(json.loads(breakers.stdout)) == 4
    dashboard = read_only(seeded, program=("-c", DASHBOARD))
    assert dashboard.returncode == 0, dashboard.stderr
    assert dashboard.stdout.split() == ["staging", "None"]
    # A write is refused in one line that says why and what still works.
    kill = read_only(seeded, "kill", "--reason", "drill")
    assert kill.returncode == 2 and "Traceback" not in kill.stderr
    assert "cannot be written by this process" in kill.stderr and "harness status" in kill.stderr
    assert snapshot(seeded) == before  # nothing created, nothing changed


def test_a_read_only_copy_taken_while_a_writer_was_open_shows_the_rows_in_its_wal(tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    url = f"sqlite:///{live / 'harness.db'}"
    act("upgrade", url)
    writer = sqlite3.connect(live / "harness.db")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # committed rows stay in the -wal
    writer.execute(
        "INSERT INTO runs (id, started_ns, status, kind, host, pid, os_user, version, "
        "native_available, config, rows_recorded, rows_dropped) VALUES ('r-in-wal', 1, "
        "'finished', 'bot', 'h', 1, 'u', 'v', 1, '{}', 0, 0)"
    )
    writer.commit()
    copy, no_index = tmp_path / "copy", tmp_path / "no-index"
    for folder, names in ((copy, ("", "-wal", "-shm")), (no_index, ("", "-wal"))):
        folder.mkdir()
        for suffix in names:
            shutil.copyfile(live / f"harness.db{suffix}", folder / f"harness.db{suffix}")
    writer.close()
    assert (copy / "harness.db-wal").stat().st_size > 0
    done = read_only(copy, "query", "runs", "--json")
    assert done.returncode == 0, done.stderr
    assert [r["run"] for r in json.loads(done.stdout)] == ["r-in-wal"]
    # Without its -shm, and no way to make one, the -wal cannot be read: said, not guessed.
    done = read_only(no_index, "query", "runs", "--json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "harness.db-wal holds changes not yet in harness.db" in done.stderr


def test_status_of_a_store_without_a_rollout_state_writes_nothing(store_url, tmp_path):
    done = harness(tmp_path, "status", "--json", f"db.url={store_url}")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["stage"], data["started"], data["stage_since"]) == ("off", False, None)
    shown = harness(tmp_path, "status", f"db.url={store_url}")
    assert "off (not started)" in shown.stdout and "no state yet" in shown.stdout
    assert harness(tmp_path, "gate", f"db.url={store_url}").returncode == 3
    engine = open_store(store_url)
    with engine.connect() as conn:
        counts = [
            conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("rollout_state", "rollout_events")
        ]
    engine.dispose()
    assert counts == [0, 0]


def test_status_of_a_read_only_store_without_a_rollout_state(tmp_path):
    act("upgrade", f"sqlite:///{tmp_path / 'harness.db'}")
    done = read_only(tmp_path, "status")
    assert done.returncode == 0, done.stderr
    assert "off (not started)" in done.stdout and "no state yet" in done.stdout
