"""Accounts, contract resolution (cached), order look-ups: the reads both clients share."""

from __future__ import annotations

import pytest
from orderkit import ACCOUNT, MNQ, requests

from harness.errors import InvalidInputError
from harness.orders import Account, Contract


async def test_accounts_lists_the_tradable_accounts(client, clean_sim):
    accounts = await client.accounts()
    assert [a.id for a in accounts] == [1001, 1002]
    first = accounts[0]
    assert first == Account(1001, "SIM-1001", 50000.0, True, True, True)
    assert requests(clean_sim, "/api/Auth/loginKey") == 1


async def test_contract_resolves_by_symbol_and_is_cached(client, clean_sim):
    contract = await client.resolve_contract("MNQ")
    assert contract == Contract(MNQ, "MNQZ6", contract.description, 0.25, 0.5, True, "F.US.MNQ")
    again = await client.resolve_contract("MNQ")
    by_id = await client.resolve_contract(MNQ)
    assert again == contract == by_id
    assert requests(clean_sim, "/api/Contract/search") == 1
    assert requests(clean_sim, "/api/Contract/searchById") == 0


async def test_contract_resolves_by_id_and_is_cached(client, clean_sim):
    contract = await client.resolve_contract("CON.F.US.EP.Z26")
    assert (contract.id, contract.tick_size, contract.tick_value) == ("CON.F.US.EP.Z26", 0.25, 12.5)
    await client.resolve_contract("CON.F.US.EP.Z26")
    assert requests(clean_sim, "/api/Contract/searchById") == 1


@pytest.mark.parametrize("key", ["NOPE", "CON.F.US.NOPE.Z26"])
async def test_unknown_contract_is_an_input_error(client, key):
    with pytest.raises(InvalidInputError) as info:
        await client.resolve_contract(key)
    assert (info.value.field, info.value.value) == ("contract_id", key)
    assert str(info.value) == f"invalid contract_id={key!r}: unknown contract"


async def test_missing_orders_read_as_none(client):
    assert await client.get_order(ACCOUNT, 987654321) is None
    assert await client.find_order_by_tag(ACCOUNT, "no-such-tag") is None


async def test_string_ids_are_read_as_ints(client, clean_sim):
    clean_sim.set_faults([], string_ids=True)
    placed = await client.place_order(ACCOUNT, "MNQ", "buy", 1, type=1, limit_price=1000.0)
    assert isinstance(placed.order_id, int)
    order = await client.get_order(ACCOUNT, placed.order_id)
    assert order is not None and order.id == placed.order_id and isinstance(order.id, int)
    found = await client.find_order_by_tag(ACCOUNT, placed.custom_tag)
    assert found == order
    await client.cancel_order(ACCOUNT, placed.order_id)
    after = await client.get_order(ACCOUNT, placed.order_id)
    assert after is not None and after.status == 3
