"""Who can open the store (issue 20): a SQLite file and its -wal and -shm are created
owner-only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from harness.store.db import open_engine

from .schemakit import act

pytestmark = pytest.mark.timeout(300)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "TOPSTEPX"))}


def harness(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=240,
        env=environment(),
    )


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
