"""The dashboard's figures keep significant digits: a latency of microseconds is not shown as
`0.001` ms (three fixed decimals lost most of a fast call's figure), and no figure is shown
further than rounding to three significant digits allows from the value it shows."""

from __future__ import annotations

import math

import pytest

from harness.tui import format as fmt


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0014237, "0.00142"),
        (0.00001, "0.0000100"),
        (0.041, "0.0410"),
        (0.9996, "1.00"),
        (2.4249, "2.42"),
        (9.996, "10.0"),
        (90.14, "90.1"),
        (99.96, "100"),
        (1204.4, "1,204"),
        (0.0, "0"),
        (None, fmt.NONE),
    ],
)
def test_milliseconds_show_three_significant_digits(value, shown):
    assert fmt.ms(value) == shown


def test_every_shown_latency_is_within_half_a_unit_of_its_third_digit():
    value = 0.000731
    while value < 50_000:
        shown = float(fmt.ms(value).replace(",", ""))
        digit = 10 ** (math.floor(math.log10(value)) - 2)
        assert abs(shown - value) <= digit / 2 + 1e-12 or value >= 100, (value, shown)
        assert abs(shown - value) / value <= 0.005 + 1e-9, (value, shown)
        value *= 1.0137
