"""A process forked after a client was used (multiprocessing's 'fork' start method, pre-fork
servers) has working clients: the one it inherited and new ones. A child that hangs fails the
test after a time-out instead of hanging the suite; the parent's client keeps working too.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection

import pytest
from orderkit import ACCOUNT, orders_tagged

from harness.orders import ClientSettings, OrderClient, PlacedOrder, open_client

CHILD_TIME_OUT_S = 30.0


async def place(client: OrderClient, tag: str) -> PlacedOrder:
    return await asyncio.wait_for(
        client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag=tag), 10.0
    )


def in_child(
    inherited: OrderClient | None,
    settings: ClientSettings,
    impl: str,
    tag: str,
    answer: multiprocessing.connection.Connection,
) -> None:
    """The forked child: one placement on its own event loop, with the inherited client or a
    new one; the outcome goes back through the pipe."""

    async def run() -> tuple[int, int]:
        client = inherited or open_client(settings, impl)  # type: ignore[arg-type]
        placed = await place(client, tag)
        await client.aclose()
        return placed.order_id, placed.attempts

    try:
        answer.send(("ok", asyncio.run(run())))
    except BaseException as exc:
        answer.send(("error", repr(exc)))


@pytest.mark.parametrize("which", ["inherited", "new"])
def test_a_forked_child_has_a_working_client(impl, settings, clean_sim, which):
    parent = open_client(settings, impl)  # type: ignore[arg-type]
    asyncio.run(place(parent, "before-fork"))  # session, pool and runtime now in use

    fork = multiprocessing.get_context("fork")
    receive, send = fork.Pipe(duplex=False)
    tag = f"child-{which}"
    child = fork.Process(
        target=in_child, args=(parent if which == "inherited" else None, settings, impl, tag, send)
    )
    child.start()
    try:
        if not receive.poll(CHILD_TIME_OUT_S):
            pytest.fail(f"the forked child hung: no answer within {CHILD_TIME_OUT_S} s")
        kind, value = receive.recv()
    finally:
        child.kill()
        child.join(5)
    assert kind == "ok", value
    order_id, attempts = value
    [row] = orders_tagged(clean_sim, tag)
    assert (row["id"], attempts) == (order_id, 1)

    # The parent's pooled connections and event-loop bridge were left alone by the child.
    after = asyncio.run(place(parent, "after-fork"))
    assert (after.attempts, after.reconciled) == (1, False)
    asyncio.run(parent.aclose())
