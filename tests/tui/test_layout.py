"""The frame of every screen at the sizes people use (80x24 up to 200x50): the stage ladder
never cuts the verdict, the status line fits by shortening what matters least, and the keys'
footer packs tighter on a narrow terminal."""

from __future__ import annotations

import pytest
from storekit import seed_rollout
from textual.widgets import Footer

from harness.tui.widgets.stage_ladder import StageLadder, fit_ladder
from harness.tui.widgets.status_bar import StatusBar, short_where

from .conftest import app_on, loaded

pytestmark = pytest.mark.timeout(180)

LADDER = ["off", "shadow", "canary", "staging", "staging_50", "production"]


def test_the_whole_ladder_is_shown_when_it_fits():
    assert fit_ladder(LADDER, 3, 59) == (0, 5)


def test_a_narrow_ladder_keeps_the_stages_next_to_the_current_one():
    assert fit_ladder(LADDER, 3, 58) == (1, 5)  # `… > shadow > canary > [staging] > ...`
    assert fit_ladder(LADDER, 3, 40) == (2, 4)
    assert fit_ladder(LADDER, 0, 30) == (0, 2)
    assert fit_ladder(LADDER, 5, 30) == (4, 5)
    assert fit_ladder(LADDER, 3, 5) == (3, 3)  # the current stage always


@pytest.mark.parametrize(
    ("url", "short"),
    [
        ("sqlite:///harness.db", "harness.db"),
        ("sqlite:////var/lib/harness/h.db", "/var/lib/harness/h.db"),
        (
            "postgresql+psycopg://ops:***@db.internal:5432/harness?sslmode=require",
            "db.internal:5432/harness",
        ),
    ],
)
def test_a_narrow_status_line_names_the_database_by_its_place(url, short):
    assert short_where(url) == short


@pytest.fixture
def undecided(sqlite_url, tmp_path, pinned_now, monkeypatch):
    """A rollout whose gate says INCONCLUSIVE (the verdict's longest word), in ./harness.db."""
    monkeypatch.chdir(tmp_path)
    data = seed_rollout(sqlite_url, tmp_path, pinned_now, mismatches=0)
    data.url = "sqlite:///harness.db"
    yield data
    data.engine.dispose()


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (200, 50)])
async def test_the_verdict_and_the_status_line_are_never_cut(undecided, size):
    app = app_on(undecided)
    async with app.run_test(size=size) as pilot:
        await loaded(pilot, app)
        ladder = app.screen.query_one(StageLadder)
        line = str(ladder.render())
        status = str(app.screen.query_one(StatusBar).render())
        room = ladder.content_size.width
        footer = app.screen.query_one(Footer)
    assert line.endswith("gate INCONCLUSIVE") and len(line) <= room, (size, line)
    assert "[staging]" not in line and " staging " in line  # the current stage, marked
    assert len(status) <= room and status.endswith("harness.db"), (size, status)
    assert footer.compact == (size[0] < 100)
