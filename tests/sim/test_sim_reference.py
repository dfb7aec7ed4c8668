"""Accounts and contracts as a bot written against a public SDK reads them."""

from __future__ import annotations

from simkit import MNQ, Api

ACCOUNT_KEYS = {"id", "name", "balance", "canTrade", "isVisible", "simulated"}
CONTRACT_KEYS = {"id", "name", "description", "tickSize", "tickValue", "activeContract", "symbolId"}


def test_accounts_carry_every_key_the_sdk_needs(api: Api) -> None:
    body = api.call("/api/Account/search", {"onlyActiveAccounts": True})
    assert body["success"] is True
    assert [a["id"] for a in body["accounts"]] == [1001, 1002]
    assert [a["name"] for a in body["accounts"]] == ["SIM-1001", "SIM-1002"]
    for account in body["accounts"]:
        assert set(account) == ACCOUNT_KEYS
        assert account["canTrade"] is True and account["simulated"] is True


def test_account_search_requires_only_active_accounts(api: Api) -> None:
    assert api.raw("/api/Account/search", {}).status_code == 400


def test_contract_search_finds_the_front_month_by_root(api: Api) -> None:
    body = api.call("/api/Contract/search", {"searchText": "MNQ", "live": False})
    rows = body["contracts"]
    assert [c["name"] for c in rows] == ["MNQZ6"]
    assert rows[0] == {
        "id": MNQ,
        "name": "MNQZ6",
        "description": "Micro E-mini Nasdaq-100: December 2026",
        "tickSize": 0.25,
        "tickValue": 0.5,
        "activeContract": True,
        "symbolId": "F.US.MNQ",
    }


def test_contract_search_knows_enq_and_ep_and_caps_at_20(api: Api) -> None:
    enq = api.call("/api/Contract/search", {"searchText": "ENQ", "live": False})["contracts"]
    ep = api.call("/api/Contract/search", {"searchText": "EP", "live": False})["contracts"]
    assert (enq[0]["id"], enq[0]["tickValue"]) == ("CON.F.US.ENQ.Z26", 5.0)
    assert (ep[0]["id"], ep[0]["tickValue"]) == ("CON.F.US.EP.Z26", 12.5)
    everything = api.call("/api/Contract/search", {"searchText": "", "live": False})["contracts"]
    assert 3 <= len(everything) <= 20
    assert all(set(c) == CONTRACT_KEYS for c in everything)


def test_search_by_id_answers_one_contract_expired_ones_included(api: Api) -> None:
    body = api.call("/api/Contract/searchById", {"contractId": MNQ})
    assert body["success"] is True and body["contract"]["id"] == MNQ
    old = api.call("/api/Contract/searchById", {"contractId": "CON.F.US.MNQ.U26"})
    assert old["success"] is True and old["contract"]["activeContract"] is False


def test_search_by_unknown_id_is_success_false_code_1(api: Api) -> None:
    body = api.call("/api/Contract/searchById", {"contractId": "CON.F.US.MNQ.H19"})
    assert (body["success"], body["errorCode"], body["contract"]) == (False, 1, None)


def test_search_by_id_without_contract_id_is_400(api: Api) -> None:
    assert api.raw("/api/Contract/searchById", {"live": False}).status_code == 400


def test_available_lists_active_contracts_only(api: Api) -> None:
    rows = api.call("/api/Contract/available", {"live": False})["contracts"]
    assert rows and all(c["activeContract"] for c in rows)
    assert {"CON.F.US.MNQ.Z26", "CON.F.US.ENQ.Z26", "CON.F.US.EP.Z26"} <= {c["id"] for c in rows}


def test_unknown_request_fields_are_ignored(api: Api) -> None:
    body = api.call("/api/Account/search", {"onlyActiveAccounts": False, "whatever": [1, 2]})
    assert body["success"] is True
