"""A bot's process whose calls carry values no column of the store can hold: `harness.open()` at
stage `production` with the embedded simulator (Rust serves; with `TOPSTEPX_USE_RUST=false` in
the environment, Python does), a cancel of order 2**64 and a modify of order -(2**63)-1 (both
refused by the client with `InvalidInputError`, and recorded), then placements (one tagged with
a NUL byte and a terminal escape, one with a 300-character tag: both refused by the customTag
rule, and recorded), then `aclose()`. Prints one
JSON object: what the process counted, and how long closing took.

    python tests/drills/poisoning_bot.py DB_URL PLACEMENTS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import harness
from harness.errors import InvalidInputError


async def main(db_url: str, placements: int) -> dict[str, object]:
    # No order shadows (production samples 1%): every row the writer counts is an outcome.
    h = harness.open(
        [
            f"db.url={db_url}",
            "broker.sim.profile=bench",
            "rollout.start_stage=production",
            "rollout.stages.5.shadow_sample_rate=0.0",
        ]
    )
    account = (await h.orders.accounts())[0].id
    contract = (await h.orders.resolve_contract("MNQ")).id
    refused = 0
    for call in (
        h.orders.cancel_order(account, 2**64),
        h.orders.modify_order(account, -(2**63) - 1, size=1),
    ):
        try:
            await call
        except InvalidInputError:
            refused += 1
    tags = {0: "bot-\x00-\x1b[31m-tag", 1: "bot-" + "t" * 300}
    for i in range(placements):
        side = "buy" if i % 2 else "sell"
        try:
            await h.orders.place_market_order(account, contract, side, 1, custom_tag=tags.get(i))
        except InvalidInputError:
            refused += 1
    made = sum(c.calls for c in h.stats().calls.values())
    closing = time.monotonic()
    await h.aclose()
    close_s = time.monotonic() - closing
    rec = h.stats().recorder
    return {
        "run": h.run_id,
        "calls_made": made,
        "refused_by_client": refused,
        "written": rec.written,
        "dropped": rec.dropped,
        "close_s": round(close_s, 2),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2])))), flush=True)
