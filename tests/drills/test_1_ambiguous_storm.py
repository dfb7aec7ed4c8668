"""Drill 1, ambiguous placement storm: a fifth of placements are created by the broker but
answered with a 5xx or a dropped connection, one in twenty refused with a 503 before anything
happens, and session tokens live 3 s; `harness run` at 50% Rust against a `harness sim` process.

The broker's ledger judges: every customTag placed once (no duplicate), nothing open and no
position at the end; and every ambiguous placement the broker created was settled by a look-up
(`outcomes.reconciled`), one for one with the faults the broker counted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.sim import FaultRule

from .kit import (
    OPEN,
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
    total,
)

pytestmark = [pytest.mark.drill, pytest.mark.timeout(240)]

PLACE = "/api/Order/place"
TRADES = 100
AFTER_ERROR, AFTER_DROP, BEFORE_ERROR = 0.10, 0.10, 0.05
"""Shares of all placements: created then 500, created then dropped, refused with 503 first.
The first matching rule fires, so each rule's own probability is its share of what is left."""
FAULTS = [
    FaultRule(path=PLACE, kind="error_after", probability=AFTER_ERROR),
    FaultRule(path=PLACE, kind="drop_after", probability=AFTER_DROP / (1 - AFTER_ERROR)),
    FaultRule(
        path=PLACE,
        kind="error_before",
        probability=BEFORE_ERROR / (1 - AFTER_ERROR - AFTER_DROP),
    ),
]


@pytest.mark.drill_id(1, "ambiguous placement storm")
def test_ambiguous_placements_are_reconciled_never_duplicated(tmp_path: Path, figures) -> None:
    sim = gateway(rate_limit=False, token_ttl_s=3.0, faults=FAULTS, seed=11)
    try:
        overrides, env = projectx(sim)
        run = start(
            tmp_path, "run", "--json", f"workload.trades={TRADES}", "workload.rate_limit=false",
            "workload.pace_ms=150", "rollout.start_stage=staging_50",
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
    by_path = stats["faults_by_path"]
    created_unanswered = by_path.get(f"error_after {PLACE}", 0) + by_path.get(
        f"drop_after {PLACE}", 0
    )
    refused_first = by_path.get(f"error_before {PLACE}", 0)
    placements = ops(data)["place_order"]
    reconciled = [
        r
        for r in rows(
            f"sqlite:///{tmp_path / 'harness.db'}",
            "SELECT custom_tag, served, fell_back FROM outcomes WHERE reconciled",
        )
    ]
    figures.add("round trips intended", TRADES)
    figures.add("round trips completed", data["round_trips"]["completed"])
    figures.add("placements (place_order calls)", placements["calls"])
    figures.add("placements served by Rust", placements["served_by_rust"])
    figures.add("broker: created then 5xx or dropped", created_unanswered)
    figures.add("broker: 503 before creating", refused_first)
    requests = stats["requests"]
    logins = requests.get("/api/Auth/loginKey", 0), requests.get("/api/Auth/validate", 0)
    figures.add("broker: logins, session refreshes (token TTL 3 s)", logins)
    figures.add("elapsed s", data["elapsed_s"])
    figures.add("orders the simulator holds (this run)", len(mine))
    figures.add("duplicate orders", duplicates(mine))
    open_at_end = [o for o in mine if o["status"] == OPEN]
    unknown = data["leftovers"]["found"]["unknown_tags"]
    figures.add("orders open or in an unknown state at the end", len(open_at_end) + len(unknown))
    figures.add("open positions at the end", len(positions))
    figures.add("fallbacks recorded", total(data, "fallbacks"))
    figures.add("reconciliations recorded", total(data, "reconciled"))
    figures.add("errors surfaced to the workload", total(data, "errors"))

    assert duplicates(mine) == 0
    assert open_at_end == [] and unknown == []
    assert positions == []
    assert created_unanswered > 0 and refused_first > 0  # the storm happened
    # Each placement the broker created unanswered was settled by finding it, once.
    assert len(reconciled) == created_unanswered == placements["reconciled"]
    assert data["recorder"]["dropped"] == 0
    assert total(data, "calls") == total(data, "calls_made")
