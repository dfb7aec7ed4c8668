"""Fixtures of the simulator conformance suite: a live simulator on loopback and a caller."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from simkit import Api

from harness.sim import SimSettings, Simulator


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    """One simulator for the session (reset before each test by `api`)."""
    with Simulator(SimSettings(rate_limit=False)) as running:
        yield running


@pytest.fixture(scope="session")
def http(sim: Simulator) -> Iterator[httpx.Client]:
    """One keep-alive HTTP client for the session (building one per test costs ~0.1 s)."""
    with httpx.Client(base_url=sim.url, timeout=10.0) as client:
        yield client


@pytest.fixture
def api(sim: Simulator, http: httpx.Client) -> Iterator[Api]:
    """A logged-in caller against a freshly reset simulator."""
    sim.reset()
    caller = Api(sim, http)
    assert caller.login()["success"]
    yield caller
    caller.close()
