"""Typed surface of the private Rust extension `harness._native` (built from `rust/`).

Users import from the Python facade (`harness.bars`, `harness.orders`), not from here.
"""

from collections.abc import Awaitable, Sequence
from typing import final

from harness.orders.codec import Request
from harness.orders.models import Account, Contract, Order, PlacedOrder
from harness.orders.trace import Trace

__all__ = [
    "Aggregator",
    "OrderClient",
    "__git_commit__",
    "__version__",
    "aggregate_columns",
    "build_cancel",
    "build_modify",
    "build_place",
    "build_search_by_id",
    "build_search_by_tag",
    "read_cancel",
    "read_modify",
    "read_place",
    "read_search_by_id",
    "read_search_by_tag",
]

__version__: str
__git_commit__: str  # the commit built from (rust/build.rs); "" outside a checkout

# --- bars (rust/src/bars/) ---
import numpy as np
import numpy.typing as npt

_I64 = npt.NDArray[np.int64]
_F64 = npt.NDArray[np.float64]
_Series = tuple[_I64, _F64, _F64, _F64, _F64, _I64]

def aggregate_columns(
    t: _I64, o: _F64, h: _F64, l: _F64, c: _F64, v: _I64, periods: list[int], offsets: list[int]
) -> list[_Series]:
    """Aggregate C-contiguous columns into each (period ns, offset ns) in one pass."""

@final
class Aggregator:
    """Incremental aggregator; `input_period` ns (0 = complete a bucket on the next one)."""

    def __new__(cls, periods: list[int], offsets: list[int], input_period: int) -> Aggregator: ...
    def push(
        self, t: int, o: float, h: float, l: float, c: float, v: int
    ) -> list[tuple[int, int, float, float, float, float, int]]: ...
    def push_many(self, t: _I64, o: _F64, h: _F64, l: _F64, c: _F64, v: _I64) -> list[_Series]: ...
    def partial(self, k: int) -> tuple[int, float, float, float, float, int] | None: ...
    @property
    def count(self) -> int: ...

# --- orders (rust/src/orders/) ---
# A typed boundary: arguments arrive checked by `harness.orders.args` (the one check), results
# are the dataclasses of `harness.orders.models`, errors the classes of `harness.errors`.

_Trace = Trace | None
_Bracket = tuple[int, int] | None

@final
class OrderClient:
    """Native ProjectX order client (tokio + reqwest); every method returns an awaitable.

    Arguments come checked by `harness.orders.args` (`RustOrderClient` does it) and are taken
    as they are; the tick grid is checked here, once the contract is known
    (`InvalidInputError`). Broker failures raise the `harness.errors` classes; a Rust panic
    raises `NativePanicError`. `trace`: a `harness.orders.trace.Trace`, to whose `exchanges`
    the call's exchanges are appended before it returns or raises. Calls run on one shared
    tokio worker thread (`HARNESS_TOKIO_WORKERS=n`, read at import, changes that); a process
    forked after a client was used gets its own runtime and connection pool on its first call.
    `max_retry_after_s`: the longest `Retry-After` waited (a longer one raises
    `RateLimitedError` at once).
    """

    def __new__(
        cls,
        base_url: str,
        username: str,
        api_key: str,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
        # (0.75, 1.5, 3.0); PyO3 prints a list default as `...` in the runtime signature.
        retry_delays_s: Sequence[float] = ...,
        jitter: bool = False,
        reconcile_lookback_s: float = 86400.0,
        max_connections: int = 32,
        max_retry_after_s: float = 3.0,
    ) -> OrderClient: ...
    def accounts(self, only_active: bool, trace: _Trace = None) -> Awaitable[list[Account]]:
        """`Account/search`."""
    def resolve_contract(self, key: str, trace: _Trace = None) -> Awaitable[Contract]:
        """A contract by symbol or id (cached)."""
    def place_order(
        self,
        account_id: int,
        contract: str,
        side: int,
        size: int,
        order_type: int,
        limit_price: float | None,
        stop_price: float | None,
        trail_price: float | None,
        custom_tag: str | None,
        stop_loss: _Bracket,
        take_profit: _Bracket,
        trace: _Trace = None,
    ) -> Awaitable[PlacedOrder]:
        """`Order/place` of `harness.orders.args.PlaceArgs` in its field order."""
    def modify_order(
        self,
        account_id: int,
        order_id: int,
        size: int | None,
        limit_price: float | None,
        stop_price: float | None,
        trail_price: float | None,
        trace: _Trace = None,
    ) -> Awaitable[None]:
        """`Order/modify` of `harness.orders.args.ModifyArgs` in its field order."""
    def cancel_order(self, account_id: int, order_id: int, trace: _Trace = None) -> Awaitable[None]:
        """`Order/cancel`."""
    def find_order_by_tag(
        self, account_id: int, tag: str, trace: _Trace = None
    ) -> Awaitable[Order | None]:
        """The order carrying `tag`, or None."""
    def get_order(
        self, account_id: int, order_id: int, trace: _Trace = None
    ) -> Awaitable[Order | None]:
        """The order with `order_id`, or None."""
    def cached_contract(self, key: str) -> Contract | None:
        """The contract cached under `key`, or None: no I/O."""
    def cached_order_contract(self, order_id: int) -> str | None:
        """The contract id of an order this client placed or read, or None: no I/O."""
    def aclose(self) -> Awaitable[None]:
        """Forget the session and the contract cache; unregister from the event loop."""
    def _panic_probe(self) -> Awaitable[None]:
        """Test hook: the Rust future panics; awaiting raises `NativePanicError`."""

# The pure steps (`harness.orders.codec`): GIL released, a panic raised as NativePanicError.
def build_place(
    account_id: int,
    side: int,
    size: int,
    order_type: int,
    limit_price: float | None,
    stop_price: float | None,
    trail_price: float | None,
    stop_loss: _Bracket,
    take_profit: _Bracket,
    contract_id: str,
    tick_size: float,
    custom_tag: str,
) -> Request:
    """`Order/place` on the resolved contract, prices snapped onto its tick grid."""

def build_modify(
    account_id: int,
    order_id: int,
    size: int | None,
    limit_price: float | None,
    stop_price: float | None,
    trail_price: float | None,
    tick_size: float | None,
) -> Request:
    """`Order/modify`, prices snapped onto `tick_size` (None: as given)."""

def build_cancel(account_id: int, order_id: int) -> Request:
    """`Order/cancel`."""

def build_search_by_tag(account_id: int, start_unix_s: float) -> Request:
    """`Order/search` from `start_unix_s`."""

def build_search_by_id(account_id: int, order_id: int) -> Request:
    """`Order/searchById`."""

def read_place(
    status: int,
    body: bytes,
    retry_after: float | None = None,
    *,
    custom_tag: str,
    attempts: int = 1,
) -> PlacedOrder:
    """The answer to `Order/place`."""

def read_modify(
    status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
) -> None:
    """The answer to `Order/modify`."""

def read_cancel(
    status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
) -> None:
    """The answer to `Order/cancel`."""

def read_search_by_tag(
    status: int,
    body: bytes,
    retry_after: float | None = None,
    *,
    custom_tag: str,
    attempts: int = 1,
) -> Order | None:
    """The answer to `Order/search`: the order carrying `custom_tag`, or None."""

def read_search_by_id(
    status: int, body: bytes, retry_after: float | None = None, *, order_id: int, attempts: int = 1
) -> Order | None:
    """The answer to `Order/searchById`: the order `order_id`, or None."""
