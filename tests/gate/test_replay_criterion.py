"""The gate's `replay` criterion (`gate.replay_required`): judged from the replay evidence of
the current build, for the migration as a whole."""

from __future__ import annotations

import pytest

from harness.config.schema import Criterion, GateConfig, Percentages, StageConfig
from harness.gate import Outcome, WindowFigures, judge
from harness.gate.figures import ReplayFigures

SECOND = 1_000_000_000
ORDERS = ("place_order", "modify_order", "cancel_order")


def verdict(replay: ReplayFigures | None):
    stage = StageConfig(name="canary", percent=Percentages(5.0), shadow_sample_rate=0.25)
    figures = WindowFigures("canary", 0, 600 * SECOND, {}, replay)
    return judge(figures, GateConfig(min_soak_s=0), stage, ORDERS, migration="orders")


@pytest.mark.parametrize(
    ("replay", "expected", "says"),
    [
        (ReplayFigures("b1"), Outcome.INCONCLUSIVE, "no captures to replay"),
        (ReplayFigures("b1", ("place_order",)), Outcome.INCONCLUSIVE, "yet for place_order"),
        (
            ReplayFigures("b1", ("cancel_order", "place_order"), {"place_order": (12, 0)}),
            Outcome.INCONCLUSIVE,
            "no clean harness replay of build b1 yet for cancel_order",
        ),
        (
            ReplayFigures("b1", ("place_order",), {"place_order": (0, 0)}),  # all skipped
            Outcome.INCONCLUSIVE,
            "yet for place_order",
        ),
        (
            ReplayFigures(
                "b1",
                ("cancel_order", "place_order"),
                {"place_order": (11, 1), "cancel_order": (4, 0)},
            ),
            Outcome.FAIL,
            "mismatched on place_order",
        ),
        (
            ReplayFigures(
                "b1",
                ("cancel_order", "place_order"),
                {"place_order": (12, 0), "cancel_order": (4, 0)},
            ),
            Outcome.PASS,
            "place_order 12 matched",
        ),
    ],
    ids=[
        "nothing-captured",
        "not-replayed",
        "one-op-not-replayed",
        "only-skipped",
        "mismatch",
        "clean",
    ],
)
def test_the_replay_criterion_needs_a_clean_replay_of_every_captured_operation(
    replay, expected, says
):
    judged = verdict(replay)
    found = judged.of(None, Criterion.replay)
    assert found is not None and found.result is expected and says in found.detail
    assert not found.critical  # a FAIL holds the stage, it does not roll it back
    if expected is not Outcome.PASS:
        assert judged.result is not Outcome.PASS


def test_without_replay_required_there_is_no_replay_criterion():
    assert verdict(None).of(None, Criterion.replay) is None
