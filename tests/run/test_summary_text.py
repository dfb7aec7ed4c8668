"""The text summary says when rows were lost or wait in a spill file, from the recorder's own
figures (unit test of `print_summary` on a summary object as `build_summary` makes it)."""

from __future__ import annotations

import io
from typing import Any

from harness.run.summary import print_summary


def _summary(**recorder: Any) -> dict[str, Any]:
    side = {"calls": 0, "count": 0, "p50_ms": None, "p99_ms": None}
    op = {
        "op": "place_order", "migration": "orders", "calls": 21, "calls_made": 84,
        "rust_share": None, "not_targeted": 0, "fallbacks": 0,
        "errors": 0, "reconciled": 0, "shadow_comparisons": 0, "shadow_mismatches": 0,
        "rust": side, "python": side,
    }  # fmt: skip
    return {
        "run": "r" * 32, "status": "finished", "stage": "off", "elapsed_s": 3.0,
        "budget_wait_s": 0.0, "exit_status": 4, "interrupted_by": None, "crashed": None,
        "round_trips": {"planned": 12, "completed": 12, "failed": 0, "cancelled": 0,
                        "stopped_out": 0},
        "ops": [op],
        "gate": {
            "migrations": {"orders": {"stage": "off", "verdict": "INCONCLUSIVE", "criteria": []}}
        },
        "stale_runs": [], "problems": [], "leftovers": None, "env_kill": False,
        "native": {"available": True, "error": None},
        "recorder": {"rows": 21, "dropped": 0, "in_spill": 0, "spill_file": None,
                     "earlier_lost": 0, "damaged_files": [], **recorder},
    }  # fmt: skip


def _text(summary: dict[str, Any]) -> str:
    out = io.StringIO()
    print_summary(summary, out)
    return out.getvalue()


def test_rows_the_recorder_dropped_are_said_in_a_line_of_their_own():
    text = _text(_summary(dropped=63))
    assert "recorded: 21 of 84 calls (dropped: 63)" in text
    assert "ROWS LOST: the recorder could not record 63 rows" in text


def test_rows_waiting_in_the_spill_file_are_named_with_the_file():
    text = _text(_summary(in_spill=63, spill_file="/data/harness-spill-x.jsonl"))
    assert "63 rows the database did not take wait in /data/harness-spill-x.jsonl" in text
    assert "ROWS LOST" not in text


def test_rows_an_earlier_run_lost_are_said_with_the_file_kept():
    text = _text(_summary(earlier_lost=2, damaged_files=["/d/harness-spill-y.jsonl.damaged-T"]))
    assert "ROWS LOST by an earlier run: 2 rows" in text
    assert "/d/harness-spill-y.jsonl.damaged-T" in text


def test_nothing_is_said_when_nothing_was_lost():
    text = _text(_summary())
    assert "recorded: 21 of 84 calls (dropped: 0)" in text
    assert "ROWS LOST" not in text and "spill" not in text


def test_shadows_not_compared_are_said_and_nothing_when_every_one_was():
    summary = _summary()
    summary["shadows"] = {"submitted": 40, "skipped": 3, "failed": 1, "abandoned": 0}
    text = _text(summary)
    assert "shadows not compared: 3 skipped (max_in_flight reached" in text
    assert "1 failed to run, 0 abandoned at close" in text
    summary["shadows"] = {"submitted": 40, "skipped": 0, "failed": 0, "abandoned": 0}
    assert "shadows not compared" not in _text(summary)
