"""The typed boundary between the checks (Python) and the Rust client.

Arguments are checked once, in Python (`harness.orders.args`), and cross to Rust as ints,
floats, str and None; Rust hands back the very dataclasses of `harness.orders.models` and the
classes of `harness.errors`, with no dict or tuple rebuilt in between.
"""

from __future__ import annotations

import pytest
from orderkit import ACCOUNT, MNQ, requests

from harness import _native
from harness.errors import BrokerError, InvalidInputError
from harness.orders import validation as v
from harness.orders.models import Account, Contract, Order, PlacedOrder

TOO_BIG = 2**63


@pytest.mark.parametrize(
    "brackets",
    [
        {"stop_loss": {"ticks": TOO_BIG, "type": 4}},
        {"take_profit": {"ticks": 8, "type": -(2**63) - 1}},
    ],
)
async def test_a_bracket_beyond_64_bits_is_refused_on_both_sides(client, clean_sim, brackets):
    # Nothing on the wire carries it: the Python client used to send it, the Rust one refused.
    with pytest.raises(InvalidInputError) as caught:
        await client.place_order(ACCOUNT, MNQ, "buy", 1, brackets=brackets)
    assert str(caught.value) == str(InvalidInputError("brackets", brackets, v.BRACKETS))
    assert requests(clean_sim, "/api/Order/place") == 0


async def test_a_bracket_at_the_64_bit_limits_is_sent(client, clean_sim):
    limits = {"stop_loss": {"ticks": 2**63 - 1, "type": -(2**63)}}
    with pytest.raises(Exception) as caught:  # the broker judges it; the client sends it
        await client.place_order(ACCOUNT, MNQ, "buy", 1, brackets=limits)
    assert not isinstance(caught.value, InvalidInputError)
    assert requests(clean_sim, "/api/Order/place") == 1


async def test_results_are_the_model_classes_themselves(client, impl):
    account = (await client.accounts())[0]
    contract = await client.resolve_contract("MNQ")
    placed = await client.place_order(ACCOUNT, MNQ, "buy", 1, type=1, limit_price=1000.0)
    order = await client.get_order(ACCOUNT, placed.order_id)
    found = await client.find_order_by_tag(ACCOUNT, placed.custom_tag)
    for value, cls in (
        (account, Account),
        (contract, Contract),
        (placed, PlacedOrder),
        (order, Order),
        (found, Order),
    ):
        assert type(value) is cls, (impl, value)
    assert order == found
    assert order is not None and order.creation_timestamp is not None
    assert order.creation_timestamp.tzinfo is not None


async def test_the_native_client_takes_typed_values_only(settings):
    native = _native.OrderClient(settings.base_url, settings.username, settings.api_key)
    # A raw caller value is not inspected in Rust: it must come checked (typed) or not at all.
    with pytest.raises(TypeError):
        native.cancel_order(ACCOUNT, "12")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.place_order(ACCOUNT, MNQ, "buy", 1, 2, None, None, None, None, None, None)  # type: ignore[arg-type]
    await native.aclose()


async def test_a_price_too_far_to_count_in_ticks_goes_out_as_given(client, clean_sim):
    # price / tick overflows to infinity: the Python check crashed (OverflowError) and the Rust
    # one called it off the grid; by the rule (2**53 ticks or more: as given) it is sent.
    with pytest.raises(Exception) as caught:
        await client.place_order(ACCOUNT, MNQ, "buy", 1, type=1, limit_price=1e308)
    assert isinstance(caught.value, BrokerError), caught.value  # the broker's to judge
    assert requests(clean_sim, "/api/Order/place") >= 1


async def test_an_off_grid_price_names_a_small_tick_as_python_prints_it(client, clean_sim):
    eu6 = "CON.F.US.EU6.Z26"  # tick 0.00005, printed 5e-05 (Rust's own float text: 5e-5)
    with pytest.raises(InvalidInputError) as caught:
        await client.place_order(ACCOUNT, eu6, "buy", 1, type=1, limit_price=1.00001)
    assert str(caught.value) == "invalid limit_price=1.00001: not on the tick grid of 5e-05"
    assert requests(clean_sim, "/api/Order/place") == 0
