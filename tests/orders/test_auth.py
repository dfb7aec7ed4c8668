"""Authentication: login, wrong credentials, token refresh by validate, re-login on 401."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest
from orderkit import ACCOUNT, SECRET_KEY, requests, with_settings

from harness.errors import AuthError, BrokerError
from harness.orders import open_client
from harness.sim import FaultRule, Simulator

LOGIN = "/api/Auth/loginKey"
VALIDATE = "/api/Auth/validate"


class SimClock:
    """The simulator's clock, standing still at `now` (Unix seconds) until a test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim_clock(clean_sim: Simulator) -> Iterator[SimClock]:
    """Stops the simulator's clock for the test: a token it issued expires when the test moves
    the clock, not when the machine happens to be slow (the client keeps its own clock)."""
    gateway = clean_sim.app.gateway
    real = gateway.clock
    clock = SimClock(time.time())
    clean_sim._call(lambda: setattr(gateway, "clock", clock))
    yield clock
    clean_sim._call(lambda: setattr(gateway, "clock", real))


async def test_one_login_serves_many_calls(client, clean_sim):
    for _ in range(5):
        await client.accounts()
    assert requests(clean_sim, LOGIN) == 1
    assert requests(clean_sim, VALIDATE) == 0


@pytest.mark.parametrize(
    ("username", "api_key", "code"), [("sim-user", "wrong-key", 3), ("nobody", SECRET_KEY, 1)]
)
async def test_wrong_credentials_raise_auth_error(impl, settings, username, api_key, code):
    bad = with_settings(settings, username=username, api_key=api_key)
    async with open_client(bad, impl) as client:
        with pytest.raises(AuthError) as info:
            await client.accounts()
    err = info.value
    assert (err.endpoint, err.error_code, err.http_status) == (LOGIN, code, 200)
    assert (err.maybe_sent, err.attempts) == (False, 1)
    for text in (str(err), repr(err)):
        assert SECRET_KEY not in text and api_key not in text


async def test_key_and_token_never_appear_in_reprs_errors_or_logs(
    impl, settings, clean_sim, caplog
):
    caplog.set_level(logging.DEBUG)
    clean_sim.set_faults([FaultRule(path="/api/Order/place", kind="error_after", count=1)])
    async with open_client(settings, impl) as client:
        await client.place_market_order(ACCOUNT, "MNQ", "buy", 1)
        texts = [repr(client), str(client), repr(settings), str(settings)]
        with pytest.raises(BrokerError) as info:
            await client.cancel_order(ACCOUNT, 999)
        texts += [str(info.value), repr(info.value)]
    tokens = list(clean_sim._call(lambda: list(clean_sim.app.gateway.sessions)))
    assert tokens, "the simulator issued no token"
    texts.append(caplog.text)
    for text in texts:
        assert SECRET_KEY not in text
        for token in tokens:
            assert token not in text and token.split(".")[2] not in text


async def test_validate_refreshes_the_token_before_it_expires(client, clean_sim, sim_clock):
    # A 1 s token is due for refresh after 0.9 s of the client's clock; the simulator's clock
    # stands still, so the token is still valid when the client refreshes it, however long a
    # loaded machine takes to get there (calls every 50 ms until the refresh shows).
    clean_sim.set_faults([], token_ttl_s=1.0)
    await client.accounts()

    deadline = time.monotonic() + 60
    while not requests(clean_sim, VALIDATE):
        assert time.monotonic() < deadline, f"no Auth/validate within 60 s: {clean_sim.stats()}"
        await asyncio.sleep(0.05)
        await client.accounts()
    assert requests(clean_sim, VALIDATE) == 1, clean_sim.stats()
    assert requests(clean_sim, LOGIN) == 1
    assert clean_sim.stats()["responses"].get("401", 0) == 0


async def test_expired_token_mid_run_is_replaced_and_calls_keep_working(
    client, clean_sim, sim_clock
):
    clean_sim.set_faults([], token_ttl_s=0.2)
    await client.accounts()  # the simulator's clock stands still: the token is valid here
    sim_clock.now += 1.0  # the simulator: the token has expired
    # The client's own clock must pass 90% of the lifetime (0.18 s) for it to refresh first:
    # its timer is the behaviour under test; a slower machine only waits longer.
    await asyncio.sleep(0.2)
    placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1)
    assert placed.attempts == 1  # validate got 401, so the client logged in again first
    assert requests(clean_sim, LOGIN) == 2
    assert requests(clean_sim, VALIDATE) == 1


async def test_401_mid_run_logs_in_once_and_repeats_the_call(client, clean_sim):
    await client.accounts()
    clean_sim.set_faults([FaultRule(path="/api/Order/place", kind="expire_token", count=1)])
    placed = await client.place_market_order(ACCOUNT, "MNQ", "sell", 1)
    assert (placed.reconciled, placed.attempts) == (False, 2)
    assert requests(clean_sim, LOGIN) == 2
    assert requests(clean_sim, "/api/Order/place") == 2
    assert len(clean_sim.ledger()) == 1


async def test_second_401_after_a_fresh_login_is_an_auth_error(client, clean_sim):
    await client.accounts()
    clean_sim.set_faults([FaultRule(path="/api/Account/search", kind="expire_token")])
    with pytest.raises(AuthError) as info:
        await client.accounts()
    err = info.value
    assert (err.endpoint, err.http_status, err.attempts, err.maybe_sent) == (
        "/api/Account/search",
        401,
        2,
        False,
    )
    assert requests(clean_sim, LOGIN) == 2
