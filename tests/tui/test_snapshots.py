"""Snapshots (pytest-textual-snapshot) hold the layout at 80x24 and 120x40: the overview, the
gate, the alarms of a killed rollout with an open breaker, and the light theme.

The clock is pinned (`storekit.NOW_NS`), the data seeded with a fixed seed and the database
named relatively (`sqlite:///harness.db`, from the test's folder), so every run draws the same
screen. `pytest tests/tui/test_snapshots.py --snapshot-update` rewrites them after a change
to the layout that a person has looked at.
"""

from __future__ import annotations

import pytest
import storekit
from storekit import seed_rollout
from textual.pilot import Pilot

from harness.operations import Operation
from harness.store.state import set_kill, trip_breaker
from harness.tui.app import LIGHT, HarnessApp

from .conftest import app_on, loaded

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def demo(sqlite_url, tmp_path, monkeypatch):
    """The staging rollout at the pinned clock, in ./harness.db of the test's folder."""
    monkeypatch.chdir(tmp_path)
    data = seed_rollout(sqlite_url, tmp_path, storekit.NOW_NS)
    data.url = "sqlite:///harness.db"
    yield data
    data.engine.dispose()


def settled(*keys: str):
    """A `run_before` that waits for the first refresh, presses `keys`, and settles."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, HarnessApp)
        await loaded(pilot, app)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.2)
        await pilot.pause(0.3)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_overview(snap_compare, demo, size):
    assert snap_compare(app_on(demo), terminal_size=size, run_before=settled())


def test_gate_at_80x24(snap_compare, demo):
    assert snap_compare(app_on(demo), terminal_size=(80, 24), run_before=settled("2"))


def test_a_killed_rollout_with_an_open_breaker_at_80x24(snap_compare, demo):
    set_kill(demo.engine, True, who="ops", reason="broker incident")
    trip_breaker(demo.engine, Operation.PLACE_ORDER.value, failures=5, reason="5 Rust failures")
    assert snap_compare(app_on(demo), terminal_size=(80, 24), run_before=settled())


def test_the_light_theme_at_120x40(snap_compare, demo):
    app = app_on(demo)
    app.theme = LIGHT
    assert snap_compare(app, terminal_size=(120, 40), run_before=settled())
