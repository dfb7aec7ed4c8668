"""Fixtures of the simulator conformance suite: a live simulator on loopback and a caller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simkit import Api

from harness.sim import SimSettings, Simulator


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    """One simulator for the session (reset before each test by `api`)."""
    with Simulator(SimSettings(rate_limit=False)) as running:
        yield running


@pytest.fixture
def api(sim: Simulator) -> Iterator[Api]:
    """A logged-in caller against a freshly reset simulator."""
    sim.reset()
    caller = Api(sim)
    assert caller.login()["success"]
    yield caller
    caller.close()
