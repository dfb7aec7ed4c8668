"""The drill-downs list what `harness query errors|fallbacks|shadow|events|runs` list, with
their filters, and write the selected row out in full (an error's whole message, a
mismatch's differing bar, an event's reason and verdict)."""

from __future__ import annotations

import time

import pytest
import storekit
from textual.widgets import DataTable, Static

from harness.operations import Impl, Operation
from harness.store import queries
from harness.tui.screens.history import LIMIT, HistoryScreen, cell, shown

from .conftest import app_on, loaded, until

pytestmark = pytest.mark.timeout(180)


def table_rows(screen: HistoryScreen) -> list[list[str]]:
    table = screen.query_one("#history", DataTable)
    return [
        [table.get_cell_at((i, j)).plain for j in range(len(screen.COLUMNS))]
        for i in range(table.row_count)
    ]


def expected(screen: HistoryScreen, rows) -> list[list[str]]:
    return [[shown(key, row.get(key)) for key, _ in screen.COLUMNS] for row in rows]


def detail(screen: HistoryScreen) -> str:
    return str(screen.query_one("#row-detail", Static).render())


async def open_screen(pilot, app, key: str) -> HistoryScreen:
    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="the screen")
    screen = app.screen
    await until(pilot, lambda: screen.query_one("#history", DataTable).row_count, what="rows")
    await pilot.pause()
    return screen


async def test_errors_filter_by_operation_and_side_and_show_the_full_message(seeded):
    app = app_on(seeded)
    engine = seeded.engine
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        screen = await open_screen(pilot, app, "3")
        want = queries.errors(engine, queries.Filters(), LIMIT)
        assert table_rows(screen) == expected(screen, want)
        newest = want[0]
        assert newest["error_message"] in detail(screen).replace("\n", " ")
        assert "longer than a table cell can show" in detail(screen)
        await pilot.press("o")  # place_order
        await pilot.press("i")  # rust
        filters = queries.Filters(op=Operation.PLACE_ORDER, impl=Impl.RUST)
        want = queries.errors(engine, filters, LIMIT)
        assert want and len(want) < len(queries.errors(engine, queries.Filters(), LIMIT))
        await until(pilot, lambda: table_rows(screen) == expected(screen, want), what="filter")
        assert "op place_order (o)" in str(screen.query_one("#filter-line", Static).render())
        await pilot.press("down")
        await pilot.pause()
        assert want[1]["time"] in detail(screen)


async def test_fallbacks_show_their_reasons(seeded_sqlite):
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        screen = await open_screen(pilot, app, "4")
        want = queries.fallbacks(seeded_sqlite.engine, queries.Filters(), LIMIT)
        assert table_rows(screen) == expected(screen, want)
        assert "fell back because: BrokerUnavailableError: connection reset" in detail(screen)


async def test_shadow_mismatches_show_the_differing_bar(seeded_sqlite):
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        screen = await open_screen(pilot, app, "5")
        assert len(table_rows(screen)) == 1
        assert (
            "first difference: 5m bar #12, field close: python (primary) 21034.25 vs "
            "rust (shadow) 21034.5" in detail(screen)
        )
        await pilot.press("m")  # every comparison
        await until(pilot, lambda: len(table_rows(screen)) == 18, what="every comparison")


async def test_the_event_log_and_the_runs(seeded_sqlite):
    storekit.event(
        seeded_sqlite.engine,
        "promote",
        time.time_ns(),  # the newest event
        from_stage="canary",
        to_stage="staging",
        reason="canary clean for a day",
        gate={"verdict": "PASS", "criteria": []},
    )
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        screen = await open_screen(pilot, app, "6")
        want = queries.events(seeded_sqlite.engine, queries.Filters(), LIMIT)
        assert table_rows(screen) == expected(screen, want)
        assert "reason: canary clean for a day" in detail(screen)
        assert "gate then: PASS" in detail(screen)
        screen = await open_screen(pilot, app, "7")
        [run] = queries.runs(seeded_sqlite.engine, queries.Filters(), LIMIT)
        assert table_rows(screen)[0][0] == run["run"][:12]
        assert f"run {run['run']} (test, running)" in detail(screen)
        assert f", build {cell(run['build_id'])};" in detail(screen)  # the evidence's build


async def test_the_event_log_shows_an_automatic_promotion_with_its_verdict(seeded_sqlite):
    storekit.event(
        seeded_sqlite.engine,
        "auto_promote",
        time.time_ns(),  # the newest event
        from_stage="canary",
        to_stage="staging",
        reason="the gate PASSed stage 'canary' after 600 s: automatic promotion",
        gate={"verdict": "PASS", "criteria": []},
    )
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        screen = await open_screen(pilot, app, "6")
        want = queries.events(seeded_sqlite.engine, queries.Filters(), LIMIT)
        assert want[0]["kind"] == "auto_promote"
        assert table_rows(screen) == expected(screen, want)
        assert "auto_promote" in table_rows(screen)[0]
        assert "automatic promotion" in detail(screen)
        assert "gate then: PASS" in detail(screen)
