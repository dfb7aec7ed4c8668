"""The `Account/search` and `Contract/*` paths: the simulated accounts and the contracts of
`harness.sim.market`."""

from __future__ import annotations

from typing import Any

from harness import projectx as px
from harness.sim.gateway.broker import Broker
from harness.sim.gateway.wire import fail, ok, req_bool, req_str


class AccountPaths(Broker):
    """`Account/search`, `Contract/search`, `Contract/searchById`, `Contract/available`."""

    def account_search(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Account/search`."""
        only_active = req_bool(body, "onlyActiveAccounts")
        rows = [a for a in self.accounts.values() if a.can_trade or not only_active]
        return {"accounts": [a.to_json() for a in rows], **ok()}

    def contract_search(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Contract/search`: active contracts whose name, symbol or description match; <= 20."""
        text = (req_str(body, "searchText", required=False) or "").strip().lower()
        req_bool(body, "live", required=False)
        rows = [
            c
            for c in self.contracts.values()
            if c.active
            and (
                not text
                or text in c.name.lower()
                or text in c.symbol_id.lower()
                or text in c.description.lower()
            )
        ]
        return {"contracts": [c.to_json() for c in rows[:20]], **ok()}

    def contract_search_by_id(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Contract/searchById`: one `contract`, expired ones included; unknown -> 1."""
        contract = self.contracts.get(req_str(body, "contractId") or "")
        if contract is None:
            return fail(px.ContractCode.CONTRACT_NOT_FOUND, "Contract not found.", contract=None)
        return {"contract": contract.to_json(), **ok()}

    def contract_available(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        """`Contract/available`: every active contract."""
        req_bool(body, "live", required=False)
        rows = [c.to_json() for c in self.contracts.values() if c.active]
        return {"contracts": rows, **ok()}
