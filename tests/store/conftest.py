"""Fixtures of the store suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from harness.store.db import open_engine, upgrade
from harness.store.runs import start_run


@pytest.fixture
def store(db_url: str) -> Iterator[tuple[Engine, str]]:
    """An engine on a fresh database of each backend, migrated, with one run row: (engine, id)."""
    engine = open_engine(db_url)
    upgrade(engine)
    run_id = start_run(engine, kind="test", config={}, native_available=True)
    yield engine, run_id
    engine.dispose()
