"""Drill 3, stale connections: the broker closes keep-alive connections left idle for 30 ms (as
load balancers do, here between a bot's calls, paced around that figure so that reuse races
the close), and resets a pooled connection just as one placement in twenty is written (the request
read, the connection aborted, nothing done).

Each client is driven on its own (`production`: Rust serves every mutation; `off`: Python
does). Both must tell "never sent" (repeat it) from "maybe sent" (look it up first): no
customTag placed twice, and no error reaches the caller for a call the broker never processed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.sim import FaultRule

from .kit import (
    duplicates,
    finish,
    gateway,
    open_positions,
    ops,
    orders_of,
    projectx,
    rows,
    start,
    summary,
    surfaced_errors,
    total,
)

pytestmark = [pytest.mark.drill, pytest.mark.timeout(240)]

PLACE = "/api/Order/place"
IDLE_CLOSE_MS = 30.0
TRADES = 60


@pytest.mark.drill_id(3, "stale connections")
@pytest.mark.parametrize(("stage", "client"), [("production", "rust"), ("off", "python")])
def test_idle_closes_and_resets_are_never_duplicates_nor_errors(
    tmp_path: Path, figures, stage: str, client: str
) -> None:
    sim = gateway(
        rate_limit=False,
        idle_close_ms=IDLE_CLOSE_MS,
        # 5%: a placement reset on all four of its attempts (a real, not a spurious, failure)
        # stays a one-in-160,000 event, not a flaky drill.
        faults=[FaultRule(path=PLACE, kind="drop_before", probability=0.05)],
        seed=5,
    )
    try:
        overrides, env = projectx(sim)
        run = start(
            tmp_path, "run", "--json", f"workload.trades={TRADES}", "workload.rate_limit=false",
            f"workload.pace_ms={IDLE_CLOSE_MS}", f"rollout.start_stage={stage}",
            "broker.retry_delays_s=[0.05,0.1,0.2]", *overrides, env=env,
        )  # fmt: skip
        out, err = finish(run, timeout=200)
        data = summary(out, err)
        ledger = sim.ledger()
        stats = sim.stats()
        positions = open_positions(sim, data["account_id"])
    finally:
        sim.stop()

    mine = orders_of(ledger, data["run"])
    placements = ops(data)["place_order"]
    resets = stats["faults_by_path"].get(f"drop_before {PLACE}", 0)
    figures.add(f"{client}: round trips completed", f"{data['round_trips']['completed']}/{TRADES}")
    figures.add(f"{client}: connections opened / closed idle by the broker", (
        stats["connections"], stats["idle_closed"]
    ))  # fmt: skip
    figures.add(f"{client}: placements reset as written (not processed)", resets)
    figures.add(f"{client}: placements / orders the broker holds", (placements["calls"], len(mine)))
    repeated = rows(
        f"sqlite:///{tmp_path / 'harness.db'}",
        "SELECT count(*) AS n FROM outcomes WHERE op = 'place_order' AND attempts > 1",
    )[0]["n"]
    figures.add(f"{client}: placements sent more than once (looked up first)", repeated)
    figures.add(f"{client}: duplicate orders", duplicates(mine))
    figures.add(f"{client}: errors surfaced to the caller", surfaced_errors(data))
    figures.add(f"{client}: fallbacks, reconciliations", (
        total(data, "fallbacks"), total(data, "reconciled")
    ))  # fmt: skip

    assert stats["idle_closed"] > 0 and resets > 0  # the drill's faults happened
    assert duplicates(mine) == 0
    assert len(mine) == placements["calls"]  # each placement exactly once at the broker
    assert surfaced_errors(data) == 0 and data["problems"] == []
    assert data["round_trips"]["completed"] == TRADES
    assert positions == []
    mutations = [ops(data)[op] for op in ("place_order", "modify_order", "cancel_order")]
    on_rust = sum(o["served_by_rust"] for o in mutations)
    assert on_rust == (sum(o["calls"] for o in mutations) if client == "rust" else 0)
