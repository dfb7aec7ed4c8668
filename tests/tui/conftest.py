"""Fixtures of the dashboard tests: a store seeded with a canary rollout through the real
recorder, the app built by `make_app` on it with a pinned clock, and helpers to wait on it.

Every test drives the real app (`App.run_test`) against a real database (SQLite and, where
the test says `store_url`, PostgreSQL); nothing of the store, the gate or the actions is
replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import storekit
from storekit import Seeded, seed_rollout
from textual.pilot import Pilot
from textual.widgets import Input

from harness.tui.app import HarnessApp, make_app


@pytest.fixture(autouse=True)
def _steady_cursors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A focused input's cursor does not blink (a snapshot would depend on the moment)."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda _self: None)


@pytest.fixture
def pinned_now() -> int:
    """The wall clock at the start of the test, to the whole second (so ISO times given to
    the CLI are exact): the dashboard's pinned clock."""
    return time.time_ns() // storekit.SECOND_NS * storekit.SECOND_NS


@pytest.fixture
def seeded(store_url: str, tmp_path: Path, pinned_now: int) -> Seeded:
    """The staging rollout in a fresh store, on SQLite and on PostgreSQL."""
    data = seed_rollout(store_url, tmp_path, pinned_now)
    yield data
    data.engine.dispose()


@pytest.fixture
def seeded_sqlite(sqlite_url: str, tmp_path: Path, pinned_now: int) -> Seeded:
    """The staging rollout on SQLite only."""
    data = seed_rollout(sqlite_url, tmp_path, pinned_now)
    yield data
    data.engine.dispose()


def app_on(data: Seeded, *overrides: str, **options: object) -> HarnessApp:
    """The dashboard on a seeded store, its clock pinned to the seed's now."""
    options.setdefault("clock", lambda: data.now_ns)
    return make_app(data.config(*overrides), **options)  # type: ignore[arg-type]


async def until(
    pilot: Pilot[None], condition: Callable[[], object], timeout: float = 20.0, what: str = ""
) -> None:
    """Let the app run until `condition()` holds (fails after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


async def loaded(pilot: Pilot[None], app: HarnessApp, at_least: int = 1) -> None:
    """Wait until `at_least` refreshes have landed in all, then for the screen to settle."""
    await until(pilot, lambda: app.refreshes >= at_least, what=f"{at_least} refresh(es)")
    await pilot.pause()
