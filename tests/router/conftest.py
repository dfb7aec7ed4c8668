"""Fixtures of the router suite: one simulator over real HTTP, harnesses on real databases.

Every harness here talks to the session's simulator as the "real gateway" (`broker=projectx`
with the simulator's URL and credentials), so tests can inject faults and read the ledger; the
ledger is the judge after every test: no customTag may appear twice. Databases are SQLite
files (and PostgreSQL where a test takes `store_url`), fresh and migrated per test.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from enum import Enum
from typing import Any

import pytest

import harness
from harness.config import BrokerKind, HarnessConfig, ShadowMechanism, compose
from harness.sim import SimSettings, Simulator

from .kit import SECRET_KEY, SIM_USER

OpenHarness = Callable[..., harness.Harness]


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    """One simulator for the suite (reset before each test), no rate limits."""
    with Simulator(SimSettings(rate_limit=False, username=SIM_USER, api_key=SECRET_KEY)) as s:
        yield s


@pytest.fixture(autouse=True)
def clean_sim(sim: Simulator) -> Iterator[Simulator]:
    """The simulator, reset; afterwards no customTag may appear twice in its ledger."""
    sim.reset()
    yield sim
    tags = Counter(o["customTag"] for o in sim.ledger() if o["customTag"] is not None)
    twice = {tag: n for tag, n in tags.items() if n > 1}
    assert not twice, f"orders placed twice: {twice}"


@pytest.fixture(autouse=True)
def _no_env_kill(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without the environment's kill switch or native override."""
    monkeypatch.delenv("TOPSTEPX_USE_RUST", raising=False)
    monkeypatch.delenv("HARNESS_NO_NATIVE", raising=False)


@pytest.fixture(scope="session")
def base_config() -> HarnessConfig:
    """The shipped config, composed once (Hydra is slow); tests copy and change it."""
    return compose([], environ={})


def make_config(
    base: HarnessConfig,
    url: str,
    sim_url: str,
    *,
    stage: str = "production",
    **changes: Any,
) -> HarnessConfig:
    """A copy of `base` on database `url` and the simulator at `sim_url`, starting at `stage`.

    `changes` set dotted keys with `__` for dots: `rollout__breaker__failures=3`.
    """
    cfg = copy.deepcopy(base)
    cfg.db.url = url
    cfg.broker.kind = BrokerKind.projectx
    cfg.broker.base_url = sim_url
    cfg.broker.username = SIM_USER
    cfg.broker.api_key = SECRET_KEY
    cfg.broker.timeout_s = 2.0
    cfg.broker.connect_timeout_s = 1.0
    cfg.broker.retry_delays_s = [0.01, 0.02, 0.04]
    cfg.rollout.start_stage = stage
    cfg.rollout.refresh_s = 0.1
    cfg.rollout.shadow.mechanism = ShadowMechanism.thread
    cfg.db.recorder.flush_interval_s = 0.05
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node: Any = cfg
        for part in path:
            node = getattr(node, part)
        current = getattr(node, last)
        setattr(node, last, type(current)(value) if isinstance(current, Enum) else value)
    return cfg


@pytest.fixture
async def open_harness(
    base_config: HarnessConfig, sqlite_url: str, sim: Simulator
) -> AsyncIterator[OpenHarness]:
    """`open_harness(stage=..., url=..., **changes)`: an open harness, closed after the test
    (on the test's event loop)."""
    opened: list[harness.Harness] = []

    def make(
        *, url: str | None = None, stage: str = "production", **changes: Any
    ) -> harness.Harness:
        cfg = make_config(base_config, url or sqlite_url, sim.url, stage=stage, **changes)
        h = harness.open(config=cfg)
        opened.append(h)
        return h

    yield make
    for h in opened:
        await h.aclose()
