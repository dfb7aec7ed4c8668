"""Typed surface of the private Rust extension `harness._native` (built from `rust/`).

Users import from the Python facade (`harness.bars`, `harness.orders`), not from here.
"""

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, final

__all__ = ["Aggregator", "OrderClient", "__version__", "aggregate_columns"]

__version__: str

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

@final
class OrderClient:
    """Native ProjectX order client (tokio + reqwest); every method returns an awaitable.

    Arguments are checked before anything is sent (`harness.errors.InvalidInputError`, the texts
    of `harness/orders/validation.py`); broker failures raise the `harness.errors` classes; a
    Rust panic raises `NativePanicError`. The adapter `harness.orders._rust.RustOrderClient`
    turns the plain results into the dataclasses of `harness.orders.models`. Calls run on one
    shared tokio worker thread (`HARNESS_TOKIO_WORKERS=n`, read at import, changes that); a
    process forked after a client was used gets its own runtime and connection pool on its
    first call. `max_retry_after_s`: the longest `Retry-After` waited (a longer one raises
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
    def accounts(self, only_active: bool = True) -> Awaitable[list[dict[str, Any]]]:
        """`Account/search` -> account dicts (the fields of `models.Account`)."""
    def resolve_contract(self, symbol_or_id: str) -> Awaitable[dict[str, Any]]:
        """A contract dict (the fields of `models.Contract`), cached."""
    def place_order(
        self,
        account_id: int,
        contract_id: str,
        side: Any,
        size: int,
        *,
        type: int | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
        custom_tag: str | None = None,
        brackets: Mapping[str, Any] | None = None,
    ) -> Awaitable[tuple[int, str, bool, int]]:
        """`Order/place` -> `(order_id, custom_tag, reconciled, attempts)`."""
    def place_market_order(
        self,
        account_id: int,
        contract_id: str,
        side: Any,
        size: int,
        *,
        custom_tag: str | None = None,
    ) -> Awaitable[tuple[int, str, bool, int]]:
        """A market order -> `(order_id, custom_tag, reconciled, attempts)`."""
    def modify_order(
        self,
        account_id: int,
        order_id: int,
        *,
        size: int | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
    ) -> Awaitable[None]:
        """`Order/modify`."""
    def cancel_order(self, account_id: int, order_id: int) -> Awaitable[None]:
        """`Order/cancel`."""
    def find_order_by_tag(self, account_id: int, tag: str) -> Awaitable[dict[str, Any] | None]:
        """The order dict carrying `tag` (timestamps as ISO text), or None."""
    def get_order(self, account_id: int, order_id: int) -> Awaitable[dict[str, Any] | None]:
        """The order dict with `order_id` (timestamps as ISO text), or None."""
    def aclose(self) -> Awaitable[None]:
        """Forget the session and the contract cache; unregister from the event loop."""
    def _panic_probe(self) -> Awaitable[None]:
        """Test hook: the Rust future panics; awaiting raises `NativePanicError`."""
