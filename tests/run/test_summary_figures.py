"""The run summary's latency columns keep significant digits (unit test of `print_summary`):
two fixed decimals showed a 1.4 us aggregation as 0.00 ms."""

from __future__ import annotations

import io
from typing import Any

from harness.run.summary import print_summary


def _summary(rust: dict[str, Any], python: dict[str, Any]) -> dict[str, Any]:
    op = {
        "op": "aggregate_bars", "migration": "bars", "calls": 21, "calls_made": 21,
        "rust_share": 0.5, "not_targeted": 0, "fallbacks": 0,
        "errors": 0, "reconciled": 0, "shadow_comparisons": 0, "shadow_mismatches": 0,
        "rust": rust, "python": python,
    }  # fmt: skip
    return {
        "run": "r" * 32, "status": "finished", "stage": "canary", "elapsed_s": 3.0,
        "budget_wait_s": 0.0, "exit_status": 0, "interrupted_by": None, "crashed": None,
        "round_trips": {"planned": 1, "completed": 1, "failed": 0, "cancelled": 0,
                        "stopped_out": 0},
        "ops": [op],
        "gate": {"migrations": {"orders": {"stage": "canary", "verdict": "PASS", "criteria": []}}},
        "stale_runs": [], "problems": [], "leftovers": None, "env_kill": False,
        "native": {"available": True, "error": None},
        "recorder": {"rows": 21, "dropped": 0, "in_spill": 0, "spill_file": None,
                     "earlier_lost": 0, "damaged_files": []},
    }  # fmt: skip


def test_latencies_of_microseconds_and_of_seconds_show_four_significant_digits():
    rust = {"p50_ms": 0.0014237, "p99_ms": 0.0211}
    python = {"p50_ms": 12.3456, "p99_ms": 10123.4}
    out = io.StringIO()
    print_summary(_summary(rust, python), out)
    [row] = [line for line in out.getvalue().splitlines() if line.startswith("aggregate_bars")]
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[7:11] == ["0.001424", "0.0211", "12.35", "10,123"], row
