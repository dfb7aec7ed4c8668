"""Requests and answers as data: the fields of a JSON request body, read and checked, and the
envelopes of the answers.

A required field that is missing, or a field of an unusable type, raises `BadRequest` (HTTP 400
with an ASP.NET-style validation problem, as the real gateway sends); a business failure is
HTTP 200 with `success: false` and the endpoint's own code (`fail`). `Unauthorized` (401) and
`RateLimited` (429) are raised by the session checks of `auth.py`. `server.py` turns each into
its HTTP answer; nothing here knows of sockets.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any, Literal, overload


class BadRequest(Exception):
    """A required body field is missing or unusable: HTTP 400 (never a business failure)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)

    def body(self) -> bytes:
        """An ASP.NET-style validation problem, as the real gateway sends."""
        return json.dumps(
            {
                "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
                "title": "One or more validation errors occurred.",
                "status": 400,
                "errors": {self.field: [str(self)]},
            }
        ).encode()


class Unauthorized(Exception):
    """Missing, unknown or expired bearer token: HTTP 401."""


class RateLimited(Exception):
    """Too many requests for this token in the window: HTTP 429."""

    def __init__(self, retry_after: float | None) -> None:
        self.retry_after = retry_after
        super().__init__("rate limited")


def ok(**payload: Any) -> dict[str, Any]:
    """A success envelope."""
    return {**payload, "success": True, "errorCode": 0, "errorMessage": None}


def fail(code: int, message: str, **payload: Any) -> dict[str, Any]:
    """A business failure: HTTP 200, `success: false`, the endpoint's own code."""
    return {**payload, "success": False, "errorCode": int(code), "errorMessage": message}


# -- request field readers (400 on a missing required field or an unusable type) ---------------
_MISSING = object()


def _field(body: dict[str, Any], name: str, required: bool) -> Any:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise BadRequest(name, f"The {name} field is required.")
        return None
    return value


@overload
def req_int(body: dict[str, Any], name: str, required: Literal[True] = ...) -> int: ...
@overload
def req_int(body: dict[str, Any], name: str, required: bool) -> int | None: ...
def req_int(body: dict[str, Any], name: str, required: bool = True) -> int | None:
    """An integer field (JSON number without fraction; bools refused)."""
    value = body.get(name)
    if type(value) is int and -(2**63) <= value < 2**63:
        return value  # the common case, checked first
    value = _field(body, name, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(name, f"The JSON value of {name} could not be converted to an integer.")
    if isinstance(value, float):
        if not value.is_integer():
            raise BadRequest(name, f"The JSON value of {name} is not an integer.")
        value = int(value)
    if not (-(2**63) <= value < 2**63):
        raise BadRequest(name, f"The JSON value of {name} is out of range.")
    return value


@overload
def req_str(body: dict[str, Any], name: str, required: Literal[True] = ...) -> str: ...
@overload
def req_str(body: dict[str, Any], name: str, required: bool) -> str | None: ...
def req_str(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    """A string field."""
    value = body.get(name)
    if type(value) is str:
        return value
    value = _field(body, name, required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(name, f"The JSON value of {name} could not be converted to a string.")
    return value


@overload
def req_bool(body: dict[str, Any], name: str, required: Literal[True] = ...) -> bool: ...
@overload
def req_bool(body: dict[str, Any], name: str, required: bool) -> bool | None: ...
def req_bool(body: dict[str, Any], name: str, required: bool = True) -> bool | None:
    """A boolean field."""
    value = _field(body, name, required)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise BadRequest(name, f"The JSON value of {name} could not be converted to a boolean.")
    return value


def req_price(body: dict[str, Any], name: str) -> float | None:
    """An optional decimal price."""
    value = body.get(name)
    if value is None:
        return None
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(name, f"The JSON value of {name} could not be converted to a decimal.")
    return float(value)


_FRACTION = re.compile(r"(\.\d{6})\d+")


@overload
def req_time(body: dict[str, Any], name: str, required: Literal[True] = ...) -> float: ...
@overload
def req_time(body: dict[str, Any], name: str, required: bool) -> float | None: ...
def req_time(body: dict[str, Any], name: str, required: bool = True) -> float | None:
    """An ISO-8601 timestamp field as epoch seconds (no offset means UTC; 'Z' accepted)."""
    value = req_str(body, name, required)
    if value is None:
        return None
    text = _FRACTION.sub(r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(name, f"The JSON value of {name} is not a valid date.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
