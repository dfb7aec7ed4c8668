"""The dashboard per migration (issue 21): every migration at a glance with its own stage, a
bot's registered operation in the overview and the history, the calls the stage's targets
left out told apart from those hashed to Python, and the actions scoped to the migration
chosen with `s` (a promotion of one moves only it). Real store, real app, on SQLite and
PostgreSQL where the fixture says `store_url`."""

from __future__ import annotations

import pytest
import storekit
from sqlalchemy import select
from storekit import MINUTE_NS, SECOND_NS, Seeded, seed_rollout

from harness.recorder.rows import OutcomeRecord
from harness.store.models import MigrationState, RolloutEvent
from harness.store.state import ensure_state
from harness.tui.screens.confirm import ActionDialog
from harness.tui.widgets.migration_list import MigrationList
from harness.tui.widgets.operation_table import OperationTable

from .conftest import app_on, loaded, until

pytestmark = pytest.mark.timeout(240)


def listed(app) -> dict[str, str]:
    """The migration list's lines by migration name (its first word)."""
    text = app.screen.query_one(MigrationList).render().plain
    lines = [line[2:] for line in text.splitlines()]
    return {line.split()[0]: " ".join(line.split()) for line in lines if line.strip()}


def stages(engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(MigrationState.migration, MigrationState.stage)).all()
    return {r.migration: r.stage for r in rows}


def calls(
    data: Seeded, op: str, migration: str, n: int, *, stage: str, targeted: bool = True
) -> list[OutcomeRecord]:
    """`n` successful calls of `op` routed to Python in the last minutes of the seed."""
    start = data.now_ns - 4 * MINUTE_NS
    return [
        OutcomeRecord(
            start + i * SECOND_NS,
            data.run_id,
            op,
            stage,
            "python",
            "python",
            False,
            None,
            True,
            None,
            None,
            1_500.0,
            1,
            None,
            None,
            None,
            None,
            migration=migration,
            targeted=targeted,
        )
        for i in range(n)
    ]


async def test_two_migrations_are_shown_at_their_own_stages(seeded, tmp_path):
    storekit.set_stage(
        seeded.engine, "production", seeded.now_ns - 30 * MINUTE_NS, migrations=("bars",)
    )
    storekit.set_stage(
        seeded.engine, "canary", seeded.now_ns - 20 * MINUTE_NS, migrations=("orders",)
    )
    app = app_on(seeded)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        shown = listed(app)
        assert shown["orders"].startswith("orders canary 3/6 5% targets all breakers closed")
        assert shown["bars"].startswith("bars production 6/6 100% targets all breakers closed")
        table = app.screen.query_one(OperationTable)
        assert table.cell_text("% to Rust (stage)", "place_order") == "5%"
        assert table.cell_text("% to Rust (stage)", "aggregate_bars") == "100%"


async def test_a_registered_operation_is_shown_and_filtered_on(seeded_sqlite, tmp_path):
    data = seeded_sqlite
    ensure_state(data.engine, "canary", migration="signals")
    storekit.set_stage(data.engine, "canary", data.now_ns - 10 * MINUTE_NS, migrations=("signals",))
    rows = calls(data, "ema", "signals", 30, stage="canary")
    storekit.record(data.engine, tmp_path / "spill2", rows, now_ns=data.now_ns)
    app = app_on(data)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot, app)
        assert listed(app)["signals"].startswith("signals canary 3/6 5% targets all")
        table = app.screen.query_one(OperationTable)
        assert "ema" in table.operations
        assert table.cell_text("calls", "ema") == "30"
        assert table.cell_text("Py hash/not tgt", "ema") == "30/0"
        # Scoped to `signals`: its operation alone, and the errors screen's `o` reaches it.
        while app.migration != "signals":
            await pilot.press("s")
        await until(pilot, lambda: app.snapshot.migration == "signals", what="the scope")
        await pilot.pause()
        assert app.screen.query_one(OperationTable).operations == ["ema"]
        await pilot.press("3", "o")
        line = app.screen.query_one("#filter-line")
        await until(pilot, lambda: "op ema (o)" in str(line.render()), what="the op filter")
        assert "migration signals (s)" in str(line.render())


async def test_calls_not_targeted_are_told_from_calls_hashed_to_python(seeded, tmp_path):
    left_out = calls(seeded, "place_order", "orders", 7, stage=seeded.stage, targeted=False)
    storekit.record(seeded.engine, tmp_path / "spill2", left_out, now_ns=seeded.now_ns)
    app = app_on(seeded)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, app)
        table = app.screen.query_one(OperationTable)
        view = app.snapshot.migrations["orders"].figures.of("place_order")
        assert view.python.not_targeted == 7
        hashed = view.python.calls - 7
        assert hashed > 0  # the rest of Python's calls went by the hash
        assert table.cell_text("Py hash/not tgt", "place_order") == f"{hashed:,}/7"
        assert table.cell_text("Py hash/not tgt", "modify_order").endswith("/0")


@pytest.fixture
def passing(store_url, tmp_path, pinned_now):
    """Both migrations at `off` for ten minutes, Python traffic only: each gate PASSes."""
    data = seed_rollout(store_url, tmp_path, pinned_now, stage="off", mismatches=0)
    storekit.set_stage(data.engine, "off", pinned_now - 10 * MINUTE_NS)
    yield data
    data.engine.dispose()


async def test_promoting_one_migration_from_the_dashboard_moves_only_it(passing):
    app = app_on(passing)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("s", "s")  # all -> orders -> bars
        await until(pilot, lambda: app.snapshot.migration == "bars", what="the scope bars")
        assert app.snapshot.overview.verdict.result.value == "PASS"
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ActionDialog), what="the dialog")
        shown = app.screen
        assert shown.title_text == "Promote bars: off -> shadow"
        body = shown.body.plain
        assert "aggregate_bars          0%      0%" in body
        assert "place_order" not in body
        await pilot.press(*"bars first")
        await pilot.press("enter")
        await until(pilot, lambda: stages(passing.engine)["bars"] == "shadow", what="the move")
        await until(pilot, lambda: "bars" in listed(app) and "shadow" in listed(app)["bars"])
    assert stages(passing.engine) == {"orders": "off", "bars": "shadow"}
    with passing.engine.connect() as conn:
        [event] = conn.execute(select(RolloutEvent).where(RolloutEvent.kind == "promote")).all()
    assert (event.migration, event.from_stage, event.to_stage, event.reason) == (
        "bars",
        "off",
        "shadow",
        "bars first",
    )
