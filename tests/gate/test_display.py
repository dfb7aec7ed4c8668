"""What the gate shows where it has no data: no figure (`-` in the table, null in JSON), never a
number that looks like evidence (not_slower read 1.000 when Rust had no latency yet)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from run.kit import harness

from harness.config import Criterion, RecorderConfig
from harness.gate import OpFigures, Outcome, SideFigures, WindowFigures, judge
from harness.operations import Operation
from harness.recorder import OutcomeRecord, Recorder
from harness.sketch import LatencySketch
from harness.store.db import open_engine
from harness.store.runs import start_run
from harness.store.state import ensure_state

from .test_verdict import gate, stage

PLACE = Operation.PLACE_ORDER
LATENCY_FIGURES = (Criterion.p50_ratio, Criterion.p99_ratio, Criterion.not_slower)


def _sketch(n: int) -> LatencySketch:
    out = LatencySketch()
    out.add_many(np.random.default_rng(n).lognormal(np.log(90_000), 0.5, n))
    return out


@pytest.mark.parametrize(
    ("rust", "python"),
    [
        (SideFigures(50, errors=50), SideFigures(50, latency=_sketch(50))),  # Rust all failed
        (SideFigures(50, latency=_sketch(50)), SideFigures(0)),  # no Python call yet
        (SideFigures(0), SideFigures(0)),
    ],
)
def test_a_latency_figure_without_latency_on_a_side_is_absent(rust, python):
    figures = WindowFigures("canary", 0, 10**9, {PLACE: OpFigures(PLACE, rust, python)})
    verdict = judge(figures, gate(), stage())
    for criterion in LATENCY_FIGURES:
        found = verdict.of(PLACE, criterion)
        assert found is not None and found.result is Outcome.INCONCLUSIVE
        assert found.figure is None, (criterion, found.figure, found.detail)
        assert found.to_dict()["figure"] is None
    detail = verdict.of(PLACE, Criterion.not_slower).detail  # type: ignore[union-attr]
    assert f"rust n={rust.latency.n}, python n={python.latency.n}" in detail


def test_with_latency_on_both_sides_not_slower_has_its_figure():
    both = OpFigures(
        PLACE, SideFigures(50, latency=_sketch(50)), SideFigures(60, latency=_sketch(60))
    )
    verdict = judge(WindowFigures("canary", 0, 10**9, {PLACE: both}), gate(), stage())
    found = verdict.of(PLACE, Criterion.not_slower)
    assert found is not None and found.figure is not None and 0.0 <= found.figure <= 1.0


def test_harness_gate_shows_a_dash_and_null_where_rust_has_no_latency(store_url, tmp_path):
    """Through the real CLI: a canary stage where only Python has served calls yet."""
    env = {"HARNESS_DB_URL": store_url}
    first = harness(tmp_path, "gate", "--json", "rollout.start_stage=canary", env=env)
    assert first.returncode == 3, first.stderr  # the stage begins now: INCONCLUSIVE
    engine = open_engine(store_url)
    # A reader writes nothing: the stage's window starts when a run or an action writes the
    # rollout state, as `harness run` does before its first call.
    ensure_state(engine, "canary")
    run = start_run(engine, kind="test", config={}, native_available=True)
    recorder = Recorder(engine, RecorderConfig(flush_interval_s=0.05), spill_dir=tmp_path, name="g")
    now = time.time_ns()
    for i in range(40):
        fields = ("place_order", "canary", "python", "python", False, None, True, None, None)
        recorder.record(OutcomeRecord(now + i, run, *fields, 900.0 + i, 1, 200, None, None, None))
    assert recorder.flush(30)
    recorder.close()
    engine.dispose()
    args = ("gate", "rollout.start_stage=canary")
    done = harness(tmp_path, *args, "--json", env=env)
    assert done.returncode == 3, done.stderr
    judged = {
        c["criterion"]: c for c in json.loads(done.stdout)["criteria"] if c["op"] == "place_order"
    }
    for criterion in LATENCY_FIGURES:
        assert judged[criterion.value]["figure"] is None, judged[criterion.value]
    table = harness(tmp_path, *args, env=env)
    [line] = [
        ln
        for ln in table.stdout.splitlines()
        if ln.startswith("place_order") and "not_slower" in ln
    ]
    cells = [c.strip() for c in line.split("│")]
    assert cells[3] == "-", line  # the figure column
    assert "1.000" not in line and "rust n=0, python n=40" in line
