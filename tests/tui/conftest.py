"""Fixtures of the dashboard tests: a store seeded with a canary rollout through the real
recorder, the app built by `make_app` on it with a pinned clock, and helpers to wait on it.

Every test drives the real app (`App.run_test`) against a real database (SQLite and, where
the test says `store_url`, PostgreSQL); nothing of the store, the gate or the actions is
replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import storekit
from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widgets import Input

from harness.config import HarnessConfig, compose
from harness.operations import Operation
from harness.store.db import open_store
from harness.tui.app import HarnessApp, make_app

MINUTE_NS = 60 * storekit.SECOND_NS

TRAFFIC = (
    storekit.Traffic(
        Operation.PLACE_ORDER,
        600,
        rust_share=0.25,
        rust_error_rate=0.02,
        python_error_rate=0.01,
        fallback_rate=0.02,
        rust_median_us=300.0,
        python_median_us=2_400.0,
    ),
    storekit.Traffic(
        Operation.MODIFY_ORDER, 300, rust_share=0.25, rust_median_us=280.0, python_median_us=2_300.0
    ),
    storekit.Traffic(
        Operation.CANCEL_ORDER, 250, rust_share=0.25, rust_median_us=250.0, python_median_us=2_100.0
    ),
    storekit.Traffic(
        Operation.AGGREGATE_BARS,
        900,
        rust_share=0.25,
        rust_median_us=40.0,
        python_median_us=9_000.0,
    ),
)
"""A staging rollout's traffic: a quarter to Rust, some place_order errors and fallbacks."""


@dataclass
class Seeded:
    """A seeded store: its URL, an engine on it, the run written, the pinned now."""

    url: str
    engine: Engine
    run_id: str
    now_ns: int
    stage: str

    def config(self, *overrides: str) -> HarnessConfig:
        """The harness config on this store."""
        return compose([f"db.url={self.url}", *overrides])


def seed_rollout(
    url: str, tmp_path: Path, now_ns: int, *, stage: str = "staging", mismatches: int = 1
) -> Seeded:
    """`stage` entered 20 minutes before `now_ns`, 2,050 outcomes of `TRAFFIC` since, 18
    aggregation shadow comparisons (the last `mismatches` of them differing at a bar)."""
    engine = open_store(url)
    since = now_ns - 20 * MINUTE_NS
    storekit.set_stage(engine, stage, since)
    run_id = storekit.new_run(engine, since - 5 * MINUTE_NS)
    rows = storekit.outcomes(run_id, stage, since, now_ns - 5 * storekit.SECOND_NS, TRAFFIC)
    shadows = storekit.shadows(
        run_id, stage, [now_ns - i * MINUTE_NS for i in range(18, 0, -1)], mismatches=mismatches
    )
    storekit.record(engine, tmp_path / "spill", rows, shadows, now_ns=now_ns)
    return Seeded(url, engine, run_id, now_ns, stage)


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
