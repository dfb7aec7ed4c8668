"""`gate.trading_hours` at its edges, with fixed instants: CME Globex's Sunday-Friday session
wrapping past midnight with its daily break, a same-day session, both daylight-saving changes
in Chicago; and the config refusing a bad window, zone, day or `auto_promote_until` with one
line naming the key and the value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from harness.config import auto_promote_until, compose, trading_hours
from harness.config.hours import parse_trading_hours
from harness.errors import ConfigError

GLOBEX = parse_trading_hours(
    "gate.trading_hours", "America/Chicago", "17:00", "16:00", ["sun", "mon", "tue", "wed", "thu"]
)
assert GLOBEX is not None


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        # Sunday 25 October 2026, Chicago on CDT (UTC-5): the week opens at 17:00 = 22:00 UTC.
        (utc(2026, 10, 25, 21, 59), False),
        (utc(2026, 10, 25, 22, 0), True),
        # Past midnight, Sunday's session runs on: Monday 00:30 CDT.
        (utc(2026, 10, 26, 5, 30), True),
        # Monday: open until 16:00 CDT (21:00 UTC), the daily break, open again at 17:00.
        (utc(2026, 10, 26, 20, 59), True),
        (utc(2026, 10, 26, 21, 0), False),
        (utc(2026, 10, 26, 21, 59), False),
        (utc(2026, 10, 26, 22, 0), True),
        # Friday: Thursday's session closes at 16:00 and none opens (fri is not a day).
        (utc(2026, 10, 30, 20, 59), True),
        (utc(2026, 10, 30, 21, 0), False),
        (utc(2026, 10, 30, 22, 30), False),
        (utc(2026, 10, 31, 17, 0), False),  # Saturday noon
        # Sunday 1 November 2026: CST (UTC-6) since 02:00, so 17:00 is 23:00 UTC now.
        (utc(2026, 11, 1, 22, 30), False),
        (utc(2026, 11, 1, 22, 59), False),
        (utc(2026, 11, 1, 23, 0), True),
    ],
)
def test_the_globex_session_at_its_edges(at, is_open):
    assert GLOBEX.is_open(at) is is_open
    assert GLOBEX.is_open_ns(int(at.timestamp()) * 1_000_000_000) is is_open


def test_a_same_day_session_is_half_open():
    rth = parse_trading_hours(
        "gate.trading_hours", "America/Chicago", "08:30", "15:00",
        ["mon", "tue", "wed", "thu", "fri"],
    )  # fmt: skip
    assert rth is not None and not rth.wraps
    assert not rth.is_open(utc(2026, 10, 26, 13, 29))  # Monday 08:29 CDT
    assert rth.is_open(utc(2026, 10, 26, 13, 30))
    assert rth.is_open(utc(2026, 10, 26, 19, 59))
    assert not rth.is_open(utc(2026, 10, 26, 20, 0))  # 15:00
    assert not rth.is_open(utc(2026, 10, 31, 15, 0))  # Saturday


def test_a_wall_time_the_spring_forward_skips_opens_at_the_first_instant_after_it():
    # Sunday 8 March 2026 in Chicago: 02:00 CST jumps to 03:00 CDT; 02:30 never happens.
    night = parse_trading_hours("gate.trading_hours", "America/Chicago", "02:30", "04:00", ["sun"])
    assert night is not None
    assert not night.is_open(utc(2026, 3, 8, 7, 59))  # 01:59 CST
    assert night.is_open(utc(2026, 3, 8, 8, 0))  # 03:00 CDT
    assert not night.is_open(utc(2026, 3, 8, 9, 0))  # 04:00 CDT


def test_a_naive_instant_is_refused():
    with pytest.raises(ValueError, match="aware"):
        GLOBEX.is_open(datetime(2026, 10, 26, 12, 0))


def test_the_description_names_days_times_and_zone():
    assert GLOBEX.describe() == "mon,tue,wed,thu,sun 17:00 -> 16:00 next day (America/Chicago)"


def test_nothing_configured_is_none_and_a_migration_override_applies_to_it_alone():
    cfg = compose([
        "rollout.migrations.orders.gate.trading_hours.tz=America/Chicago",
        "rollout.migrations.orders.gate.trading_hours.open=17:00",
        "rollout.migrations.orders.gate.trading_hours.close=16:00",
    ])  # fmt: skip
    assert trading_hours(cfg.gate) is None
    bars = cfg.gate.for_migration(cfg.rollout.migration("bars"))
    assert trading_hours(bars) is None
    orders = trading_hours(cfg.gate.for_migration(cfg.rollout.migration("orders")))
    assert orders is not None and orders.days == frozenset(range(7))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            [
                "gate.trading_hours.tz=America/Chicago",
                "gate.trading_hours.open=25:00",
                "gate.trading_hours.close=16:00",
            ],
            "gate.trading_hours.open='25:00': must be a 24-hour time HH:MM",
        ),
        (
            [
                "gate.trading_hours.tz=Mars/Base",
                "gate.trading_hours.open=17:00",
                "gate.trading_hours.close=16:00",
            ],
            "gate.trading_hours.tz='Mars/Base': not a time zone",
        ),
        (
            ["gate.trading_hours.tz=America/Chicago", "gate.trading_hours.open=17:00"],
            "gate.trading_hours.close=None: must be set",
        ),
        (
            [
                "gate.trading_hours.tz=UTC",
                "gate.trading_hours.open=17:00",
                "gate.trading_hours.close=17:00",
            ],
            "gate.trading_hours.close='17:00': must differ from open",
        ),
        (
            [
                "gate.trading_hours.tz=UTC",
                "gate.trading_hours.open=17:00",
                "gate.trading_hours.close=16:00",
                "gate.trading_hours.days=[sun,fry]",
            ],
            "gate.trading_hours.days.1='fry': must be one of mon",
        ),
        (  # a wrong zone given alone is named, not the parts left unset
            ["gate.trading_hours.tz=Mars/Base"],
            "gate.trading_hours.tz='Mars/Base': not a time zone",
        ),
        (
            ["rollout.migrations.orders.gate.trading_hours.tz=Nowhere"],
            "rollout.migrations.orders.gate.trading_hours.tz='Nowhere': not a time zone",
        ),
        (
            ["rollout.migrations.orders.gate.trading_hours.tz=America/Chicago"],
            "rollout.migrations.orders.gate.trading_hours.open=None: must be set",
        ),
        (
            ["gate.auto_promote=true", "gate.auto_promote_until=prod"],
            "gate.auto_promote_until='prod': not a stage of migration",
        ),
        (
            ["gate.auto_promote=true", "gate.auto_promote_until=production"],
            "gate.auto_promote_until='production': must be below the last stage",
        ),
        (
            ["rollout.migrations.bars.gate.auto_promote_until=nope"],
            "rollout.migrations.bars.gate.auto_promote_until='nope': not a stage of migration "
            "bars's ladder",
        ),
    ],
)
def test_a_bad_setting_is_refused_naming_key_and_value(overrides, message):
    with pytest.raises(ConfigError) as caught:
        compose(overrides)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_auto_promote_until_defaults_to_the_stage_before_the_last():
    cfg = compose(
        ["gate.auto_promote=true", "rollout.migrations.bars.gate.auto_promote_until=shadow"]
    )
    assert auto_promote_until(cfg, "orders") == "staging_50"
    assert auto_promote_until(cfg, "bars") == "shadow"
