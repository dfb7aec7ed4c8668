"""Build and read agree across the two sides: what an order shadow compares.

For the same checked arguments both build steps write the same request, byte for byte (every
order type, prices snapped onto every kind of tick grid, brackets, any tag); for the same raw
answer both read steps return the same result or raise the same error (success, every
documented business failure code, 401, 429 with and without Retry-After, 5xx, malformed JSON,
odd envelopes). Pure functions: no broker involved, so hypothesis can search widely.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import projectx as px
from harness.errors import BrokerError, InvalidInputError
from harness.orders.args import Bracket, ModifyArgs, PlaceArgs
from harness.orders.codec import Codec, Request, codec
from harness.orders.models import Contract

PYTHON, RUST = codec("python"), codec("rust")
I64 = st.integers(-(2**63), 2**63 - 1)
POSITIVE = st.integers(1, 2**63 - 1)


@pytest.fixture(autouse=True)
def _ledger_judge() -> None:
    """Pure steps: no simulator, so nothing for the suite's ledger check to judge."""


def contract(tick: float) -> Contract:
    return Contract("CON.F.US.X.Z26", "XZ6", "x", tick, 1.0, True, "F.US.X")


# Ticks of the kinds the grid rule must handle: quarter points, tenths, 5e-05 (six digits),
# whole numbers, halves of 5, and "no grid" (0: prices go out as given).
TICKS = [0.25, 0.1, 0.00005, 1.0, 2.5, 0.01, 0.0]


def outcome(step: Callable[[], Any]) -> tuple[Any, ...]:
    """A step's result, or its error as everything the taxonomy carries."""
    try:
        return ("ok", step())
    except InvalidInputError as exc:
        return ("invalid", type(exc), exc.field, repr(exc.value), exc.reason, str(exc))
    except BrokerError as exc:
        message = str(exc)
        # The JSON parsers' own words differ (Python's json against serde); the rest may not.
        head, sep, _ = message.partition("unreadable answer")
        return ("broker", type(exc), exc._fields(), head + sep)


def both(call: Callable[[Codec], Any]) -> tuple[Any, Any]:
    return outcome(lambda: call(PYTHON)), outcome(lambda: call(RUST))


# ----- build ----------------------------------------------------------------------------------


@st.composite
def prices(draw: st.DrawFn, tick: float) -> float:
    """A price on the grid (as computed in floating point, often a hair off it), or any."""
    if tick > 0 and draw(st.booleans()):
        steps = draw(st.integers(-(10**9), 10**9))
        exact = steps * tick
        noise = draw(st.sampled_from([0, 1, -1]))
        return math.nextafter(exact, noise * math.inf) if noise else exact
    return draw(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            st.floats(-1e6, 1e6, allow_nan=False),
            st.sampled_from([1e16, 1.5e16, 5e-05, 1e-07, 123456789.123, -0.0, 0.0]),
        )
    )


BRACKETS = st.none() | st.builds(Bracket, I64, I64)
TAGS = st.text(min_size=1, max_size=40)  # any text: quotes, controls, accents, emoji


@st.composite
def placements(draw: st.DrawFn) -> tuple[PlaceArgs, float, str]:
    tick = draw(st.sampled_from(TICKS))
    order_type = draw(st.sampled_from(list(px.OrderType)))
    takes = {
        px.OrderType.LIMIT: ("limit",),
        px.OrderType.STOP: ("stop",),
        px.OrderType.TRAILING_STOP: ("trail",),
        px.OrderType.STOP_LIMIT: ("limit", "stop", "trail"),  # the broker's to judge
    }.get(order_type, ())
    given_prices = {
        name: (draw(prices(tick)) if name in takes and draw(st.integers(0, 4)) else None)
        for name in ("limit", "stop", "trail")
    }
    for name in takes[:1]:  # the type's own price is always there (the checks require it)
        given_prices[name] = given_prices[name] or draw(prices(tick))
    args = PlaceArgs(
        draw(POSITIVE),
        "X",
        draw(st.sampled_from([0, 1])),
        draw(POSITIVE),
        int(order_type),
        given_prices["limit"],
        given_prices["stop"],
        given_prices["trail"],
        None,
        draw(BRACKETS),
        draw(BRACKETS),
    )
    return args, tick, draw(TAGS)


@settings(max_examples=600, deadline=None)
@given(placements())
def test_both_sides_build_the_same_placement(case):
    args, tick, tag = case
    python, rust = both(lambda c: c.build_place(args, contract(tick), tag))
    assert python == rust
    if python[0] == "ok":
        request = python[1]
        assert isinstance(request, Request) and request.path == px.ORDER_PLACE
        assert request.content.isascii()
        body = request.body
        assert body["customTag"] == tag and body["contractId"] == "CON.F.US.X.Z26"
        assert ("stopLossBracket" in body) == (args.stop_loss is not None)


@pytest.mark.parametrize("tick", [t for t in TICKS if t > 0])
@pytest.mark.parametrize("direction", [-1, 1])
@pytest.mark.parametrize(
    ("kind", "field"),
    [
        (px.OrderType.LIMIT, "limitPrice"),
        (px.OrderType.STOP, "stopPrice"),
        (px.OrderType.TRAILING_STOP, "trailPrice"),
    ],
)
def test_a_price_a_hair_off_the_grid_goes_out_as_the_grid_value(tick, direction, kind, field):
    grid = float(Decimal(2621) * Decimal(repr(tick)))  # the double nearest to 2621 ticks
    off = math.nextafter(grid, direction * math.inf)
    prices = {"limitPrice": None, "stopPrice": None, "trailPrice": None, field: off}
    args = PlaceArgs(1001, "X", 0, 1, int(kind), *prices.values(), None, None, None)
    python, rust = both(lambda c: c.build_place(args, contract(tick), "t"))
    assert python == rust
    assert python[1].body[field] == grid
    assert repr(grid).encode() in python[1].content


@st.composite
def modifications(draw: st.DrawFn) -> tuple[ModifyArgs, float | None]:
    tick = draw(st.sampled_from([*TICKS, None]))
    grid = tick or 0.25
    optional = st.none() | prices(grid)
    args = ModifyArgs(
        draw(POSITIVE),
        draw(POSITIVE),
        draw(st.none() | POSITIVE),
        draw(optional),
        draw(optional),
        draw(optional),
    )
    return args, tick


@settings(max_examples=400, deadline=None)
@given(modifications())
def test_both_sides_build_the_same_modify(case):
    args, tick = case
    python, rust = both(lambda c: c.build_modify(args, tick))
    assert python == rust


@settings(max_examples=300, deadline=None)
@given(POSITIVE, POSITIVE, st.floats(0, 4e9, allow_nan=False))
def test_both_sides_build_the_same_cancel_and_look_ups(account_id, order_id, start):
    for call in (
        lambda c: c.build_cancel(account_id, order_id),
        lambda c: c.build_search_by_id(account_id, order_id),
        lambda c: c.build_search_by_tag(account_id, start),
    ):
        python, rust = both(call)
        assert python == rust
        assert python[0] == "ok"


def test_the_search_start_is_iso_utc_with_microseconds():
    request = RUST.build_search_by_tag(1001, 1_752_872_401.268_009)
    assert request.body == {
        "accountId": 1001,
        "startTimestamp": "2025-07-18T21:00:01.268009+00:00",
    }


# ----- read -----------------------------------------------------------------------------------


def envelope(success: Any = True, code: Any = 0, message: Any = None, **payload: Any) -> bytes:
    body = {"success": success, "errorCode": code, "errorMessage": message, **payload}
    return json.dumps(body).encode()


ORDER_ROW = {
    "id": 7000000046,
    "accountId": 1001,
    "contractId": "CON.F.US.MNQ.Z26",
    "symbolId": "F.US.MNQ",
    "creationTimestamp": "2026-11-24T03:05:40.747022+00:00",
    "updateTimestamp": "2026-11-24T03:05:41Z",
    "status": 1,
    "type": 1,
    "side": 0,
    "size": 2,
    "limitPrice": 21000.25,
    "stopPrice": None,
    "fillVolume": 0,
    "filledPrice": None,
    "customTag": "hx-tag",
}

# (status, body, retry_after): what every read must take alike, on top of each endpoint's own.
COMMON = {
    "401": (401, b"", None),
    "429 with Retry-After": (429, b"", 1.5),
    "429 without": (429, b"", None),
    "500": (500, b"simulated fault", None),
    "502": (502, b"", None),
    "503 with Retry-After": (503, b"", 2.0),
    "504": (504, b"<html>gateway time-out</html>", None),
    "400": (400, json.dumps({"title": "One or more validation errors occurred."}).encode(), None),
    "404": (404, b"", None),
    "204": (204, b"", None),
    "not json": (200, b"<html>oops</html>", None),
    "empty body": (200, b"", None),
    "truncated": (200, b'{"success":true,"errorCo', None),
    "a list": (200, b"[]", None),
    "a list of true": (200, b"[true]", None),
    "a string": (200, b'"pong"', None),
    "null": (200, b"null", None),
    "invalid utf-8": (200, b'{"success":true,"errorMessage":"\xff"}', None),
    "code as text": (200, envelope(True, "0"), None),
    "success as text": (200, envelope("true", 0), None),
    "message as a number": (200, envelope(False, 3, 12), None),
    "zero code as a fraction": (200, envelope(True, 0.0), None),
    "code disagrees with success": (200, envelope(True, 2, "x"), None),
    "success missing": (200, json.dumps({"errorCode": 0}).encode(), None),
    "false code": (200, envelope(True, False), None),
    "true code": (200, envelope(True, True), None),
    "null code": (200, envelope(True, None), None),
    "leading whitespace": (200, b"  \n" + envelope(True, 0), None),
}

PLACE_CODES = [code.value for code in px.PlaceCode if code]
MODIFY_CODES = [code.value for code in px.ModifyCode if code]
CANCEL_CODES = [code.value for code in px.CancelCode if code]


def read_place(c: Codec, status: int, body: bytes, ra: float | None) -> Any:
    return c.read_place(status, body, ra, custom_tag="hx-tag", attempts=3)


def read_search_by_tag(c: Codec, status: int, body: bytes, ra: float | None) -> Any:
    return c.read_search_by_tag(status, body, ra, custom_tag="hx-tag", attempts=2)


def read_search_by_id(c: Codec, status: int, body: bytes, ra: float | None) -> Any:
    return c.read_search_by_id(status, body, ra, order_id=7000000046)


READS: dict[str, tuple[Callable[..., Any], dict[str, tuple[int, bytes, float | None]]]] = {
    "place": (
        read_place,
        {
            "success": (200, envelope(orderId=7000000046), None),
            "id as text": (200, envelope(orderId="7000000046"), None),
            "id as a whole float": (200, envelope(orderId=7000000046.0), None),
            "no id": (200, envelope(), None),
            "null id": (200, envelope(orderId=None), None),
            "id not a number": (200, envelope(orderId="x"), None),
            "id a fraction": (200, envelope(orderId=1.5), None),
            "id a bool": (200, envelope(orderId=True), None),
            "rejected with an id": (200, envelope(False, 2, "dup", orderId=5), None),
            **{
                f"code {n}": (200, envelope(False, n, f"place refused {n}"), None)
                for n in PLACE_CODES
            },
        },
    ),
    "modify": (
        lambda c, s, b, ra: c.read_modify(s, b, ra),
        {
            "success": (200, envelope(), None),
            **{f"code {n}": (200, envelope(False, n, "no"), None) for n in MODIFY_CODES},
        },
    ),
    "cancel": (
        lambda c, s, b, ra: c.read_cancel(s, b, ra, attempts=4),
        {
            "success": (200, envelope(), None),
            **{f"code {n}": (200, envelope(False, n, None), None) for n in CANCEL_CODES},
        },
    ),
    "search by tag": (
        read_search_by_tag,
        {
            "found": (200, envelope(orders=[{**ORDER_ROW, "customTag": "a"}, ORDER_ROW]), None),
            "found, id as text": (200, envelope(orders=[{**ORDER_ROW, "id": "7000000046"}]), None),
            "not found": (200, envelope(orders=[{**ORDER_ROW, "customTag": "other"}]), None),
            "no orders": (200, envelope(orders=[]), None),
            "orders null": (200, envelope(orders=None), None),
            "refused": (200, envelope(False, 1, "account not found"), None),
        },
    ),
    "search by id": (
        read_search_by_id,
        {
            "found": (200, envelope(order=ORDER_ROW), None),
            "another order": (200, envelope(order={**ORDER_ROW, "id": 5}), None),
            "null order": (200, envelope(order=None), None),
            "no such order": (200, envelope(False, 1, "not found"), None),
            "code 2": (200, envelope(False, 2, None), None),
        },
    ),
}

CASES = [
    pytest.param(read, answer, id=f"{name}: {label}")
    for name, (read, own) in READS.items()
    for label, answer in {**own, **COMMON}.items()
]


@pytest.mark.parametrize(("read", "answer"), CASES)
def test_both_sides_read_an_answer_alike(read, answer):
    status, body, retry_after = answer
    python, rust = both(lambda c: read(c, status, body, retry_after))
    assert python == rust


def test_the_documented_answers_read_as_the_taxonomy_says():
    ok = RUST.read_place(200, envelope(orderId="77"), custom_tag="t", attempts=2)
    assert (ok.order_id, ok.custom_tag, ok.reconciled, ok.attempts) == (77, "t", False, 2)
    for c in (PYTHON, RUST):
        for status, body, expected in [
            (200, envelope(False, 2, "dup"), "OrderRejectedError"),
            (401, b"", "AuthError"),
            (429, b"", "RateLimitedError"),
            (503, b"", "BrokerUnavailableError"),
            (200, b"garbage", "BrokerUnavailableError"),
        ]:
            with pytest.raises(BrokerError) as caught:
                c.read_place(status, body, 0.5, custom_tag="t")
            assert type(caught.value).__name__ == expected
        with pytest.raises(BrokerError) as caught:
            c.read_cancel(200, envelope(False, 2, "gone"))
        assert type(caught.value).__name__ == "NotFoundError"
        assert c.read_search_by_id(200, envelope(False, 1), order_id=5) is None


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    I64,
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "0", "2", "true", "x", " 77 ", "-5", "1e3"]),
    st.just([]),
    st.just({}),
)


@st.composite
def odd_envelopes(draw: st.DrawFn, payload_key: str) -> bytes:
    data: dict[str, Any] = {}
    for key in ("success", "errorCode", "errorMessage", payload_key):
        if draw(st.booleans()):
            data[key] = draw(VALUES)
    if draw(st.booleans()):
        data["success"] = True
    if draw(st.booleans()):
        data["errorCode"] = 0
    return json.dumps(data).encode()


@settings(max_examples=800, deadline=None)
@given(odd_envelopes("orderId"))
def test_both_sides_read_any_place_envelope_alike(body):
    python, rust = both(lambda c: read_place(c, 200, body, None))
    assert python == rust


@settings(max_examples=400, deadline=None)
@given(odd_envelopes("unused"), st.integers(100, 599), st.none() | st.floats(0, 1e6))
def test_both_sides_read_any_status_alike(body, status, retry_after):
    python, rust = both(lambda c: c.read_cancel(status, body, retry_after, attempts=2))
    assert python == rust


@settings(max_examples=500, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(1, 2**53).map(float),
)
def test_both_sides_read_the_same_prices_and_ids_from_an_order(limit, filled, whole_id):
    # Every double, as JSON prints it: both parsers must land on the same one (correctly rounded).
    row = {**ORDER_ROW, "limitPrice": limit, "filledPrice": filled, "id": whole_id}
    body = envelope(order=row)
    python, rust = both(lambda c: c.read_search_by_id(200, body, order_id=int(whole_id)))
    assert python == rust
    assert python[1] is not None and python[1].limit_price == limit
