"""The broker's records: accounts, orders, positions, trades and sessions, each printed as the
API prints it (prices are held in ticks of the contract and printed in price units)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness import projectx as px
from harness.sim.market import Contract, iso

STARTING_BALANCE = 50_000.0


@dataclass
class Account:
    """A trading account."""

    id: int
    name: str
    balance: float = STARTING_BALANCE
    can_trade: bool = True
    is_visible: bool = True
    simulated: bool = True

    def to_json(self) -> dict[str, Any]:
        """As the API prints it."""
        return {
            "id": self.id,
            "name": self.name,
            "balance": round(self.balance, 2),
            "canTrade": self.can_trade,
            "isVisible": self.is_visible,
            "simulated": self.simulated,
        }


class Order:
    """One order, prices in ticks."""

    __slots__ = (
        "account_id",
        "contract",
        "created",
        "custom_tag",
        "fill_volume",
        "filled_ticks",
        "id",
        "limit_ticks",
        "side",
        "size",
        "status",
        "stop_ticks",
        "type",
        "updated",
        "watched_from",
    )

    def __init__(
        self,
        order_id: int,
        account_id: int,
        contract: Contract,
        order_type: int,
        side: int,
        size: int,
        created: float,
        custom_tag: str | None,
    ) -> None:
        self.id = order_id
        self.account_id = account_id
        self.contract = contract
        self.type = order_type
        self.side = side
        self.size = size
        self.created = created
        self.updated = created
        self.custom_tag = custom_tag
        self.status = int(px.OrderStatus.OPEN)
        self.limit_ticks: int | None = None
        self.stop_ticks: int | None = None
        self.fill_volume = 0
        self.filled_ticks: int | None = None
        self.watched_from = int(created) + 1  # first second the trigger sweep looks at

    def to_json(self, string_ids: bool = False) -> dict[str, Any]:
        """As the API prints it (`string_ids`: the id as a numeric string)."""
        c = self.contract
        return {
            "id": str(self.id) if string_ids else self.id,
            "accountId": self.account_id,
            "contractId": c.id,
            "symbolId": c.symbol_id,
            "creationTimestamp": iso(self.created),
            "updateTimestamp": iso(self.updated),
            "status": self.status,
            "type": self.type,
            "side": self.side,
            "size": self.size,
            "limitPrice": None if self.limit_ticks is None else c.price(self.limit_ticks),
            "stopPrice": None if self.stop_ticks is None else c.price(self.stop_ticks),
            "fillVolume": self.fill_volume,
            "filledPrice": None if self.filled_ticks is None else c.price(self.filled_ticks),
            "customTag": self.custom_tag,
        }


@dataclass
class Position:
    """A net open position of one account in one contract (`net` signed; cost in ticks)."""

    id: int
    account_id: int
    contract: Contract
    created: float
    net: int = 0
    cost: float = 0.0  # sum of the entry prices (ticks) of the open contracts

    def to_json(self) -> dict[str, Any]:
        """As the API prints it."""
        size = abs(self.net)
        avg = self.cost / size
        return {
            "id": self.id,
            "accountId": self.account_id,
            "contractId": self.contract.id,
            "creationTimestamp": iso(self.created),
            "type": int(px.PositionType.LONG if self.net > 0 else px.PositionType.SHORT),
            "size": size,
            "averagePrice": round(avg * self.contract.tick_num / self.contract.tick_den, 9),
        }


@dataclass
class Trade:
    """One fill."""

    id: int
    account_id: int
    contract: Contract
    created: float
    price_ticks: int
    pnl: float | None
    fees: float
    side: int
    size: int
    order_id: int

    def to_json(self, string_ids: bool = False) -> dict[str, Any]:
        """As the API prints it."""
        return {
            "id": self.id,
            "accountId": self.account_id,
            "contractId": self.contract.id,
            "creationTimestamp": iso(self.created),
            "price": self.contract.price(self.price_ticks),
            "profitAndLoss": self.pnl,
            "fees": self.fees,
            "side": self.side,
            "size": self.size,
            "voided": False,
            "orderId": str(self.order_id) if string_ids else self.order_id,
        }


@dataclass
class Session:
    """An issued token's facts."""

    username: str
    expires: float
