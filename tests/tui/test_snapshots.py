"""Snapshots (pytest-textual-snapshot) hold the layout at 80x24, 100x30, 120x40 and 200x50: the
overview (its verdict INCONCLUSIVE, the longest, uncut at 80x24; the charts with their titles),
the gate, the alarms (at 80x24 the charts become sparklines), the stage left after a rollback
(`w`), and the light theme.

The clock is pinned (`storekit.NOW_NS`), the data seeded with a fixed seed and the database
named relatively (`sqlite:///harness.db`, from the test's folder), so every run draws the same
screen. `pytest tests/tui/test_snapshots.py --snapshot-update` rewrites them after a change
to the layout that a person has looked at.
"""

from __future__ import annotations

import pytest
import storekit
from storekit import seed_history, seed_rollout
from textual.pilot import Pilot

from harness.operations import Operation
from harness.store.state import set_kill, trip_breaker
from harness.tui.app import LIGHT, HarnessApp

from .conftest import app_on, loaded

pytestmark = pytest.mark.timeout(180)

SIZES = [(80, 24), (100, 30), (120, 40), (200, 50)]


def _relative(data):
    data.url = "sqlite:///harness.db"
    return data


@pytest.fixture
def demo(sqlite_url, tmp_path, monkeypatch):
    """The staging rollout at the pinned clock, in ./harness.db of the test's folder (one
    shadow mismatch: the gate FAILs)."""
    monkeypatch.chdir(tmp_path)
    data = _relative(seed_rollout(sqlite_url, tmp_path, storekit.NOW_NS))
    yield data
    data.engine.dispose()


@pytest.fixture
def undecided(sqlite_url, tmp_path, monkeypatch):
    """The same rollout without the mismatch: the gate says INCONCLUSIVE, its longest word."""
    monkeypatch.chdir(tmp_path)
    data = _relative(seed_rollout(sqlite_url, tmp_path, storekit.NOW_NS, mismatches=0))
    yield data
    data.engine.dispose()


@pytest.fixture
def rolled_back(sqlite_url, tmp_path, monkeypatch):
    """Staging for 17 minutes, rolled back to canary 3 minutes ago (events at pinned times), no
    call at canary since."""
    monkeypatch.chdir(tmp_path)
    history = [("start", "canary", 40), ("promote", "staging", 20), ("rollback", "canary", 3)]
    data = _relative(seed_history(sqlite_url, tmp_path, storekit.NOW_NS, history, quiet_last=True))
    yield data
    data.engine.dispose()


def settled(*keys: str):
    """A `run_before` that waits for the first refresh, presses `keys`, waits for two more
    refreshes (the first may have started before the keys), and lets the screen settle."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, HarnessApp)
        await loaded(pilot, app)
        for key in keys:
            await pilot.press(key)
        if keys:
            await loaded(pilot, app, at_least=app.refreshes + 2)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_overview(snap_compare, undecided, size):
    assert snap_compare(app_on(undecided), terminal_size=size, run_before=settled())


def test_gate_at_80x24(snap_compare, demo):
    assert snap_compare(app_on(demo), terminal_size=(80, 24), run_before=settled("2"))


def test_an_open_breaker_at_80x24_turns_the_charts_into_sparklines(snap_compare, demo):
    trip_breaker(demo.engine, Operation.PLACE_ORDER.value, failures=5, reason="5 Rust failures")
    assert snap_compare(app_on(demo), terminal_size=(80, 24), run_before=settled())


def test_a_killed_rollout_with_an_open_breaker_at_80x24(snap_compare, demo):
    set_kill(demo.engine, True, who="ops", reason="broker incident")
    trip_breaker(demo.engine, Operation.PLACE_ORDER.value, failures=5, reason="5 Rust failures")
    assert snap_compare(app_on(demo), terminal_size=(80, 24), run_before=settled())


@pytest.mark.parametrize("keys", [(), ("w",)], ids=["current", "previous"])
def test_after_a_rollback_at_80x24(snap_compare, rolled_back, keys):
    app = app_on(rolled_back)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(*keys))


def test_the_light_theme_at_120x40(snap_compare, demo):
    app = app_on(demo)
    app.theme = LIGHT
    assert snap_compare(app, terminal_size=(120, 40), run_before=settled())
