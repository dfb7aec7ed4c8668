"""A deliberately broken build of one side, for the tests that prove a broken build is caught
(by the order shadow and by `harness replay`): `HARNESS_TEST_BROKEN_CODEC=SIDE:HOW`, honoured
only under pytest (`PYTEST_CURRENT_TEST` set), as `HARNESS_TEST_BUILD_ID` is.

- `rust:body.size` (any `body.<key>`): side `rust` builds every request with that key's
  value changed (a number + 1, a string with `x` appended, a boolean negated);
- `python:read.order_id`: side `python` misreads every placement's answer (the order id + 1).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Final

from harness.orders.codec import Codec, Request

__all__ = ["BROKEN_CODEC_ENV", "BrokenCodec", "broken_from_env"]

BROKEN_CODEC_ENV: Final = "HARNESS_TEST_BROKEN_CODEC"


def broken_from_env(impl: str, found: Codec) -> Codec:
    """`found`, or a `BrokenCodec` of it when the test hook names side `impl`."""
    hook = os.environ.get(BROKEN_CODEC_ENV) if os.environ.get("PYTEST_CURRENT_TEST") else None
    if not hook:
        return found
    side, _, how = hook.partition(":")
    return BrokenCodec(found, how) if side == impl else found


class BrokenCodec:
    """`inner` with one field built or read wrongly (see the module)."""

    def __init__(self, inner: Codec, how: str) -> None:
        self._inner = inner
        self._key = how.removeprefix("body.") if how.startswith("body.") else None
        self._misread = how == "read.order_id"

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("build_") and self._key is not None:
            return lambda *a, **k: self._rebuilt(attr(*a, **k))
        if name == "read_place" and self._misread:

            def misread(*a: Any, **k: Any) -> Any:
                placed = attr(*a, **k)
                return dataclasses.replace(placed, order_id=placed.order_id + 1)

            return misread
        return attr

    def _rebuilt(self, request: Request) -> Request:
        body = request.body
        if self._key not in body:
            return request
        value = body[self._key]
        if isinstance(value, bool):
            body[self._key] = not value
        elif isinstance(value, int | float):
            body[self._key] = value + 1
        elif isinstance(value, str):
            body[self._key] = value + "x"
        else:
            body[self._key] = 1
        return Request(request.path, json.dumps(body, separators=(",", ":")).encode())
