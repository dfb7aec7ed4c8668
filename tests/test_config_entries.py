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
