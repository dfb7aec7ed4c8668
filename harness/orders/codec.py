"""The pure steps of an order call, on either side: build the request, read the answer.

Each client splits a call into three steps: **build** the request (`Request`: path and JSON
body, after the argument checks of `harness.orders.args`, tick snapping and the customTag; the
`Authorization` header aside), **send** it (the I/O: retries, token refresh, reconciliation),
and **read** the answer (HTTP status and raw body -> the result, or the `harness.errors` class
the client raises). Build and read do no I/O and read no clock, so they can run on the side
that did not serve a call: an order shadow builds the request the other side would have sent
from the same arguments, and reads the raw answers the serving side received (its
`harness.orders.trace`); offline replay runs a captured call through both.

    python, rust = codec("python"), codec("rust")
    args = check_place(1001, "MNQ", "buy", 1, type=OrderType.LIMIT, limit_price=21000.25)
    request = python.build_place(args, contract, "hx-...")       # the contract resolved before
    assert request == rust.build_place(args, contract, "hx-...")  # byte for byte
    placed = rust.read_place(200, b'{"success":true,"errorCode":0,"orderId":7}', custom_tag="t")

`Codec` is the one surface of both sides (`PythonCodec`: `harness.orders.python.build` and
`.read`; `RustCodec`: `harness._native`, the GIL released and a panic raised as
`NativePanicError`). Each read takes `attempts` (the HTTP requests the call had made, for the
error's `attempts` and text; 1 for a lone answer) and raises what the client would raise if
this answer ended the call: `OrderRejectedError` / `NotFoundError` for `success: false` (per
endpoint codes) or a status the API does not use, `AuthError` for 401,
`RateLimitedError(retry_after=...)` for 429, `BrokerUnavailableError(maybe_sent=True)` for 5xx,
an unreadable body, or a placement answered without an order id. Whether the client repeats the
request after such an answer is the send step's policy, not the read's.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Protocol

from harness.orders import Impl
from harness.orders.args import ModifyArgs, PlaceArgs
from harness.orders.models import Contract, Order, PlacedOrder

__all__ = ["Codec", "Request", "codec"]


class Request(NamedTuple):
    """What a build step makes: the endpoint `path` and the JSON `content` exactly as sent
    (UTF-8 bytes, compact, ASCII only: `json.dumps(body, separators=(",", ":"))`)."""

    path: str
    content: bytes

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body as a mapping (parsed from `content`; {} for an empty body)."""
        return json.loads(self.content) if self.content else {}


class Codec(Protocol):
    """Build and read of the calls an order shadow compares (see the module docstring)."""

    def build_place(self, args: PlaceArgs, contract: Contract, custom_tag: str) -> Request:
        """`Order/place` of `args` on the resolved `contract`: each price checked against and
        snapped onto its tick grid (`InvalidInputError` when off it), `custom_tag` sent (the
        call's own or the one the client made)."""
        ...

    def build_modify(self, args: ModifyArgs, tick_size: float | None) -> Request:
        """`Order/modify`: the prices snapped onto the grid of `tick_size` (the order's
        contract; None when unknown: sent as given); only the fields that change."""
        ...

    def build_cancel(self, account_id: int, order_id: int) -> Request:
        """`Order/cancel`."""
        ...

    def build_search_by_tag(self, account_id: int, start_unix_s: float) -> Request:
        """`Order/search` from `start_unix_s` (Unix seconds, sent as ISO-8601 UTC with
        microseconds): the look-up of an order by customTag."""
        ...

    def build_search_by_id(self, account_id: int, order_id: int) -> Request:
        """`Order/searchById`."""
        ...

    def read_place(
        self,
        status: int,
        body: bytes,
        retry_after: float | None = None,
        *,
        custom_tag: str,
        attempts: int = 1,
    ) -> PlacedOrder:
        """The answer to `Order/place` -> `PlacedOrder(order_id, custom_tag, False, attempts)`."""
        ...

    def read_modify(
        self, status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
    ) -> None:
        """The answer to `Order/modify` (code 2: `NotFoundError`)."""
        ...

    def read_cancel(
        self, status: int, body: bytes, retry_after: float | None = None, *, attempts: int = 1
    ) -> None:
        """The answer to `Order/cancel` (code 2: `NotFoundError`)."""
        ...

    def read_search_by_tag(
        self,
        status: int,
        body: bytes,
        retry_after: float | None = None,
        *,
        custom_tag: str,
        attempts: int = 1,
    ) -> Order | None:
        """The answer to `Order/search` -> the first order carrying `custom_tag`, or None."""
        ...

    def read_search_by_id(
        self,
        status: int,
        body: bytes,
        retry_after: float | None = None,
        *,
        order_id: int,
        attempts: int = 1,
    ) -> Order | None:
        """The answer to `Order/searchById` -> the order if it is `order_id`; None for
        `success: false` (no such order) or an answer without it."""
        ...


def codec(impl: Impl) -> Codec:
    """The build and read steps of one side: "python" or "rust"."""
    from harness.orders.broken import broken_from_env  # a test hook, honoured under pytest

    if impl == "python":
        from harness.orders.python import PythonCodec

        return broken_from_env(impl, PythonCodec())
    if impl == "rust":
        from harness.orders._rust import RustCodec

        return broken_from_env(impl, RustCodec())
    raise ValueError(f"impl={impl!r}: must be 'rust' or 'python'")
