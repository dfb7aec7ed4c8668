"""Entries of the config's mappings of sections (`gate.ops.<op>`, `rollout.migrations.<name>`)
by any name, from the command line as from YAML: an operation a bot registers at run time has no
entry in the packaged files, and `gate.ops.<op>` is documented for any operation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.config import CONF_DIR, ConfigError, compose
from harness.config.fast import compose_packaged

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize(
    "override",
    [
        "+gate.ops.ema.min_samples=20",
        "gate.ops.ema.min_samples=20",
        "++gate.ops.ema.min_samples=20",
    ],
)
def test_one_criterion_of_an_operation_the_files_do_not_name(override):
    assert compose_packaged(CONF_DIR, [override], None) is None  # Hydra's to compose
    cfg = compose([override, "gate=quick"])
    assert cfg.gate.criteria("ema").min_samples == 20
    assert cfg.gate.criteria("ema").max_error_rate == 0.01  # the rest: OpCriteria's defaults
    assert cfg.gate.criteria("place_order").min_samples == 30  # the files' entries stay


def test_a_whole_entry_and_then_a_key_of_it_apply_in_order():
    cfg = compose(
        ["+gate.ops.ema={min_samples:20,critical:[error_rate]}", "gate.ops.ema.min_samples=9"]
    )
    assert (cfg.gate.criteria("ema").min_samples, cfg.gate.criteria("ema").critical) == (
        9,
        ["error_rate"],
    )


def test_an_entry_the_files_hold_takes_a_leading_plus_too():
    cfg = compose(["+gate.ops.place_order.min_samples=7"])
    assert cfg.gate.criteria("place_order").min_samples == 7
    assert cfg.gate.criteria("place_order").critical == ["error_rate", "fallback_rate", "shadow"]


def test_a_migration_the_files_do_not_name():
    cfg = compose(["rollout.migrations.signals={operations:[ema],start_stage:canary}"])
    assert cfg.rollout.migration_of("ema") == "signals"
    assert cfg.rollout.start_of("signals") == "canary"
    cfg = compose(["+rollout.migrations.signals.operations=[ema]"])
    assert cfg.rollout.operations_of("signals") == ["ema"]


@pytest.mark.parametrize(
    ("override", "field", "value"),
    [
        ("gate.ops.ema.min_samples=ten", "gate.ops.ema.min_samples", "ten"),
        ("gate.ops.ema.nosuch=1", "gate.ops.ema.nosuch", "1"),
        ("gate.ops.ema.critical=[bogus]", "gate.ops.ema.critical.0", "bogus"),
        (
            "rollout.migrations.signals.start_stage=nosuch",
            "rollout.migrations.signals.start_stage",
            "nosuch",
        ),
    ],
)
def test_a_wrong_value_in_a_new_entry_names_its_full_key(override, field, value):
    with pytest.raises(ConfigError) as caught:
        compose([override])
    assert (caught.value.field, caught.value.value) == (field, value)


def test_the_same_entry_from_yaml(tmp_path):
    (tmp_path / "gate").mkdir()
    (tmp_path / "gate" / "mine.yaml").write_text(
        "defaults:\n  - default\n  - _self_\nops:\n  ema:\n    min_samples: 20\n"
    )
    cfg = compose(["gate=mine"], config_dir=tmp_path)
    assert cfg.gate.criteria("ema").min_samples == 20


def test_the_cli_takes_it_and_refuses_a_wrong_one_in_one_line(tmp_path):
    def harness(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "harness", *args]
        return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    done = harness("status", "--cfg", "job", "+gate.ops.ema.min_samples=20")
    assert done.returncode == 0, done.stderr
    assert "ema:" in done.stdout and "min_samples: 20" in done.stdout
    done = harness("status", "gate.ops.ema.min_samples=ten")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "harness status: error: invalid gate.ops.ema.min_samples='ten': must be an integer"
    ]


def test_one_operations_percentage_at_a_stage_whose_percent_is_one_number():
    cfg = compose(["rollout.stages.2.percent.place_order=10"])
    canary = cfg.rollout.stages[2]
    assert canary.name == "canary" and canary.percent.plain() == {"*": 5.0, "place_order": 10.0}
    assert [canary.percent.of(op) for op in ("place_order", "cancel_order", "ema")] == [10, 5, 5]
    again = compose(["rollout.stages.2.percent.place_order=10", "rollout.stages.2.percent.ema=7"])
    assert again.rollout.stages[2].percent.plain() == {"*": 5.0, "place_order": 10.0, "ema": 7.0}
    by_symbol = compose(
        ["rollout=by_symbol", "rollout.migrations.orders.stages.2.percent.place_order=50"]
    )
    mnq = by_symbol.rollout.migrations["orders"].stages[2]
    assert (mnq.name, mnq.percent.of("place_order"), mnq.percent.of("cancel_order")) == (
        "mnq",
        50,
        100,
    )


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ("rollout.stages.2.percent.place_order=140", "within 0..100"),
        ("rollout.stages.3.percent.place_order=1", "must not go down"),
        ("rollout.stages.9.percent.place_order=1", "no stage 9: rollout.stages has stages 0..5"),
        ("rollout.stages.2.percent.Place=1", "not an operation's name"),
        ("rollout.stages.2.percent.place_order=abc", "must be a number"),
        ("rollout.migrations.orders.stages.1.percent.place_order=1", "climbs rollout.stages"),
    ],
)
def test_a_wrong_percentage_of_one_operation_names_its_key(override, reason):
    with pytest.raises(ConfigError) as refused:
        compose([override])
    assert refused.value.field == override.partition("=")[0] and reason in str(refused.value)


def test_a_star_in_a_percent_mapping_is_every_other_operation(tmp_path):
    (tmp_path / "rollout").mkdir()
    (tmp_path / "rollout" / "mine.yaml").write_text(
        "defaults: [default, _self_]\n"
        "stages:\n"
        "  - {name: 'off', percent: 0, shadow_sample_rate: 0.0}\n"
        "  - {name: canary, percent: {'*': 5, aggregate_bars: 50}, shadow_sample_rate: 0.1}\n"
        "  - {name: production, percent: 100, shadow_sample_rate: 0.01}\n"
    )
    cfg = compose(["rollout=mine"], config_dir=tmp_path)
    canary = cfg.rollout.stages[1].percent
    assert (canary.of("aggregate_bars"), canary.of("place_order")) == (50, 5)


@pytest.mark.parametrize(
    ("overrides", "plain"),
    [
        (["rollout.stages.2.percent.place_order=10", "rollout.stages.2.percent=7"], 7.0),
        (
            ["rollout.stages.2.percent=7", "rollout.stages.2.percent.place_order=10"],
            {"*": 7.0, "place_order": 10.0},
        ),
        (
            ["rollout.stages.2.percent.cancel_order=4", "rollout.stages.2.percent={place_order:3}"],
            {"place_order": 3.0},
        ),
    ],
)
def test_a_stages_percent_and_one_operations_apply_in_the_order_given(overrides, plain):
    assert compose(overrides).rollout.stages[2].percent.plain() == plain
