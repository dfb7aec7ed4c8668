"""The pure-Python order client: httpx.AsyncClient, the way a careful bot would write it.

`PythonOrderClient` is the reference the Rust client (`harness._native.OrderClient`) must
match call for call. Its rooms follow the three steps of every call:

- `build.py`: the request of each call, path and exact bytes (pure);
- `transport.py`: send it: the connection pools, retries, `Backoff`, the trace recording;
- `read.py`: the answer -> the result or the `harness.errors` class (pure);
- `session.py`: the token: log-in, refresh (`refresh_delay`), log-in again after a 401;
- `core.py`, `lookups.py`, `client.py`: the client itself: state and authenticated sending,
  the reads, the mutations and their reconciliation.

`PythonCodec` is this side's build and read for an order shadow (`harness.orders.codec`).
"""

from __future__ import annotations

from harness.orders.python.build import (
    build_cancel,
    build_modify,
    build_place,
    build_search_by_id,
    build_search_by_tag,
)
from harness.orders.python.client import PythonOrderClient
from harness.orders.python.read import (
    pick_contract,
    read_cancel,
    read_modify,
    read_place,
    read_search_by_id,
    read_search_by_tag,
)
from harness.orders.python.session import refresh_delay
from harness.orders.python.transport import Backoff
from harness.orders.retry_after import parse_retry_after

__all__ = [
    "Backoff",
    "PythonCodec",
    "PythonOrderClient",
    "parse_retry_after",
    "pick_contract",
    "refresh_delay",
]


class PythonCodec:
    """The Python side's build and read steps (`harness.orders.codec.Codec`)."""

    build_place = staticmethod(build_place)
    build_modify = staticmethod(build_modify)
    build_cancel = staticmethod(build_cancel)
    build_search_by_tag = staticmethod(build_search_by_tag)
    build_search_by_id = staticmethod(build_search_by_id)
    read_place = staticmethod(read_place)
    read_modify = staticmethod(read_modify)
    read_cancel = staticmethod(read_cancel)
    read_search_by_tag = staticmethod(read_search_by_tag)
    read_search_by_id = staticmethod(read_search_by_id)
