"""A database that fails, stalls or goes away shows as a banner over the last figures, with
their age; the interface keeps answering; the next good refresh removes the banner. A
password in the URL never reaches the screen.

PostgreSQL goes away for real (a cluster of this test's own, stopped and started again); on
SQLite a file cannot be taken from an open connection, so the failure is injected at the
driver's cursor (the SQLAlchemy error a broken file raises), and the stall likewise.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import pgcluster
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from storekit import seed_rollout

from harness.operations import Operation
from harness.store.db import open_engine, open_store, upgrade
from harness.tui.app import make_app
from harness.tui.data import Store
from harness.tui.screens.gate import GateScreen
from harness.tui.widgets.operation_table import OperationTable
from harness.tui.widgets.status_bar import StatusBar
from harness.tui.widgets.store_banner import StoreBanner

from .conftest import app_on, loaded, until

pytestmark = pytest.mark.timeout(240)

STALL_LIMIT_S = 120.0
"""A stalled statement answers after this at the latest (a failed test must not hang CI)."""


class Faults:
    """Switches the engines a `Store` opens obey: fail every statement, or hold each one until
    the database answers again (`answering` cleared, then set)."""

    def __init__(self) -> None:
        self.failing = threading.Event()
        self.answering = threading.Event()
        self.answering.set()

    def opener(self, url: str):
        engine = open_store(url)

        @event.listens_for(engine, "before_cursor_execute")
        def _fault(_conn, _cursor, statement, parameters, _context, _many):
            self.answering.wait(timeout=STALL_LIMIT_S)
            if self.failing.is_set():
                raise OperationalError(
                    statement, parameters, sqlite3.OperationalError("disk I/O error")
                )

        return engine


def banner(app) -> str | None:
    return app.screen.query_one(StoreBanner).problem


async def test_a_failing_database_shows_stale_figures_and_recovery_clears_the_banner(
    seeded_sqlite,
):
    faults = Faults()
    store = Store(seeded_sqlite.url, faults.opener)
    app = app_on(seeded_sqlite, store=store, refresh_s=0.3)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        table = app.screen.query_one(OperationTable)
        calls = table.cell_text("calls", Operation.PLACE_ORDER)
        assert banner(app) is None
        faults.failing.set()
        await until(pilot, lambda: banner(app), what="the banner")
        text = banner(app)
        assert text.startswith("DATABASE UNAVAILABLE: cannot open the database sqlite:///")
        assert "disk I/O error" in text
        assert "showing figures from" in text and "retrying every 0.3 s" in text
        assert app.screen.query_one(StoreBanner).display
        assert table.cell_text("calls", Operation.PLACE_ORDER) == calls  # the last figures stay
        faults.failing.clear()
        await until(pilot, lambda: banner(app) is None, what="recovery")
        assert not app.screen.query_one(StoreBanner).display
        assert table.cell_text("calls", Operation.PLACE_ORDER) == calls


async def test_a_stalled_database_shows_its_age_and_the_interface_keeps_answering(seeded_sqlite):
    faults = Faults()
    store = Store(seeded_sqlite.url, faults.opener)
    app = app_on(seeded_sqlite, store=store, refresh_s=0.2, stale_after_s=0.5, clock=time.time_ns)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        faults.answering.clear()  # every statement now hangs until the test says otherwise
        await until(pilot, lambda: banner(app), what="the banner")
        assert banner(app).startswith("DATABASE NOT ANSWERING for ")
        assert "still waiting" in banner(app)
        refreshes = app.refreshes
        await pilot.press("2")  # the interface answers while a refresh hangs
        await until(pilot, lambda: isinstance(app.screen, GateScreen), what="the gate screen")
        # No refresh can have ended (each statement hangs): the screen changed while it hung.
        assert not faults.answering.is_set() and app.refreshes == refreshes
        first = banner(app)
        await until(pilot, lambda: banner(app) != first, what="the age to grow")
        assert banner(app).startswith("DATABASE NOT ANSWERING for ")
        faults.answering.set()
        await until(pilot, lambda: banner(app) is None, timeout=60, what="recovery")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_password_never_reaches_the_screen():
    url = f"postgresql+psycopg://harness:s3cr3t-pw@127.0.0.1:{_free_port()}/harness"
    from harness.config import compose

    cfg = compose([f"db.url={url}"])
    app = make_app(cfg, store=Store(url, partial(open_store, read_timeout_s=1.0)))
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: banner(app), what="the banner")
        await pilot.pause()
        assert "harness:***@127.0.0.1" in banner(app)
        assert app.screen.query_one(StatusBar).where.startswith("postgresql+psycopg://harness:***@")
        screen = app.export_screenshot()
        shown = banner(app)
    assert "s3cr3t" not in screen and "s3cr3t" not in shown
    assert "harness:***@" in screen.replace("&#160;", " ")


@pytest.fixture
def own_cluster():
    """A PostgreSQL cluster of this test's own (the shared one must stay up)."""
    folder = Path(tempfile.mkdtemp(prefix="harness-tui-pg-"))
    folder.chmod(0o755)
    try:
        url = pgcluster.start(folder)
    except pgcluster.ClusterError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"no PostgreSQL for the outage test: {exc}")
    try:
        yield folder, url
    finally:
        try:
            pgcluster.stop(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


async def test_postgresql_going_away_and_coming_back(own_cluster, tmp_path, pinned_now):
    folder, url = own_cluster
    fresh = open_engine(url)
    upgrade(fresh)
    fresh.dispose()
    seeded = seed_rollout(url, tmp_path, pinned_now)
    seeded.engine.dispose()
    app = app_on(seeded, refresh_s=0.3)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        table = app.screen.query_one(OperationTable)
        calls = table.cell_text("calls", Operation.PLACE_ORDER)
        pgcluster.stop(folder)
        await until(pilot, lambda: banner(app), what="the banner")
        assert banner(app).startswith("DATABASE UNAVAILABLE: cannot open the database postgresql")
        assert table.cell_text("calls", Operation.PLACE_ORDER) == calls
        pgcluster.start(folder)  # the same port
        await until(pilot, lambda: banner(app) is None, timeout=60, what="recovery")
        refreshed = app.refreshes
        await until(pilot, lambda: app.refreshes > refreshed, what="a refresh after recovery")
        assert table.cell_text("calls", Operation.PLACE_ORDER) == calls
