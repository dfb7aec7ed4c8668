"""Actions from the dashboard: promote refused on a failing gate and done on a passing one,
a forced promotion only with a reason, rollback, kill, unkill and a breaker reset, each
written as one event exactly as the CLI writes it (through `harness.control.actions`)."""

from __future__ import annotations

import json
import time

import pytest
import storekit
from sqlalchemy import select
from storekit import MINUTE_NS, Seeded, seed_rollout
from textual.command import CommandList
from textual.css.query import NoMatches
from textual.widgets import DataTable, Input

from harness.cli import main
from harness.control import actions
from harness.operations import Operation
from harness.store.db import open_engine, upgrade
from harness.store.models import RolloutEvent
from harness.store.state import default_who, trip_breaker
from harness.tui.screens.confirm import ActionDialog
from harness.tui.widgets.alert_banner import AlertBanner

from .conftest import app_on, loaded, until


def offered(app, title: str) -> bool:
    """Whether the command palette, open, lists the command `title` (its search runs apart)."""
    try:
        options = app.screen.query_one(CommandList)
    except NoMatches:
        return False
    prompts = (options.get_option_at_index(i).prompt for i in range(options.option_count))
    return any(title in str(prompt) for prompt in prompts)


pytestmark = pytest.mark.timeout(240)


def event_rows(engine, *kinds: str) -> list:
    query = select(RolloutEvent).order_by(RolloutEvent.ts_ns)
    if kinds:
        query = query.where(RolloutEvent.kind.in_(kinds))
    with engine.connect() as conn:
        return conn.execute(query).all()


def notes(app) -> list[tuple[str, str]]:
    return [(n.title, n.message) for n in app._notifications]


def dialog(app) -> ActionDialog | None:
    return app.screen if isinstance(app.screen, ActionDialog) else None


@pytest.fixture
def passing(store_url, tmp_path, pinned_now):
    """Stage `off` entered ten minutes ago, Python traffic only: the gate PASSes (soak)."""
    data = seed_rollout(store_url, tmp_path, pinned_now, stage="off", mismatches=0)
    storekit.set_stage(data.engine, "off", pinned_now - 10 * MINUTE_NS)
    yield data
    data.engine.dispose()


async def test_promote_is_refused_while_the_gate_fails(seeded: Seeded):
    before = event_rows(seeded.engine)
    app = app_on(seeded)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        assert app.snapshot.overview.verdict.result.value == "FAIL"
        await pilot.press("p")
        await until(pilot, lambda: notes(app), what="a notification")
        [(title, text)] = notes(app)
        assert title == "promote refused"
        # Every migration at once (no `s` chosen): refused by the first migration whose gate
        # does not pass, named (bars' FAIL is its own, shown with `s` on bars).
        assert text.startswith("migration orders: the gate says INCONCLUSIVE for stage 'staging'")
        # The dashboard's advice is its keys, not the command line's flags.
        assert text.endswith("(the gate screen, key 2, shows why; P forces it, with a reason)")
        assert "--force" not in text and "harness gate" not in text
        assert dialog(app) is None
    assert event_rows(seeded.engine) == before
    assert app.snapshot.overview.state.stage == "staging"


async def test_promote_on_a_passing_gate_confirms_the_change_and_writes_the_event(passing):
    app = app_on(passing)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        assert app.snapshot.overview.verdict.result.value == "PASS"
        await pilot.press("p")
        await until(pilot, lambda: dialog(app), what="the confirmation")
        shown = dialog(app)
        assert shown.title_text == "Promote: off -> shadow"
        body = shown.body.plain
        assert "place_order             0%      0%" in body
        assert "shadow sampled          0%    100%" in body
        assert "gate now: PASS" in body
        await pilot.press(*"soak done, no errors")
        await pilot.press("enter")
        await until(pilot, lambda: event_rows(passing.engine, "promote"), what="the event")
        await until(pilot, lambda: app.snapshot.overview.state.stage == "shadow", what="refresh")
        assert notes(app) == [("done: event written", "promote: off -> shadow")]
    rows = event_rows(passing.engine, "promote")  # every migration at once: one event each
    assert sorted(row.migration for row in rows) == ["bars", "orders"]
    for row in rows:
        assert (row.from_stage, row.to_stage, row.who, row.reason, row.forced) == (
            "off",
            "shadow",
            default_who(),
            "soak done, no errors",
            False,
        )
        assert json.loads(row.gate)["verdict"] == "PASS"


async def test_a_forced_promotion_needs_a_reason_and_is_recorded_as_forced(seeded_sqlite):
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("P")
        await until(pilot, lambda: dialog(app), what="the confirmation")
        assert dialog(app).title_text == "Force promote: staging -> staging_50"
        assert "FORCED" in dialog(app).body.plain
        await pilot.press("enter")  # no reason given
        await pilot.pause()
        assert dialog(app) is not None
        assert "a reason is required" in str(dialog(app).query_one("#dialog-error").render())
        await pilot.press(*"shadow diff is a known rounding case")
        await pilot.press("enter")
        await until(pilot, lambda: event_rows(seeded_sqlite.engine, "promote"), what="event")
    rows = event_rows(seeded_sqlite.engine, "promote")  # one event per migration moved
    assert sorted(row.migration for row in rows) == ["bars", "orders"]
    for row in rows:
        assert (row.to_stage, row.forced, row.reason) == (
            "staging_50",
            True,
            "shadow diff is a known rounding case",
        )
    verdicts = {row.migration: json.loads(row.gate)["verdict"] for row in rows}
    assert verdicts == {"orders": "INCONCLUSIVE", "bars": "FAIL"}


async def act(pilot, app, key: str, reason: str, engine, kind: str) -> None:
    await pilot.press(key)
    await until(pilot, lambda: dialog(app), what=f"the {kind} confirmation")
    await pilot.press(*reason)
    await pilot.press("enter")
    await until(pilot, lambda: event_rows(engine, kind), what=f"the {kind} event")


def summary(row) -> tuple:
    gate = json.loads(row.gate) if row.gate else {}
    return (
        row.kind,
        row.from_stage,
        row.to_stage,
        row.who,
        row.reason,
        row.forced,
        gate.get("verdict"),
        gate.get("stage"),
        len(gate.get("criteria", [])),
    )


async def test_rollback_kill_and_unkill_write_the_events_the_cli_writes(
    seeded: Seeded, tmp_path, capsys
):
    app = app_on(seeded)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        await act(pilot, app, "b", "p99 regressed", seeded.engine, "rollback")
        await act(pilot, app, "k", "broker incident", seeded.engine, "kill")
        await until(pilot, lambda: app.snapshot.overview.state.kill, what="the kill flag")
        banner = app.screen.query_one(AlertBanner)
        assert banner.display
        assert "KILL SWITCH SET: everything goes to Python (broker incident)" in str(
            banner.render()
        )
        await act(pilot, app, "u", "incident over", seeded.engine, "unkill")
        await until(pilot, lambda: not app.snapshot.overview.state.kill, what="unkill")
        assert not app.screen.query_one(AlertBanner).display
    tui_events = event_rows(seeded.engine, "rollback", "kill", "unkill")

    # The same three by the CLI, on a twin of the store seeded alike (a SQLite file).
    (tmp_path / "twin").mkdir()
    twin_url = f"sqlite:///{tmp_path / 'twin' / 'harness.db'}"
    fresh = open_engine(twin_url)
    upgrade(fresh)
    fresh.dispose()
    twin = seed_rollout(twin_url, tmp_path / "twin", seeded.now_ns)
    for argv in (
        ["rollback", "--reason", "p99 regressed"],
        ["kill", "--reason", "broker incident"],
        ["unkill", "--reason", "incident over"],
    ):
        assert main([*argv, f"db.url={twin.url}"]) == 0
    capsys.readouterr()
    cli_events = event_rows(twin.engine, "rollback", "kill", "unkill")
    twin.engine.dispose()
    assert sorted(summary(r) for r in tui_events) == sorted(summary(r) for r in cli_events)
    # The rollback of every migration writes one event each; the kill is the global flag's.
    assert [r.kind for r in tui_events] == ["rollback", "rollback", "kill", "unkill"]
    assert {r.to_stage for r in tui_events[:2]} == {"canary"}


async def test_an_open_breaker_is_shown_and_reset_from_the_command_palette(seeded_sqlite):
    trip_breaker(
        seeded_sqlite.engine, Operation.PLACE_ORDER.value, failures=5, reason="5 Rust failures"
    )
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        banner = app.screen.query_one(AlertBanner)
        assert "BREAKER OPEN: place_order goes to Python (5 failures: 5 Rust failures)" in str(
            banner.render()
        )
        await pilot.press("ctrl+p")
        await pilot.press(*"reset breaker")
        await until(pilot, lambda: offered(app, "reset breaker place_order"), what="the command")
        await pilot.press("enter")
        await until(pilot, lambda: dialog(app), what="the confirmation")
        assert dialog(app).title_text == "Reset the place_order breaker"
        await pilot.press("enter")
        await until(
            pilot, lambda: event_rows(seeded_sqlite.engine, "breaker_reset"), what="the event"
        )
        await until(pilot, lambda: not banner.display, what="the banner to go")
    [row] = event_rows(seeded_sqlite.engine, "breaker_reset")
    assert (row.op, row.who) == ("place_order", default_who())


async def test_a_confirmation_acts_on_the_stage_it_showed_or_not_at_all(seeded_sqlite):
    engine = seeded_sqlite.engine
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("P")
        await until(pilot, lambda: dialog(app), what="the confirmation")
        assert dialog(app).title_text == "Force promote: staging -> staging_50"
        # Meanwhile another terminal promotes the same step.
        other = seeded_sqlite.config()
        actions.promote(engine, other, force=True, reason="from the CLI", who="bob")
        await pilot.press(*"the shadow diff is known")
        await pilot.press("enter")
        await until(pilot, lambda: notes(app), what="the refusal")
        [(title, text)] = notes(app)
    assert title == "promote refused"
    assert "the stage is now 'staging_50', not 'staging'" in text
    assert "latest event: promote by bob" in text
    assert [(r.from_stage, r.to_stage, r.who) for r in event_rows(engine, "promote")] == [
        ("staging", "staging_50", "bob")
    ] * 2  # bob's, one per migration; never staging_50 -> production, which nobody saw


async def test_a_promotion_confirmed_after_a_kill_is_refused(passing):
    app = app_on(passing)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("p")
        await until(pilot, lambda: dialog(app), what="the confirmation")
        actions.kill(passing.engine, passing.config(), reason="broker incident", who="ops")
        await pilot.press("enter")
        await until(pilot, lambda: notes(app), what="the refusal")
        [(title, text)] = notes(app)
    assert title == "promote refused" and "the kill flag was set" in text
    assert event_rows(passing.engine, "promote") == []


async def test_force_promote_on_a_passing_gate_says_there_is_nothing_to_force(passing):
    app = app_on(passing)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        assert app.snapshot.overview.verdict.result.value == "PASS"
        await pilot.press("P")
        await until(pilot, lambda: notes(app), what="the refusal")
        [(title, text)] = notes(app)
        assert dialog(app) is None
    assert title == "force promote refused"
    assert text == "the gate says PASS for stage 'off': there is nothing to force (p promotes)"
    assert event_rows(passing.engine, "promote") == []


@pytest.mark.parametrize(
    ("field", "typed", "said"),
    [
        ("#reason", "all clear\x1b[2J", "reason holds a control character (\\x1b"),
        ("#who", "w" * 300, "who is 300 characters long, at most 255"),
    ],
)
async def test_the_dialog_holds_typed_text_to_the_rule_of_the_cli(
    seeded_sqlite, field, typed, said
):
    app = app_on(seeded_sqlite)
    before = event_rows(seeded_sqlite.engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("k")
        await until(pilot, lambda: dialog(app), what="the confirmation")
        dialog(app).query_one(field, Input).value = typed  # as a paste would put it
        await pilot.press("enter")
        await pilot.pause()
        assert dialog(app) is not None
        shown = str(dialog(app).query_one("#dialog-error").render())
        assert said in shown and "\x1b" not in shown
    assert event_rows(seeded_sqlite.engine) == before


async def test_after_a_promotion_with_gate_quick_the_dashboard_judges_as_the_cli(passing):
    quick = passing.config("gate=quick")
    actions.promote(passing.engine, quick, reason="off passed", who="ana")  # stores quick
    cli = actions.status(passing.engine, quick)
    app = app_on(passing, clock=time.time_ns)  # the dashboard without gate=quick
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        shown = app.snapshot.overview.verdict
        assert shown.result.value == cli["verdict"]
        assert shown.gate_settings == cli["gate_settings"]["judged_by"]
        assert shown.gate_settings["name"] == "quick"
        assert shown.result.value == "INCONCLUSIVE"  # no shadow comparisons at shadow yet
        await pilot.press("P")
        await until(pilot, lambda: dialog(app), what="the forced promotion's confirmation")
        body = dialog(app).body.plain
        assert "judged by gate settings 'quick'" in body
        assert "canary will be judged by this dashboard's: 'default'" in body


async def test_the_event_log_shows_text_of_older_versions_escaped(seeded_sqlite):
    storekit.event(
        seeded_sqlite.engine,
        "kill",
        seeded_sqlite.now_ns - MINUTE_NS,
        who="\x1b]0;owned\x07mallory",
        reason="\x1b[2Jall clear\nforged line",
    )
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(120, 30)) as pilot:
        await loaded(pilot, app)
        await pilot.press("6")
        await until(
            pilot,
            lambda: app.screen.query_one("#history", DataTable).row_count,
            what="the event log",
        )
        await pilot.pause()
        table = app.screen.query_one("#history", DataTable)
        rows = [[cell.plain for cell in table.get_row_at(i)] for i in range(table.row_count)]
        at = next(i for i, row in enumerate(rows) if "kill" in row)
        table.move_cursor(row=at)
        await pilot.pause()
        cells = rows[at]
        detail = str(app.screen.query_one("#row-detail").render())
    assert "\\x1b]0;owned\\x07mallory" in cells
    assert "\\x1b[2Jall clear\\nforged line" in cells
    assert "by \\x1b]0;owned\\x07mallory" in detail
    assert "\x1b" not in "".join(cells) + detail
