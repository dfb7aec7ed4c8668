"""Facts of the ProjectX Gateway API (the API behind TopStepX), shared by the simulator and the
Python client. The Rust client mirrors them in `rust/src/orders/api.rs`.

Sources: the gateway's documentation (https://gateway.docs.projectx.com/docs/intro) and its
Swagger description, summed up in `docs/projectx-api.md`. Error codes mean different things per
endpoint, so they are kept per endpoint here rather than as one global enum.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class OrderType(IntEnum):
    """`type` of an order."""

    LIMIT = 1
    MARKET = 2
    STOP_LIMIT = 3
    STOP = 4
    TRAILING_STOP = 5
    JOIN_BID = 6
    JOIN_ASK = 7


class Side(IntEnum):
    """`side` of an order: 0 Bid (buy), 1 Ask (sell)."""

    BID = 0
    ASK = 1


class OrderStatus(IntEnum):
    """`status` of an order."""

    NONE = 0
    OPEN = 1
    FILLED = 2
    CANCELLED = 3
    EXPIRED = 4
    REJECTED = 5
    PENDING = 6
    PENDING_CANCELLATION = 7
    SUSPENDED = 8


class PositionType(IntEnum):
    """`type` of a position."""

    LONG = 1
    SHORT = 2


class BarUnit(IntEnum):
    """`unit` of `History/retrieveBars`."""

    SECOND = 1
    MINUTE = 2
    HOUR = 3
    DAY = 4
    WEEK = 5
    MONTH = 6


# Paths, one per endpoint.
LOGIN_KEY: Final = "/api/Auth/loginKey"
VALIDATE: Final = "/api/Auth/validate"
LOGOUT: Final = "/api/Auth/logout"
ACCOUNT_SEARCH: Final = "/api/Account/search"
CONTRACT_SEARCH: Final = "/api/Contract/search"
CONTRACT_SEARCH_BY_ID: Final = "/api/Contract/searchById"
CONTRACT_AVAILABLE: Final = "/api/Contract/available"
ORDER_PLACE: Final = "/api/Order/place"
ORDER_MODIFY: Final = "/api/Order/modify"
ORDER_CANCEL: Final = "/api/Order/cancel"
ORDER_SEARCH: Final = "/api/Order/search"
ORDER_SEARCH_OPEN: Final = "/api/Order/searchOpen"
ORDER_SEARCH_BY_ID: Final = "/api/Order/searchById"
POSITION_SEARCH_OPEN: Final = "/api/Position/searchOpen"
POSITION_CLOSE_CONTRACT: Final = "/api/Position/closeContract"
POSITION_PARTIAL_CLOSE: Final = "/api/Position/partialCloseContract"
TRADE_SEARCH: Final = "/api/Trade/search"
HISTORY_RETRIEVE_BARS: Final = "/api/History/retrieveBars"
STATUS_PING: Final = "/api/Status/ping"


class LoginCode(IntEnum):
    """errorCode of `Auth/loginKey`."""

    SUCCESS = 0
    USER_NOT_FOUND = 1
    PASSWORD_VERIFICATION_FAILED = 2
    INVALID_CREDENTIALS = 3
    APP_NOT_FOUND = 4
    APP_VERIFICATION_FAILED = 5
    INVALID_DEVICE = 6
    AGREEMENTS_NOT_SIGNED = 7
    UNKNOWN_ERROR = 8
    API_SUBSCRIPTION_NOT_FOUND = 9
    API_KEY_AUTHENTICATION_DISABLED = 10


class ValidateCode(IntEnum):
    """errorCode of `Auth/validate`."""

    SUCCESS = 0
    INVALID_SESSION = 1
    SESSION_NOT_FOUND = 2
    EXPIRED_TOKEN = 3
    UNKNOWN_ERROR = 4


class PlaceCode(IntEnum):
    """errorCode of `Order/place`."""

    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    ORDER_REJECTED = 2
    INSUFFICIENT_FUNDS = 3
    ACCOUNT_VIOLATION = 4
    OUTSIDE_TRADING_HOURS = 5
    ORDER_PENDING = 6
    UNKNOWN_ERROR = 7
    CONTRACT_NOT_FOUND = 8
    CONTRACT_NOT_ACTIVE = 9
    ACCOUNT_REJECTED = 10


class ModifyCode(IntEnum):
    """errorCode of `Order/modify`."""

    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    ORDER_NOT_FOUND = 2
    REJECTED = 3
    PENDING = 4
    UNKNOWN_ERROR = 5
    ACCOUNT_REJECTED = 6
    CONTRACT_NOT_FOUND = 7


class CancelCode(IntEnum):
    """errorCode of `Order/cancel`."""

    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    ORDER_NOT_FOUND = 2
    REJECTED = 3
    PENDING = 4
    UNKNOWN_ERROR = 5
    ACCOUNT_REJECTED = 6


class ContractCode(IntEnum):
    """errorCode of `Contract/searchById`."""

    SUCCESS = 0
    CONTRACT_NOT_FOUND = 1


class BarsCode(IntEnum):
    """errorCode of `History/retrieveBars`."""

    SUCCESS = 0
    CONTRACT_NOT_FOUND = 1
    UNIT_INVALID = 2
    UNIT_NUMBER_INVALID = 3
    LIMIT_INVALID = 4


MAX_BARS_LIMIT: Final = 20_000
RATE_LIMIT: Final = (200, 60.0)
"""(requests, seconds): every endpoint but `History/retrieveBars`, per session (documented)."""
BARS_RATE_LIMIT: Final = (50, 30.0)
"""(requests, seconds): `History/retrieveBars` (one copy of the docs reads 30 per 30 s)."""
TOKEN_LIFETIME_S: Final = 24 * 3600
