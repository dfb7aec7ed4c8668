"""`Gateway`, the whole simulated broker (the state of `Broker` with every path's handlers), and
`ROUTES`, the table of API paths `server.App` routes each request by."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness import projectx as px
from harness.sim.gateway.accounts import AccountPaths
from harness.sim.gateway.auth import AuthPaths
from harness.sim.gateway.history import HistoryPaths
from harness.sim.gateway.orders import OrderPaths
from harness.sim.gateway.positions import PositionPaths


class Gateway(AuthPaths, AccountPaths, OrderPaths, PositionPaths, HistoryPaths):
    """The broker state and the business rules of every API path."""


Handler = Callable[[Gateway, dict[str, Any], float], dict[str, Any]]


# Path -> (method, needs a token, handler). Login and ping are the only open doors.
ROUTES: dict[str, tuple[bytes, bool, Any]] = {
    px.LOGIN_KEY: (b"POST", False, Gateway.login_key),
    px.VALIDATE: (b"POST", True, None),
    px.LOGOUT: (b"POST", True, None),
    px.ACCOUNT_SEARCH: (b"POST", True, Gateway.account_search),
    px.CONTRACT_SEARCH: (b"POST", True, Gateway.contract_search),
    px.CONTRACT_SEARCH_BY_ID: (b"POST", True, Gateway.contract_search_by_id),
    px.CONTRACT_AVAILABLE: (b"POST", True, Gateway.contract_available),
    px.ORDER_PLACE: (b"POST", True, Gateway.order_place),
    px.ORDER_MODIFY: (b"POST", True, Gateway.order_modify),
    px.ORDER_CANCEL: (b"POST", True, Gateway.order_cancel),
    px.ORDER_SEARCH: (b"POST", True, Gateway.order_search),
    px.ORDER_SEARCH_OPEN: (b"POST", True, Gateway.order_search_open),
    px.ORDER_SEARCH_BY_ID: (b"POST", True, Gateway.order_search_by_id),
    px.POSITION_SEARCH_OPEN: (b"POST", True, Gateway.position_search_open),
    px.POSITION_CLOSE_CONTRACT: (b"POST", True, Gateway.position_close),
    px.POSITION_PARTIAL_CLOSE: (b"POST", True, Gateway.position_partial_close),
    px.TRADE_SEARCH: (b"POST", True, Gateway.trade_search),
    px.HISTORY_RETRIEVE_BARS: (b"POST", True, Gateway.retrieve_bars),
    px.STATUS_PING: (b"GET", False, None),
}
