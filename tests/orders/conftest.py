"""Fixtures of the order-client conformance suite: one simulator, a client per implementation.

Every test runs once per implementation (`impl` in python, rust) against the embedded simulator
over real HTTP on loopback, with short retry delays. After every test the simulator's ledger is
the judge: no customTag may appear twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
from orderkit import IMPLS, SECRET_KEY

from harness.orders import ClientSettings, OrderClient, open_client
from harness.sim import SimSettings, Simulator


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    """One simulator for the whole suite (reset before each test)."""
    with Simulator(SimSettings(rate_limit=False, api_key=SECRET_KEY)) as running:
        yield running


@pytest.fixture
def clean_sim(sim: Simulator) -> Iterator[Simulator]:
    """The simulator, reset; afterwards no customTag may appear twice in its ledger."""
    sim.reset()
    yield sim
    tags = Counter(o["customTag"] for o in sim.ledger() if o["customTag"] is not None)
    twice = {tag: n for tag, n in tags.items() if n > 1}
    assert not twice, f"orders placed twice: {twice}"


@pytest.fixture(autouse=True)
def _ledger_judge(clean_sim: Simulator) -> None:
    """Makes the duplicate check of `clean_sim` run after every test of the suite."""


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    """The implementation under test."""
    return request.param


@pytest.fixture
def settings(clean_sim: Simulator) -> ClientSettings:
    """Client settings for the simulator: short delays and time-outs keep the suite fast."""
    return ClientSettings(
        base_url=clean_sim.url,
        username="sim-user",
        api_key=SECRET_KEY,
        timeout_s=2.0,
        connect_timeout_s=1.0,
        retry_delays_s=(0.01, 0.02, 0.04),
        max_retry_after_s=0.5,  # Retry-After advice up to 0.5 s is waited in this suite
    )


@pytest.fixture
async def client(impl: str, settings: ClientSettings) -> AsyncIterator[OrderClient]:
    """An open client of the implementation under test."""
    async with open_client(settings, impl) as opened:  # type: ignore[arg-type]
        yield opened
