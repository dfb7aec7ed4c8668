"""Many calls in flight on one client: one shared login, every order placed exactly once."""

from __future__ import annotations

import asyncio

from orderkit import ACCOUNT, requests

from harness.sim import FaultRule


async def test_fifty_concurrent_places_make_fifty_orders_with_one_login(client, clean_sim):
    tags = [f"conc-{i:02d}" for i in range(50)]
    placed = await asyncio.gather(
        *(
            client.place_market_order(ACCOUNT, "MNQ", i % 2, 1, custom_tag=t)
            for i, t in enumerate(tags)
        )
    )
    assert sorted(p.custom_tag for p in placed) == tags
    assert len({p.order_id for p in placed}) == 50
    ledger_tags = sorted(o["customTag"] for o in clean_sim.ledger())
    assert ledger_tags == tags
    assert requests(clean_sim, "/api/Auth/loginKey") == 1
    assert requests(clean_sim, "/api/Contract/search") >= 1


async def test_concurrent_places_under_random_faults_never_duplicate(client, clean_sim):
    clean_sim.set_faults(
        [
            FaultRule(path="/api/Order/place", kind="error_after", probability=0.2),
            FaultRule(path="/api/Order/place", kind="drop_after", probability=0.1),
            FaultRule(path="/api/Order/place", kind="error_before", probability=0.1),
        ]
    )
    await client.resolve_contract("MNQ")
    results = await asyncio.gather(
        *(
            client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag=f"chaos-{i}")
            for i in range(30)
        ),
        return_exceptions=True,
    )
    placed = [r for r in results if not isinstance(r, BaseException)]
    by_tag = {}
    for row in clean_sim.ledger():
        by_tag.setdefault(row["customTag"], []).append(row["id"])
    for p in placed:
        assert by_tag[p.custom_tag] == [p.order_id]
    assert len(placed) >= 25  # with 4 attempts per call, a total failure is vanishingly rare


async def test_one_session_and_contract_cache_serve_every_thread(client, clean_sim):
    await client.place_market_order(ACCOUNT, "MNQ", "buy", 1, custom_tag="main")

    def in_thread(k: int) -> list:
        async def run() -> list:
            return [
                await client.place_market_order(ACCOUNT, "MNQ", "sell", 1, custom_tag=f"t{k}-{i}")
                for i in range(5)
            ]

        return asyncio.run(run())  # each thread runs its own event loop

    results = await asyncio.gather(*(asyncio.to_thread(in_thread, k) for k in range(3)))
    assert sorted(p.custom_tag for batch in results for p in batch) == sorted(
        f"t{k}-{i}" for k in range(3) for i in range(5)
    )
    assert len(clean_sim.ledger()) == 16
    assert requests(clean_sim, "/api/Auth/loginKey") == 1
    assert requests(clean_sim, "/api/Contract/search") == 1
