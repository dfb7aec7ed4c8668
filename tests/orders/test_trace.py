"""A call's trace on both sides equals what the simulator itself received and answered.

The simulator's own request log is taken from inside it (every `App.execute`: the request
body as it arrived, the status and body it answered, or the dropped connection), so the trace
is judged against the other end of the wire, not against the client's idea of it. Then the
use it is made for: the side that did not serve the call builds the same requests from the
same arguments and reads the recorded answers to the same outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from orderkit import ACCOUNT, MNQ, SECRET_KEY

from harness.errors import (
    AuthError,
    BrokerError,
    BrokerUnavailableError,
    NotFoundError,
    RateLimitedError,
)
from harness.orders import trace as tracing
from harness.orders.args import check_market
from harness.orders.codec import codec
from harness.orders.retry_after import parse_retry_after
from harness.orders.trace import Exchange, traced
from harness.sim import FaultRule, Simulator

PLACE = "/api/Order/place"
AUTH = ("/api/Auth/loginKey", "/api/Auth/validate")


@dataclass(frozen=True)
class Seen:
    """One request as the simulator received and answered it."""

    path: str
    request: bytes
    status: int | None  # None: the connection was dropped instead of answered
    response: bytes
    retry_after: float | None


@pytest.fixture
def sim_log(clean_sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Seen]]:
    """Every request the simulator answers from now on (its `App.execute`, wrapped)."""
    app = clean_sim.app
    execute = app.execute
    log: list[Seen] = []

    def recording(req: Any, rule: Any) -> Any:
        out = execute(req, rule)
        if req.path.startswith("/api/"):
            advice = None
            for line in out.headers.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"retry-after":
                    advice = parse_retry_after(value.decode().strip(), time.time())
            status = None if out.drop else out.status
            body = b"" if out.drop else out.body
            log.append(Seen(req.path, req.body, status, body, advice))
        return out

    monkeypatch.setattr(app, "execute", recording)
    yield log


def assert_trace_is_the_log(exchanges: list[Exchange], log: list[Seen]) -> None:
    """Same requests in the same order, each with what the simulator answered."""
    assert [e.path for e in exchanges] == [s.path for s in log]
    for exchange, seen in zip(exchanges, log, strict=True):
        if seen.path in AUTH:  # secrets: recorded as REDACTED
            assert exchange.request == tracing.REDACTED
        else:
            assert exchange.request == seen.request
        if seen.status is None:
            assert (exchange.status, exchange.failure, exchange.response) == (None, "lost", b"")
            continue
        assert exchange.failure is None
        assert exchange.status == seen.status
        if seen.path in AUTH:
            assert exchange.response == tracing.REDACTED
        else:
            assert exchange.response == seen.response
        if seen.retry_after is None:
            assert exchange.retry_after is None
        else:
            assert exchange.retry_after == pytest.approx(seen.retry_after, abs=1.0)


async def warm(client: Any) -> None:
    """Log in and resolve the contract first: the traced call then makes only its own."""
    await client.accounts()
    await client.resolve_contract(MNQ)


async def test_a_retry_and_a_fresh_login_are_traced_as_the_simulator_saw_them(
    client, clean_sim, sim_log
):
    await warm(client)
    sim_log.clear()
    clean_sim.set_faults(
        [
            FaultRule(path=PLACE, kind="rate_limit", count=1, retry_after=0.01),
            FaultRule(path=PLACE, kind="expire_token", count=1),
        ]
    )
    with traced() as trace:
        placed = await client.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="tr-1")
    assert [(s.path, s.status) for s in sim_log] == [
        (PLACE, 429),
        (PLACE, 401),
        ("/api/Auth/loginKey", 200),
        (PLACE, 200),
    ]
    assert_trace_is_the_log(trace.exchanges, sim_log)
    assert trace.exchanges[0].retry_after == pytest.approx(0.01)
    assert placed.attempts == 3
    assert SECRET_KEY not in repr(trace)


async def test_a_token_refresh_is_traced(client, clean_sim, sim_log):
    clean_sim.set_faults([], token_ttl_s=0.3)
    await warm(client)
    logged_in = time.time()
    # The token is due for refresh at 90% of its 0.3 s: wait until the clock has passed it.
    while time.time() < logged_in + 0.3:
        await asyncio.sleep(0.02)
    sim_log.clear()
    with traced() as trace, pytest.raises(NotFoundError):
        await client.cancel_order(ACCOUNT, 123456)  # no such order: refused, after the refresh
    paths = [s.path for s in sim_log]
    assert paths[0] == "/api/Auth/validate", paths
    assert paths[-1] == "/api/Order/cancel"
    assert_trace_is_the_log(trace.exchanges, sim_log)


async def test_a_call_that_raises_keeps_its_trace_reconciling_look_ups_included(
    client, clean_sim, sim_log
):
    await warm(client)
    sim_log.clear()
    clean_sim.set_faults([FaultRule(path=PLACE, kind="error_before", count=None, status=503)])
    with traced() as trace, pytest.raises(BrokerUnavailableError) as caught:
        await client.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="tr-2")
    assert caught.value.maybe_sent
    paths = [s.path for s in sim_log]
    assert paths.count(PLACE) == caught.value.attempts == 4  # retry_delays_s has three delays
    assert paths.count("/api/Order/search") == 4  # a look-up by tag after each unknown outcome
    assert_trace_is_the_log(trace.exchanges, sim_log)


async def test_a_lost_answer_is_traced_as_lost(client, clean_sim, sim_log):
    await warm(client)
    sim_log.clear()
    clean_sim.set_faults([FaultRule(path=PLACE, kind="drop_after", count=1)])
    with traced() as trace:
        placed = await client.place_market_order(ACCOUNT, MNQ, "buy", 1, custom_tag="tr-3")
    assert placed.reconciled
    assert [e.failure for e in trace.exchanges][:1] == ["lost"]
    assert_trace_is_the_log(trace.exchanges, sim_log)


async def test_nothing_is_recorded_outside_a_block_and_a_block_holds_only_its_calls(
    client, clean_sim
):
    await client.accounts()  # outside any block
    assert tracing.current() is None
    with traced() as outer:
        await client.accounts()
        with traced() as inner:
            await client.get_order(ACCOUNT, 1)
    assert tracing.current() is None
    assert [e.path for e in outer.exchanges] == ["/api/Account/search"]
    assert [e.path for e in inner.exchanges] == ["/api/Order/searchById"]


@pytest.mark.parametrize("other", ["python", "rust"])
async def test_the_other_side_builds_and_reads_the_traced_call_alike(
    impl, client, clean_sim, other
):
    """The order shadow's use: same arguments -> same request; same answers -> same reading."""
    await warm(client)
    clean_sim.set_faults([FaultRule(path=PLACE, kind="rate_limit", count=1, retry_after=0.01)])
    with traced() as trace:
        placed = await client.place_market_order(ACCOUNT, MNQ, "sell", 2, custom_tag="tr-4")
    contract = await client.resolve_contract(MNQ)
    args = check_market(ACCOUNT, MNQ, "sell", 2, "tr-4")
    steps = codec(other)
    built = steps.build_place(args, contract, "tr-4")
    places = [e for e in trace.exchanges if e.path == PLACE]
    assert [e.request for e in places] == [built.content, built.content]
    first, last = places
    with pytest.raises(RateLimitedError) as caught:
        steps.read_place(first.status, first.response, first.retry_after, custom_tag="tr-4")
    assert caught.value.retry_after == first.retry_after
    read = steps.read_place(last.status, last.response, last.retry_after, custom_tag="tr-4")
    assert read.order_id == placed.order_id
    assert (read.custom_tag, read.reconciled) == ("tr-4", False)
    assert steps.read_place(last.status, last.response, custom_tag="tr-4", attempts=2) == placed


async def test_a_401_read_on_its_own_is_an_auth_error_on_both_sides():
    for side in ("python", "rust"):
        with pytest.raises(AuthError) as caught:
            codec(side).read_cancel(401, b"")
        assert isinstance(caught.value, BrokerError) and caught.value.http_status == 401
