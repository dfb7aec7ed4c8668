"""The packaged config composed without Hydra (`harness.config.fast`) is the config Hydra
composes: for every combination of the packaged group options, every key of the schema that holds
one value with each kind of value the fast path accepts, and `HARNESS_DB_URL`, `compose` gives the
same typed config (compared by `repr`, so 10 and 10.0 differ) or the same `ConfigError`, with
the fast path taken; anything else is left to Hydra."""

from __future__ import annotations

import itertools
import typing
from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any

import pytest

import harness.config
from harness.config import CONF_DIR, ConfigError, HarnessConfig, compose
from harness.config.fast import compose_packaged

pytestmark = pytest.mark.timeout(600)

GROUPS = ("rollout", "broker", "db", "gate", "workload")
COMBINATIONS = [
    [f"{g}={o}" for g, o in zip(GROUPS, options, strict=True)]
    for options in itertools.product(
        *[sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml")) for g in GROUPS]
    )
]


def _leaves(kind: Any = HarnessConfig, prefix: str = "") -> list[tuple[str, Any]]:
    """Every dotted key of the schema that holds one value, with its type."""
    out = []
    for f in fields(kind):
        hint = typing.get_type_hints(kind)[f.name]
        args = typing.get_args(hint)
        base = next(a for a in args if a is not type(None)) if type(None) in args else hint
        if is_dataclass(base):
            out += _leaves(base, f"{prefix}{f.name}.")
        elif typing.get_origin(base) is None:  # not a list
            out.append((f"{prefix}{f.name}", hint))
    return out


def _values(hint: Any) -> list[str]:
    """Values of each form the fast path accepts for a key of type `hint`."""
    optional = type(None) in typing.get_args(hint)
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    extra = ["null"] if optional and base is not str else []
    if base is bool:
        return ["true", "false", *extra]
    if base is int:
        return ["3", "0", "-2", *extra]
    if base is float:
        return ["0.25", "2", "-1.5", *extra]
    if base is str:
        return ["x-y", " padded ", "a b?c&d=e", "ünï", "sqlite:///other.db"]
    assert isinstance(base, type) and issubclass(base, Enum), hint
    return [*base.__members__, *extra]


def _outcome(overrides: list[str], environ: dict[str, str]) -> str:
    try:
        return repr(compose(overrides, environ=environ))
    except ConfigError as exc:
        return f"ConfigError({exc.field!r}, {exc.value!r}, {exc.reason!r})"


def _by_hydra(
    monkeypatch: pytest.MonkeyPatch, overrides: list[str], environ: dict[str, str]
) -> str:
    with monkeypatch.context() as m:
        m.setattr(harness.config, "compose_packaged", lambda *_: None)
        return _outcome(overrides, environ)


def _check(monkeypatch: pytest.MonkeyPatch, overrides: list[str], env: dict[str, str]) -> None:
    db_url = env.get("HARNESS_DB_URL")
    assert compose_packaged(CONF_DIR, overrides, db_url) is not None, overrides  # taken
    assert _outcome(overrides, env) == _by_hydra(monkeypatch, overrides, env), overrides


@pytest.mark.parametrize("combination", COMBINATIONS, ids=" ".join)
def test_every_packaged_combination_composes_as_hydra_composes_it(monkeypatch, combination):
    _check(monkeypatch, [], {})
    _check(monkeypatch, combination, {})
    _check(monkeypatch, combination[::-1], {"HARNESS_DB_URL": "sqlite:///env.db"})


@pytest.mark.parametrize(("key", "hint"), _leaves(), ids=[k for k, _ in _leaves()])
def test_every_plain_override_composes_as_hydra_composes_it(monkeypatch, key, hint):
    for value in _values(hint):
        _check(monkeypatch, [f"{key}={value}"], {})
    _check(monkeypatch, ["gate=quick", "broker=projectx", f"{key}={_values(hint)[0]}"], {})


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:p%40ss@db.example:5432/h?sslmode=require",
        "sqlite:////tmp/with space/h.db",
        "sqlite:///ünï.db",
    ],
)
def test_harness_db_url_composes_as_hydra_composes_it(monkeypatch, url):
    _check(monkeypatch, [], {"HARNESS_DB_URL": url})
    _check(monkeypatch, ["db=postgres"], {"HARNESS_DB_URL": url})
    _check(monkeypatch, ["db.url=sqlite:///given.db"], {"HARNESS_DB_URL": url})


@pytest.mark.parametrize(
    "overrides",
    [
        ["+workload.extra=1"],  # appended keys, deletions, forced values
        ["~workload.account"],
        ["++gate.alpha=0.1"],
        ["rollout.stages.0.name=zero"],  # a list's item
        ["workload.symbols=[MNQ]"],  # lists
        ["broker.retry_delays_s=2"],
        ["gate.alpha=1e-2"],  # number forms left to Hydra's grammar
        ["workload.trades=0x10"],
        ["rollout.kill=True"],
        ["rollout.salt='quoted'"],  # text Hydra reads further
        ["rollout.salt=${oc.env:HOME}"],
        ["rollout.salt=back\\slash"],
        ["rollout.salt=null"],
        ["db=postgres", "db=sqlite"],  # a group twice, a key twice
        ["gate.alpha=0.1", "gate.alpha=0.2"],
        ["db=nosuch"],
        ["sim=chaos"],  # not a group of the defaults list
        ["hydra.job.name=x"],
        ["gate.ops=x"],  # a section
        ["workload.trades=ten"],  # wrong: Hydra's error
    ],
)
def test_other_inputs_are_left_to_hydra(monkeypatch, overrides):
    assert compose_packaged(CONF_DIR, overrides, None) is None
    assert _outcome(overrides, {}) == _by_hydra(monkeypatch, overrides, {})


@pytest.mark.parametrize(
    "overrides",
    [
        ["rollout.migrations.bars.start_stage=canary"],
        ["rollout=by_symbol", "rollout.migrations.orders.start_stage=mnq"],
        ["rollout.migrations.bars.gate.min_soak_s=0", "rollout.migrations.bars.gate.alpha=0.1"],
        ["gate.ops.aggregate_bars.min_samples=20", "gate=quick"],
        ["rollout.migrations.orders.breaker.failures=3"],
        ["rollout.migrations.orders.breaker.window_s=0"],  # wrong: the same ConfigError
        ["rollout.migrations.bars.start_stage=nosuch"],  # wrong: the same ConfigError
    ],
)
def test_overrides_into_a_mapping_compose_as_hydra_composes_them(monkeypatch, overrides):
    _check(monkeypatch, overrides, {})


@pytest.mark.parametrize(
    "overrides",
    [
        ["rollout.migrations.ema.start_stage=canary"],  # an entry the files do not hold
        ["gate.ops.ema.min_samples=20"],
        ["rollout.migrations.bars=x"],  # an entry as a whole
        ["rollout.migrations.bars.operations=[aggregate_bars]"],
        ["+gate.ops.ema.min_samples=20"],
    ],
)
def test_other_mapping_overrides_are_left_to_hydra(monkeypatch, overrides):
    assert compose_packaged(CONF_DIR, overrides, None) is None
    assert _outcome(overrides, {}) == _by_hydra(monkeypatch, overrides, {})


def test_a_folder_of_the_users_is_left_to_hydra(monkeypatch, tmp_path):
    (tmp_path / "gate").mkdir()
    (tmp_path / "gate" / "mine.yaml").write_text("defaults:\n  - default\n  - _self_\nalpha: 0.2\n")
    calls = []
    monkeypatch.setattr(harness.config, "compose_packaged", lambda *a: calls.append(a))
    cfg = compose(["gate=mine"], environ={"HARNESS_CONFIG_DIR": str(tmp_path)})
    assert (cfg.gate.alpha, cfg.gate.name, calls) == (0.2, "mine", [])


def test_hydra_is_not_imported_on_the_fast_path():
    import subprocess
    import sys

    code = (
        "import sys; from harness.config import compose; "
        "compose(['gate=quick', 'db.url=sqlite:///x.db', 'workload.trades=3']); "
        "print(sorted(m for m in ('hydra', 'omegaconf') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.stdout.strip(), done.returncode) == ("[]", 0), done.stderr


def test_one_breaker_value_of_one_migration_is_set_by_one_override(monkeypatch):
    overrides = ["rollout.migrations.orders.breaker.failures=3"]
    for cfg in (compose(overrides), compose(overrides, config_dir=CONF_DIR)):  # fast, Hydra
        orders, bars = cfg.rollout.breaker_of("orders"), cfg.rollout.breaker_of("bars")
        assert (orders.failures, orders.window_s, bars.failures) == (3, 60.0, 5)
