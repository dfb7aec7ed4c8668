"""`Retry-After` of a 429, whatever the gateway prints: waited when the client would wait that
long (up to `max_retry_after_s`), else the call ends at once with `RateLimitedError(retry_after=
<the advice in seconds>)`; text that is neither delay-seconds nor an HTTP date is ignored (the
backoff schedule applies). Both implementations read every value alike and never panic.
"""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest
from orderkit import ACCOUNT, requests, with_settings

from harness.errors import RateLimitedError
from harness.orders import ClientSettings, open_client
from harness.sim import FaultRule

PLACE = "/api/Order/place"
# A call that ends at once must not come anywhere near this (no sleep of the advice).
PROMPT_S = 10.0


def rate_limited(header: str, path: str = PLACE, count: int | None = None) -> list[FaultRule]:
    """429 on `path` with `Retry-After: <header>` printed exactly as given."""
    return [FaultRule(path=path, kind="rate_limit", count=count, retry_after_text=header)]


def imf_fixdate(unix_s: float) -> str:
    return email.utils.formatdate(unix_s, usegmt=True)  # Sun, 06 Nov 1994 08:49:37 GMT


def rfc850_date(unix_s: float) -> str:
    return time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(unix_s))


def asctime_date(unix_s: float) -> str:
    return time.asctime(time.gmtime(unix_s))  # Sun Nov  6 08:49:37 1994


BEYOND_THE_CAP = [
    ("9999999999", 9999999999.0),
    ("100000000000000000000", 1e20),  # what the simulator prints for 1e20
    ("9" * 400, float("inf")),  # delay-seconds too large for a double
    ("9999999999.5", 9999999999.5),  # fractional (not RFC 9110, but printed by some servers)
    ("  7200  ", 7200.0),
]


@pytest.mark.parametrize(("header", "advice"), BEYOND_THE_CAP)
async def test_a_wait_beyond_the_cap_ends_the_call_at_once(client, clean_sim, header, advice):
    clean_sim.set_faults(rate_limited(header))
    with pytest.raises(RateLimitedError) as info:
        await asyncio.wait_for(client.place_market_order(ACCOUNT, "MNQ", "buy", 1), PROMPT_S)
    err = info.value
    assert (err.endpoint, err.http_status, err.attempts, err.maybe_sent) == (PLACE, 429, 1, False)
    assert err.retry_after == advice
    assert requests(clean_sim, PLACE) == 1
    assert clean_sim.ledger() == []


@pytest.mark.parametrize("form", [imf_fixdate, rfc850_date, asctime_date])
async def test_an_http_date_is_read_as_seconds_from_now(client, clean_sim, form):
    clean_sim.set_faults(rate_limited(form(time.time() + 3600), path="/api/Account/search"))
    with pytest.raises(RateLimitedError) as info:
        await asyncio.wait_for(client.accounts(), PROMPT_S)
    err = info.value
    assert err.attempts == 1
    assert 3590 <= err.retry_after <= 3601


@pytest.mark.parametrize("form", [imf_fixdate, rfc850_date, asctime_date])
async def test_an_http_date_in_the_past_means_retry_now(client, clean_sim, form):
    clean_sim.set_faults(rate_limited(form(time.time() - 60), count=2))
    placed = await asyncio.wait_for(
        client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="past"), PROMPT_S
    )
    assert (placed.attempts, placed.reconciled) == (3, False)


UNREADABLE = [
    "inf",
    "Infinity",
    "nan",
    "-5",
    "+5",
    "1e20",
    "0x10",
    "5 s",
    "soon",
    "",
    "Sun, 31 Nov 2026 08:49:37 GMT",  # no such day
    "Sun, 06 Nov 2026 24:00:00 GMT",  # no such hour
    "sun, 06 nov 2026 08:49:37 gmt",  # HTTP-date names are case-sensitive
    "Sun, 06 Nov 2026 08:49:37 UTC",
]


@pytest.mark.parametrize("header", UNREADABLE)
async def test_an_unreadable_retry_after_falls_back_to_the_schedule(client, clean_sim, header):
    clean_sim.set_faults(rate_limited(header))
    with pytest.raises(RateLimitedError) as info:
        await asyncio.wait_for(client.place_market_order(ACCOUNT, "MNQ", "buy", 1), PROMPT_S)
    err = info.value
    assert (err.attempts, err.retry_after, err.maybe_sent) == (4, None, False)
    assert requests(clean_sim, PLACE) == 4


async def test_advice_within_the_cap_is_waited_and_replaces_the_delay(impl, settings, clean_sim):
    patient = with_settings(settings, retry_delays_s=(5.0,), max_retry_after_s=0.2)
    clean_sim.set_faults(rate_limited("0.05", count=1))
    async with open_client(patient, impl) as client:
        placed = await asyncio.wait_for(
            client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="within"), 2.0
        )
    assert placed.attempts == 2


async def test_a_429_on_login_beyond_the_cap_ends_the_call_at_once(client, clean_sim):
    clean_sim.set_faults(rate_limited("86400", path="/api/Auth/loginKey"))
    with pytest.raises(RateLimitedError) as info:
        await asyncio.wait_for(client.accounts(), PROMPT_S)
    assert (info.value.endpoint, info.value.attempts) == ("/api/Auth/loginKey", 1)
    assert info.value.retry_after == 86400.0


async def test_the_default_cap_is_the_longest_delay_of_the_schedule(impl, settings, clean_sim):
    default = with_settings(settings, retry_delays_s=(0.01, 0.3, 0.02), max_retry_after_s=None)
    assert default.retry_after_cap_s == 0.3
    clean_sim.set_faults(rate_limited("1", path="/api/Account/search", count=1))
    async with open_client(default, impl) as client:
        with pytest.raises(RateLimitedError) as info:
            await asyncio.wait_for(client.accounts(), PROMPT_S)
    assert (info.value.attempts, info.value.retry_after) == (1, 1.0)


def test_settings_refuse_a_cap_that_is_not_a_number_of_seconds():
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="max_retry_after_s"):
            ClientSettings(base_url="http://x", username="u", api_key="k", max_retry_after_s=bad)
    assert ClientSettings(base_url="http://x", username="u", api_key="k").retry_after_cap_s == 3.0
    no_retries = ClientSettings(base_url="http://x", username="u", api_key="k", retry_delays_s=())
    assert no_retries.retry_after_cap_s == 0.0
