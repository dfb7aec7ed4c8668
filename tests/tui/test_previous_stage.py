"""After a rollback the new stage's window is empty and every figure shows `-`: the overview
says so and `w` shows the figures of the stage just left, over the window it had (what
`harness query rates --stage S --since --until` counts), then the current stage again. On
SQLite and PostgreSQL, with the rollback made by the real action."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from storekit import MINUTE_NS, seed_history

from harness.cli import main
from harness.control import actions
from harness.operations import Impl, Operation
from harness.tui import format as fmt
from harness.tui.widgets.operation_table import OperationTable

from .conftest import app_on, loaded, until

pytestmark = pytest.mark.timeout(180)


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def rolled_back(store_url, tmp_path, pinned_now):
    """Canary, then staging for 20 minutes with traffic, then rolled back by `rollback`."""
    history = [("start", "canary", 40), ("promote", "staging", 20)]
    data = seed_history(store_url, tmp_path, pinned_now, history)
    actions.rollback(data.engine, data.config(), who="ops", reason="p99 too high")
    yield data
    data.engine.dispose()


def window_line(app) -> str:
    line = app.screen.query_one("#window-line")
    return str(line.render()) if line.display else ""


async def test_after_a_rollback_w_shows_the_figures_of_the_stage_just_left(rolled_back, capsys):
    data = rolled_back
    (left_at,) = {  # the rollback of every migration: one event each, at one instant
        e["time"]
        for e in json.loads(_cli(capsys, "query", "events", "--json", f"db.url={data.url}"))
        if e["kind"] == "rollback"
    }
    promoted = data.now_ns - 20 * MINUTE_NS
    window = ["--stage", "staging", "--since", iso(promoted), "--until", left_at]
    rates = json.loads(_cli(capsys, "query", "rates", *window, "--json", f"db.url={data.url}"))
    app = app_on(data, clock=time.time_ns)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        table = app.screen.query_one(OperationTable)
        assert table.window == "current stage"
        assert {table.cell_text("calls", op) for op in Operation} == {"0"}
        assert table.cell_text("errors Rust", Operation.PLACE_ORDER) == "-"
        assert "no calls at canary yet | w: the figures of staging" in window_line(app)

        await pilot.press("w")
        await until(pilot, lambda: table.window == "previous stage", what="the stage left")
        assert window_line(app).startswith("PREVIOUS STAGE staging (20m ")
        assert "by rollback) | w: current" in window_line(app)
        for op in Operation:
            mine = {r["impl"]: r for r in rates if r["op"] == op.value}
            calls = sum(r["calls"] for r in mine.values())
            assert calls > 0
            assert table.cell_text("calls", op) == fmt.count(calls)
            assert table.cell_text("% to Rust (stage)", op) == "25%"  # staging's, not canary's
            rust = mine[Impl.RUST.value]
            assert table.cell_text("errors Rust", op) == fmt.rate(rust["error_rate"])
            assert table.cell_text("fallback rate", op) == fmt.rate(rust["fallback_rate"])

        await pilot.press("w")
        await until(pilot, lambda: table.window == "current stage", what="the current stage")
        assert table.cell_text("calls", Operation.PLACE_ORDER) == "0"
        assert table.cell_text("% to Rust (stage)", Operation.PLACE_ORDER) == "5%"


async def test_w_without_an_earlier_stage_says_so(seeded_sqlite):
    """`seed_rollout` sets the stage without an event that entered it from another."""
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        assert window_line(app) == ""  # the current stage has calls: nothing to say
        table = app.screen.query_one(OperationTable)
        before = table.cell_text("calls", Operation.PLACE_ORDER)
        await pilot.press("w")
        await until(pilot, lambda: "no earlier stage" in window_line(app), what="the line")
        assert table.window == "current stage"
        assert table.cell_text("calls", Operation.PLACE_ORDER) == before


def _cli(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


async def test_w_names_an_automatic_promotion_as_what_left_the_stage(
    sqlite_url, tmp_path, pinned_now
):
    history = [("start", "canary", 40), ("auto_promote", "staging", 20)]
    data = seed_history(sqlite_url, tmp_path, pinned_now, history)
    try:
        app = app_on(data)
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot, app)
            table = app.screen.query_one(OperationTable)
            await pilot.press("w")
            await until(pilot, lambda: table.window == "previous stage", what="the stage left")
            assert window_line(app).startswith("PREVIOUS STAGE canary (20m ")
            assert "by auto_promote) | w: current" in window_line(app)
    finally:
        data.engine.dispose()
