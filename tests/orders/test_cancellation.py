"""A bot that wraps its calls in time-outs keeps a working client: a long storm of calls, most of
them cancelled by `asyncio.wait_for`, leaves no connection slot behind (httpcore issue #1093: a
request cancelled while it waits for a pool slot used to leave a never-connected connection that
held the slot forever), and no order is placed twice.
"""

from __future__ import annotations

import asyncio
import random
import time

from orderkit import ACCOUNT, requests, with_settings
from waitkit import async_wait_until

from harness.orders import open_client

STORM_S = 3.0
PROMPT_S = 30.0  # "promptly": not stuck on a leaked slot (load never takes this long)


async def test_a_client_wrapped_in_time_outs_keeps_working(impl, settings, clean_sim):
    clean_sim.set_faults([], latency_ms=2.0)  # every answer takes a little while
    tight = with_settings(settings, max_connections=2)
    rng = random.Random(12)
    tags: list[str] = []
    placed = {}
    cancelled = finished = 0
    async with open_client(tight, impl) as client:  # type: ignore[arg-type]
        await client.resolve_contract("MNQ")
        deadline = time.monotonic() + STORM_S
        while time.monotonic() < deadline:
            calls = []
            for _ in range(2):
                tag = f"storm-{len(tags)}"
                tags.append(tag)
                calls.append(client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag=tag))
                calls.append(client.accounts())
            # Four calls in five get less time than an answer takes; the others get plenty.
            limits = [rng.uniform(0.0, 0.002) if rng.random() < 0.8 else 0.5 for _ in calls]
            results = await asyncio.gather(
                *(asyncio.wait_for(call, limit) for call, limit in zip(calls, limits, strict=True)),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, TimeoutError):
                    cancelled += 1
                elif isinstance(result, BaseException):
                    raise result
                else:
                    finished += 1
                    if hasattr(result, "custom_tag"):
                        placed[result.custom_tag] = result.order_id
        assert cancelled > finished > 0, (cancelled, finished)  # mostly cancelled, some not

        # After the storm: a normal read and a normal placement answer promptly, first time.
        assert len(await asyncio.wait_for(client.accounts(), PROMPT_S)) == 2
        after = await asyncio.wait_for(
            client.place_market_order(ACCOUNT, "MNQ", "sell", 1, custom_tag="after-storm"),
            PROMPT_S,
        )
        assert (after.attempts, after.reconciled) == (1, False)

    # A call cancelled here goes on in the client's background when it is Rust's (its tokio
    # task ends what it started): wait until the simulator has answered every request it got,
    # and, from Rust, got one for every call started, before the ledger is judged.
    started = len(tags) + 1

    def settled() -> bool:
        stats = clean_sim.stats()
        if sum(stats["requests"].values()) != sum(stats["responses"].values()):
            return False
        return impl != "rust" or (
            requests(clean_sim, "/api/Order/place") == started
            and requests(clean_sim, "/api/Account/search") == started
        )

    await async_wait_until(settled, what="every started call answered by the simulator")

    # The ledger: only the storm's tags and the last one; every answered placement stands under
    # its own tag (the conftest judge checks that no tag appears twice).
    ledger = {row["customTag"]: row["id"] for row in clean_sim.ledger()}
    assert set(ledger) <= {*tags, "after-storm"}
    assert ledger["after-storm"] == after.order_id
    for tag, order_id in placed.items():
        assert ledger[tag] == order_id
