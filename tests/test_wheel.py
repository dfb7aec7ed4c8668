"""An installed user gets everything: the wheel, installed in a fresh venv, creates and reads a
store from another folder (its migrations, config tree and simulator profiles travel with it).

CI builds the wheel once and passes it as HARNESS_TEST_WHEEL; without it this test builds one
with maturin (minutes), never skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from harness.store.db import SCHEMA_REVISION

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = (
    "harness/_native",
    "harness/_native.pyi",
    "harness/py.typed",
    "harness/migrations/env.py",
    "harness/migrations/versions/0001_initial.py",
    "harness/conf/config.yaml",
    "harness/conf/rollout/default.yaml",
    "harness/sim/profiles/demo.yaml",
    "harness/tui/app.py",
    "harness/tui/app.tcss",
    "harness/tui/screens/overview.py",
    "harness/tui/widgets/operation_table.py",
)


def wheel(tmp_path: Path) -> Path:
    given = os.environ.get("HARNESS_TEST_WHEEL")
    if given:
        return Path(given)
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "maturin", "build", "--release", "-q", "-i", sys.executable,
         "-o", str(out)],
        cwd=ROOT, check=True, timeout=900,
    )  # fmt: skip
    return next(out.glob("*.whl"))


@pytest.mark.timeout(1200)
def test_the_installed_wheel_creates_and_reads_a_store_from_any_folder(tmp_path):
    built = wheel(tmp_path)
    names = zipfile.ZipFile(built).namelist()
    for shipped in SHIPPED:
        assert any(n.startswith(shipped) for n in names), f"{shipped} is not in the wheel"
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(built)], check=True, timeout=900)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "PYTHON"))}
    harness = str(env_dir / "bin" / "harness")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [harness, *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
        )

    done = run("db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"schema revision {SCHEMA_REVISION}" in done.stdout
    assert (elsewhere / "harness.db").exists()
    # Every Alembic verb a user needs, without an alembic.ini (none ships): `harness db`.
    done = run("db", "history")
    assert done.returncode == 0 and "base -> 0001" in done.stdout, done.stderr
    done = run("db", "downgrade", "0001")
    assert done.returncode == 0 and f"({SCHEMA_REVISION} -> 0001)" in done.stdout, done.stderr
    done = run("db", "current", "--json")
    assert done.returncode == 1 and '"revision": "0001"' in done.stdout, done.stderr
    done = run("db", "upgrade")
    assert done.returncode == 0 and f"(0001 -> {SCHEMA_REVISION})" in done.stdout, done.stderr
    offline = "db.url=postgresql+psycopg://bot@127.0.0.1:1/nowhere"  # the dialect; no server
    done = run("db", "upgrade", "--sql", offline)
    assert done.returncode == 0 and done.stdout.startswith("BEGIN;"), done.stderr
    assert "CREATE TABLE outcomes" in done.stdout and done.stdout.rstrip().endswith("COMMIT;")
    done = run("status", "--json")
    assert done.returncode == 0, done.stderr
    assert '"stage": "off"' in done.stdout
    # The package answers from site-packages, not from this checkout.
    where = subprocess.run(
        [str(python), "-c", "import harness, sys; print(harness.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert str(env_dir) in where and str(ROOT) not in where
    # The dashboard runs from the installed package, its stylesheet included.
    dashboard = """
import asyncio
from harness.config import compose
from harness.tui.app import make_app

async def main():
    app = make_app(compose([]))
    async with app.run_test(size=(80, 24)) as pilot:
        while app.refreshes < 1 and app.store_problem is None:
            await pilot.pause(0.05)
        print(app.snapshot.overview.state.stage, app.store_problem, type(app).CSS_PATH)

asyncio.run(main())
"""
    done = subprocess.run(
        [str(python), "-c", dashboard], cwd=elsewhere, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["off", "None", "app.tcss"]
