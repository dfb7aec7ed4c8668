"""The gate's config: the shipped defaults carry not_slower_margin, and bad values are refused."""

from __future__ import annotations

import pytest

from harness.config import ConfigError, compose
from harness.operations import Operation


def test_the_shipped_gate_config_has_a_not_slower_margin_for_every_operation():
    cfg = compose([])
    for op in Operation:
        assert cfg.gate.criteria(op).not_slower_margin == 0.05


@pytest.mark.parametrize("value", ["0", "-0.1", "1.5"])
def test_a_margin_outside_0_to_1_is_refused_naming_the_key(value):
    with pytest.raises(ConfigError) as caught:
        compose([f"gate.ops.place_order.not_slower_margin={value}"])
    assert "gate.ops.place_order.not_slower_margin" in str(caught.value)
