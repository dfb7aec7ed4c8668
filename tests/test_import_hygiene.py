"""Import hygiene, checked in fresh interpreters (the only way to see what an import drags in):
the core (router, recorder, gate, orders, bars, store, control, the dispatcher) never imports
Textual or the dashboard, and the dashboard, driven through every screen, never imports the
native module, nor even tries to; `harness --help` and `harness status` import none of the heavy
modules a quick command does not use (issue 23)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import storekit

from harness.store.db import open_engine, upgrade

pytestmark = pytest.mark.timeout(180)

CORE = [
    "harness",
    "harness.api",
    "harness.router",
    "harness.recorder",
    "harness.run",
    "harness.gate",
    "harness.orders",
    "harness.bars",
    "harness.store.queries",
    "harness.control.actions",
    "harness.control.cli",
    "harness.metrics.cli",
    "harness.cli",
]

# What a quick command must not import: each costs a noticeable share of the 2x-`import
# sqlalchemy` CPU budget of `harness status` (benches/startup.py), and none is needed to answer.
# A name not installed here is listed all the same: the day it is, the test holds it out.
HEAVY = (
    "hydra",
    "omegaconf",
    "alembic",
    "textual",
    "pyarrow",
    "httpx",
    "matplotlib",
    "apprise",
    "prometheus_client",
    "pandas",
    "polars",
    "harness._native",
)
# `harness status` on a store with data still imports these: numpy, for the gate's statistics
# and latency sketches, and sqlalchemy.orm, for the store's declarative models (see
# benches/reports/startup.md). `--help` imports neither, nor SQLAlchemy at all.
STATUS_STILL_IMPORTS = ("numpy", "sqlalchemy.orm")


def run_python(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("module", CORE)
def test_the_core_never_imports_textual_or_the_dashboard(module):
    done = run_python(
        f"""
        import sys
        import {module}
        unwanted = ("textual", "textual_plotext", "harness.tui")
        print(",".join(m for m in unwanted if m in sys.modules))
        """
    )
    assert done.stdout.strip() == "", f"{module} imported {done.stdout.strip()}"


def test_the_dashboard_driven_through_every_screen_never_imports_the_native_module(tmp_path):
    url = f"sqlite:///{tmp_path / 'harness.db'}"
    engine = open_engine(url)
    upgrade(engine)
    now = storekit.NOW_NS
    storekit.set_stage(engine, "canary", now - 600 * storekit.SECOND_NS)
    run = storekit.new_run(engine, now - 700 * storekit.SECOND_NS)
    traffic = [
        storekit.Traffic(op, 50, rust_share=0.5, rust_error_rate=0.1) for op in storekit.Operation
    ]
    rows = storekit.outcomes(run, "canary", now - 600 * storekit.SECOND_NS, now, traffic)
    storekit.record(engine, tmp_path, rows, now_ns=now)
    engine.dispose()
    done = run_python(
        f"""
        import asyncio, sys

        class RefuseNative:
            attempts = []
            def find_spec(self, name, path=None, target=None):
                if name in ("harness._native", "harness.native"):
                    self.attempts.append(name)
                    raise ImportError(f"{{name}} is not importable in this test")
                return None

        guard = RefuseNative()
        sys.meta_path.insert(0, guard)

        from harness.config import compose
        from harness.tui.app import make_app

        async def drive():
            app = make_app(compose(["db.url={url}"]), clock=lambda: {now})
            async with app.run_test(size=(100, 30)) as pilot:
                while app.refreshes < 1:
                    await pilot.pause(0.05)
                for key in ("2", "3", "4", "5", "6", "7", "1", "c", "question_mark", "escape", "P"):
                    await pilot.press(key)
                    await pilot.pause()  # the key handled, its screen mounted
                    await app.workers.wait_for_complete()  # and every read it started done
                assert app.store_problem is None, app.store_problem
            return app.refreshes

        refreshes = asyncio.run(drive())
        print(refreshes, guard.attempts, "harness._native" in sys.modules)
        """,
        cwd=tmp_path,
    )
    refreshes, attempts, loaded = done.stdout.split(maxsplit=2)
    assert int(refreshes) >= 1
    assert (attempts, loaded.strip()) == ("[]", "False"), done.stdout


def _imported_by_command(argv: list[str], cwd: Path, db_url: str) -> list[str]:
    """The modules of `HEAVY`, `STATUS_STILL_IMPORTS`, SQLAlchemy and `importlib.metadata`
    (the version's old reader, 60 ms) a fresh interpreter holds
    after `harness ARGV`, run as the console script runs it."""
    watched = (*HEAVY, *STATUS_STILL_IMPORTS, "sqlalchemy", "importlib.metadata")
    done = run_python(
        f"""
        import contextlib, io, os, sys
        os.environ["HARNESS_DB_URL"] = {db_url!r}
        from harness.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main({argv!r})
            except SystemExit as exc:  # --help
                code = exc.code
        assert code in (0, None), code
        print(",".join(m for m in {watched!r} if m in sys.modules))
        """,
        cwd=cwd,
    )
    return [m for m in done.stdout.strip().split(",") if m]


def test_help_imports_none_of_the_heavy_modules(tmp_path):
    imported = _imported_by_command(["--help"], tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    assert imported == []


def test_status_on_a_store_with_data_imports_none_of_the_heavy_modules(tmp_path):
    url = f"sqlite:///{tmp_path / 'harness.db'}"
    engine = open_engine(url)
    upgrade(engine)
    engine.dispose()
    storekit.seed_rollout(url, tmp_path, storekit.NOW_NS).engine.dispose()
    imported = _imported_by_command(["status"], tmp_path, url)
    assert [m for m in imported if m in HEAVY] == []
    assert "sqlalchemy" in imported  # the command did read the store
