"""Authentication: login, wrong credentials, token refresh by validate, re-login on 401."""

from __future__ import annotations

import asyncio
import logging

import pytest
from orderkit import ACCOUNT, SECRET_KEY, requests, with_settings

from harness.errors import AuthError, BrokerError
from harness.orders import open_client
from harness.sim import FaultRule

LOGIN = "/api/Auth/loginKey"
VALIDATE = "/api/Auth/validate"


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


async def test_validate_refreshes_the_token_before_it_expires(client, clean_sim):
    # A 1 s token is due for refresh after 0.9 s; calls every 50 ms land in that last 100 ms.
    clean_sim.set_faults([], token_ttl_s=1.0)
    await client.accounts()
    for _ in range(60):  # bounded: at most ~3 s
        await asyncio.sleep(0.05)
        await client.accounts()
        if requests(clean_sim, VALIDATE):
            break
    assert requests(clean_sim, VALIDATE) == 1, clean_sim.stats()
    assert requests(clean_sim, LOGIN) == 1
    assert clean_sim.stats()["responses"].get("401", 0) == 0


async def test_expired_token_mid_run_is_replaced_and_calls_keep_working(client, clean_sim):
    clean_sim.set_faults([], token_ttl_s=0.2)
    await client.accounts()
    await asyncio.sleep(0.3)  # past expiry: validate gets 401, so the client logs in again
    placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1)
    assert placed.attempts == 1
    assert requests(clean_sim, LOGIN) == 2


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
