"""Fault profiles: 5xx bursts, lost answers, time-outs, 429 storms, nothing listening.

Reads are retried; mutations whose outcome is unknown are reconciled by customTag (place) or by
reading the order (modify, cancel), never repeated blindly. The ledger judges duplicates after
every test (see conftest).
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import datetime

import pytest
from orderkit import ACCOUNT, MNQ, orders_tagged, requests, with_settings

from harness import projectx as px
from harness.errors import (
    AuthError,
    BrokerUnavailableError,
    OrderRejectedError,
    RateLimitedError,
)
from harness.orders import open_client
from harness.orders.reconcile import RECONCILE_CLOCK_ALLOWANCE_S
from harness.projectx import OrderStatus
from harness.sim import FaultRule
from harness.sim.gateway import ROUTES

PLACE = "/api/Order/place"
ACCOUNTS = "/api/Account/search"


# A time-out a normal answer never comes near, even on a loaded machine, and a slow answer
# that never beats it: the call times out because of the fault, never because of the load.
TIME_OUT_S = 1.0
SLOW_MS = 15_000


def rule(path: str, kind: str, count: int | None = 1, **extra) -> FaultRule:
    return FaultRule(path=path, kind=kind, count=count, **extra)


# ----- reads -------------------------------------------------------------------------------


async def test_5xx_burst_on_a_read_is_retried(client, clean_sim):
    clean_sim.set_faults([rule(ACCOUNTS, "error_before", count=2)])
    accounts = await client.accounts()
    assert len(accounts) == 2
    assert requests(clean_sim, ACCOUNTS) == 3


async def test_endless_5xx_on_a_read_exhausts_the_schedule(client, clean_sim):
    clean_sim.set_faults([rule(ACCOUNTS, "error_before", count=None, status=502)])
    with pytest.raises(BrokerUnavailableError) as info:
        await client.accounts()
    err = info.value
    assert (err.endpoint, err.http_status, err.attempts, err.maybe_sent) == (ACCOUNTS, 502, 4, True)
    assert requests(clean_sim, ACCOUNTS) == 4


async def test_timed_out_read_is_retried(impl, settings, clean_sim):
    clean_sim.set_faults([rule(ACCOUNTS, "slow", delay_ms=SLOW_MS)])
    async with open_client(with_settings(settings, timeout_s=TIME_OUT_S), impl) as client:
        assert len(await client.accounts()) == 2
    assert requests(clean_sim, ACCOUNTS) == 2


async def test_dropped_connection_on_a_read_is_retried(client, clean_sim):
    clean_sim.set_faults([rule(ACCOUNTS, "drop_before", count=2)])
    assert len(await client.accounts()) == 2
    assert requests(clean_sim, ACCOUNTS) == 3


async def test_5xx_on_login_is_retried(client, clean_sim):
    clean_sim.set_faults([rule("/api/Auth/loginKey", "error_before", count=1)])
    assert len(await client.accounts()) == 2
    assert requests(clean_sim, "/api/Auth/loginKey") == 2


# ----- ambiguous placement -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["error_after", "drop_after"])
async def test_ambiguous_place_is_reconciled_not_duplicated(client, clean_sim, kind):
    clean_sim.set_faults([rule(PLACE, kind)])
    placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag=f"amb-{kind}")
    assert (placed.reconciled, placed.attempts) == (True, 1)
    [row] = orders_tagged(clean_sim, f"amb-{kind}")
    assert row["id"] == placed.order_id
    assert requests(clean_sim, PLACE) == 1


async def test_a_placement_looks_its_tag_up_from_just_before_the_call_not_the_whole_day(
    client, clean_sim, monkeypatch
):
    # The look-up reads `Order/search` from a start time: the call's own beginning (less the
    # clock allowance), not `reconcile_lookback_s` (a day of orders, maybe thousands) ago.
    windows: list[float] = []
    method, authed, handler = ROUTES[px.ORDER_SEARCH]

    def recording(gateway, body, now):
        windows.append(datetime.fromisoformat(body["startTimestamp"]).timestamp())
        return handler(gateway, body, now)

    monkeypatch.setitem(ROUTES, px.ORDER_SEARCH, (method, authed, recording))
    clean_sim.set_faults([rule(PLACE, "error_after")])
    began = time.time()
    placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="amb-window")
    after = time.time()
    assert placed.reconciled
    (start,) = windows
    allowance = RECONCILE_CLOCK_ALLOWANCE_S
    assert began - allowance - 0.001 <= start <= after - allowance + 0.001


async def test_reconciled_placement_is_logged_on_both_sides(client, clean_sim, caplog):
    clean_sim.set_faults([rule(PLACE, "error_after")])
    with caplog.at_level(logging.WARNING, logger="harness.orders"):
        placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="amb-log")
    expected = f"placement reconciled: order {placed.order_id} carries customTag amb-log"
    assert expected in caplog.messages


@pytest.mark.parametrize("kind", ["error_after", "drop_after"])
async def test_every_answer_lost_still_places_exactly_once(client, clean_sim, kind):
    clean_sim.set_faults([rule(PLACE, kind, count=None)])
    placed = await client.place_market_order(ACCOUNT, "MNQ", "sell", 2)
    assert placed.reconciled
    assert len(orders_tagged(clean_sim, placed.custom_tag)) == 1


@pytest.mark.parametrize("kind", ["error_before", "drop_before"])
async def test_unprocessed_place_is_looked_up_then_placed_again_with_the_same_tag(
    client, clean_sim, kind
):
    clean_sim.set_faults([rule(PLACE, kind, count=2)])
    placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="again")
    assert (placed.reconciled, placed.attempts) == (False, 3)
    assert len(orders_tagged(clean_sim, "again")) == 1
    assert requests(clean_sim, "/api/Order/search") == 2


async def test_endless_5xx_on_place_ends_unavailable_maybe_sent(client, clean_sim):
    clean_sim.set_faults([rule(PLACE, "error_before", count=None)])
    with pytest.raises(BrokerUnavailableError) as info:
        await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="never")
    err = info.value
    assert (err.endpoint, err.http_status, err.attempts, err.maybe_sent) == (PLACE, 503, 4, True)
    assert clean_sim.ledger() == []


async def test_timed_out_place_is_reconciled(impl, settings, clean_sim):
    clean_sim.set_faults([rule(PLACE, "slow", delay_ms=SLOW_MS)])
    async with open_client(with_settings(settings, timeout_s=TIME_OUT_S), impl) as client:
        placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="slow")
    assert (placed.reconciled, placed.attempts) == (True, 1)
    assert len(orders_tagged(clean_sim, "slow")) == 1


async def test_lost_answer_then_duplicate_tag_rejection_is_reconciled(client, clean_sim):
    # The first answer is lost, the look-up fails too, so the client places again: the broker
    # then refuses the duplicate tag, and the client finds the order that landed the first time.
    clean_sim.set_faults(
        [rule(PLACE, "error_after"), rule("/api/Order/search", "error_before", count=4)]
    )
    placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="landed")
    assert placed.reconciled and placed.attempts == 2
    [row] = orders_tagged(clean_sim, "landed")
    assert row["id"] == placed.order_id


# ----- ambiguous modify and cancel ----------------------------------------------------------


async def resting_order(client, sim) -> int:
    placed = await client.place_order(
        ACCOUNT, "MNQ", "buy", 1, type=1, limit_price=sim.price(MNQ) - 400.0
    )
    return placed.order_id


@pytest.mark.parametrize("kind", ["error_after", "drop_after", "error_before", "drop_before"])
async def test_ambiguous_cancel_checks_the_order_first(client, clean_sim, kind):
    order_id = await resting_order(client, clean_sim)
    clean_sim.set_faults([rule("/api/Order/cancel", kind)])
    await client.cancel_order(ACCOUNT, order_id)
    assert (await client.get_order(ACCOUNT, order_id)).status == OrderStatus.CANCELLED
    expected = 1 if kind.endswith("after") else 2
    assert requests(clean_sim, "/api/Order/cancel") == expected


@pytest.mark.parametrize("kind", ["error_after", "drop_after", "error_before"])
async def test_ambiguous_modify_checks_the_order_first(client, clean_sim, kind):
    order_id = await resting_order(client, clean_sim)
    clean_sim.set_faults([rule("/api/Order/modify", kind)])
    await client.modify_order(ACCOUNT, order_id, size=4)
    assert (await client.get_order(ACCOUNT, order_id)).size == 4
    expected = 1 if kind.endswith("after") else 2
    assert requests(clean_sim, "/api/Order/modify") == expected


async def test_endless_5xx_on_cancel_ends_unavailable_maybe_sent(client, clean_sim):
    order_id = await resting_order(client, clean_sim)
    clean_sim.set_faults([rule("/api/Order/cancel", "error_before", count=None)])
    with pytest.raises(BrokerUnavailableError) as info:
        await client.cancel_order(ACCOUNT, order_id)
    assert (info.value.attempts, info.value.maybe_sent) == (4, True)


# ----- 429 storms ----------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [None, 0.05])
async def test_429_storm_is_waited_out(client, clean_sim, retry_after):
    clean_sim.set_faults([rule(PLACE, "rate_limit", count=3, retry_after=retry_after)])
    placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="patient")
    assert (placed.reconciled, placed.attempts) == (False, 4)
    assert len(orders_tagged(clean_sim, "patient")) == 1


@pytest.mark.parametrize("retry_after", [None, 0.05, 0])
async def test_endless_429_is_rate_limited_error(client, clean_sim, retry_after):
    clean_sim.set_faults([rule(PLACE, "rate_limit", count=None, retry_after=retry_after)])
    with pytest.raises(RateLimitedError) as info:
        await client.place_market_order(ACCOUNT, "MNQ", "buy", 1)
    err = info.value
    assert (err.endpoint, err.http_status, err.attempts, err.maybe_sent) == (PLACE, 429, 4, False)
    assert err.retry_after == retry_after
    assert clean_sim.ledger() == []


async def test_429_on_reads_is_retried(client, clean_sim):
    clean_sim.set_faults([rule("*", "rate_limit", count=2, retry_after=0.01)])
    assert len(await client.accounts()) == 2


# ----- nothing listening ---------------------------------------------------------------------


async def test_connect_refused_is_unavailable_not_sent(impl, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = with_settings(settings, base_url=f"http://127.0.0.1:{port}")
    async with open_client(dead, impl) as client:
        with pytest.raises(BrokerUnavailableError) as info:
            await client.place_market_order(ACCOUNT, "MNQ", "buy", 1)
    err = info.value
    assert (err.endpoint, err.maybe_sent, err.http_status) == ("/api/Auth/loginKey", False, None)
    assert err.attempts == 1 + len(settings.retry_delays_s)


# ----- a repeat refused after an attempt whose outcome is unknown ---------------------------

SEARCH = "/api/Order/search"


async def test_duplicate_tag_refusal_of_a_repeat_is_never_reported_as_not_sent(client, clean_sim):
    # The first placement is processed but answered 500; every look-up of its tag is refused
    # with 429, so the client places again; the broker refuses the duplicate tag. The order
    # stands, so the error must say it may have been sent.
    clean_sim.set_faults([rule(PLACE, "error_after"), rule(SEARCH, "rate_limit", count=None)])
    with pytest.raises(OrderRejectedError) as info:
        await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="stands")
    err = info.value
    assert (err.error_code, err.attempts, err.maybe_sent) == (2, 2, True)
    assert len(orders_tagged(clean_sim, "stands")) == 1


async def test_duplicate_tag_refusal_of_a_repeat_is_reconciled_once_the_search_answers(
    client, clean_sim
):
    # As above, but the look-ups answer again after the repeat: the order is found and returned.
    clean_sim.set_faults([rule(PLACE, "error_after"), rule(SEARCH, "rate_limit", count=4)])
    placed = await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="found")
    assert (placed.reconciled, placed.attempts) == (True, 2)
    [row] = orders_tagged(clean_sim, "found")
    assert row["id"] == placed.order_id


@pytest.mark.parametrize(
    ("repeat", "error"),
    [
        (rule(PLACE, "rate_limit", count=None), RateLimitedError),
        (rule(PLACE, "expire_token", count=None), AuthError),
    ],
)
async def test_every_failure_after_an_unknown_placement_says_maybe_sent(
    client, clean_sim, repeat, error
):
    clean_sim.set_faults(
        [rule(PLACE, "error_after"), repeat, rule(SEARCH, "rate_limit", count=None)]
    )
    with pytest.raises(error) as info:
        await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="unknown")
    assert info.value.maybe_sent is True
    assert len(orders_tagged(clean_sim, "unknown")) == 1


async def test_refused_repeat_of_an_applied_cancel_says_maybe_sent(client, clean_sim):
    # The cancel is applied but answered 500; the order cannot be read (429), so the cancel is
    # sent again and refused (the order is no longer open): the first one may have applied.
    order_id = await resting_order(client, clean_sim)
    clean_sim.set_faults(
        [
            rule("/api/Order/cancel", "error_after"),
            rule("/api/Order/searchById", "rate_limit", count=None),
        ]
    )
    with pytest.raises(OrderRejectedError) as info:
        await client.cancel_order(ACCOUNT, order_id)
    assert (info.value.error_code, info.value.attempts, info.value.maybe_sent) == (3, 2, True)
    clean_sim.set_faults([])
    assert (await client.get_order(ACCOUNT, order_id)).status == OrderStatus.CANCELLED


async def test_refused_repeat_of_an_applied_modify_says_maybe_sent(client, clean_sim):
    # The modify moves a buy limit through the market (it fills at once) but is answered 500;
    # the order cannot be read, so the modify is sent again and refused (the order is filled).
    order_id = await resting_order(client, clean_sim)
    through = round(clean_sim.price(MNQ) * 4 + 400) / 4
    clean_sim.set_faults(
        [
            rule("/api/Order/modify", "error_after"),
            rule("/api/Order/searchById", "rate_limit", count=None),
        ]
    )
    with pytest.raises(OrderRejectedError) as info:
        await client.modify_order(ACCOUNT, order_id, limit_price=through)
    assert (info.value.error_code, info.value.maybe_sent) == (3, True)
    clean_sim.set_faults([])
    assert (await client.get_order(ACCOUNT, order_id)).status == OrderStatus.FILLED
