"""The routing decision on its own: uniform, sticky, monotonic, stable across processes, and
disabled by everything that should disable it (pure: no database, no network)."""

from __future__ import annotations

import copy
import subprocess
import sys
import uuid

import numpy as np
import pytest

from harness.config import HarnessConfig, Percentages
from harness.operations import Impl, Operation
from harness.router import Router, bucket, build_snapshot, env_allows_rust
from harness.store.state import LiveState

N_KEYS = 100_000
PLACE = Operation.PLACE_ORDER


class NoRecorder:
    """The router's recorder is not under test here."""

    def record(self, row: object) -> None:
        raise AssertionError("nothing is recorded by decide()")


def keys(kind: str) -> list[str]:
    if kind == "sequential":
        return [f"hx-{i:024x}" for i in range(N_KEYS)]
    if kind == "numeric":
        return [str(7_000_000_001 + i) for i in range(N_KEYS)]
    rng = np.random.default_rng(11)
    return [uuid.UUID(int=int(x)).hex for x in rng.integers(0, 2**62, N_KEYS)]


def state(stage: str, *, kill: bool = False, breakers: frozenset[str] = frozenset()) -> LiveState:
    return LiveState(stage, 1, kill, "test" if kill else None, breakers, 2, 1)


def router(cfg: HarnessConfig, stage: str, **live: object) -> Router:
    r = Router(cfg.rollout, recorder=NoRecorder(), run_id="r", native_available=True)  # type: ignore[arg-type]
    r.apply_state(state(stage, **live))  # type: ignore[arg-type]
    return r


def with_percent(cfg: HarnessConfig, stage: str, percent: float) -> HarnessConfig:
    changed = copy.deepcopy(cfg)
    for s in changed.rollout.stages:
        if s.name == stage:
            s.percent = Percentages(None, {op: s.percent.of(op) for op in Operation})
            s.percent.per_op["place_order"] = percent
    return changed


@pytest.mark.parametrize("kind", ["sequential", "numeric", "random"])
def test_ten_percent_stage_sends_ten_percent_of_100k_keys(base_config, kind):
    r = router(with_percent(base_config, "staging", 10.0), "staging")
    to_rust = sum(r.decide(PLACE, k) is Impl.RUST for k in keys(kind))
    assert 0.095 * N_KEYS <= to_rust <= 0.105 * N_KEYS, to_rust


@pytest.mark.parametrize("kind", ["sequential", "random"])
def test_raising_the_percentage_moves_no_key_back_to_python(base_config, kind):
    at_10 = router(with_percent(base_config, "staging", 10.0), "staging")
    at_25 = router(with_percent(base_config, "staging", 25.0), "staging")
    moved_back = [
        k
        for k in keys(kind)
        if at_10.decide(PLACE, k) is Impl.RUST and at_25.decide(PLACE, k) is Impl.PYTHON
    ]
    gained = sum(at_25.decide(PLACE, k) is Impl.RUST for k in keys(kind))
    assert moved_back == []
    assert 0.24 * N_KEYS <= gained <= 0.26 * N_KEYS


def test_the_same_key_lands_on_the_same_side_every_time(base_config):
    r = router(base_config, "staging_50")
    sample = keys("random")[:2000]
    first = [r.decide(PLACE, k) for k in sample]
    assert [r.decide(PLACE, k) for k in sample] == first
    assert Impl.RUST in first and Impl.PYTHON in first


def test_buckets_are_stable_across_processes_and_independent_of_hash_seed():
    sample = ["hx-00", "7000000001", "MNQ|5m,15m,1h"]
    here = [bucket("harness", PLACE, k) for k in sample]
    script = (
        "from harness.router import bucket; from harness.operations import Operation; "
        f"print([bucket('harness', Operation.PLACE_ORDER, k) for k in {sample!r}])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == str(here)


def test_operations_and_salts_shuffle_keys_independently():
    sample = keys("sequential")[:5000]
    place = [bucket("harness", PLACE, k) < 5000 for k in sample]
    cancel = [bucket("harness", Operation.CANCEL_ORDER, k) < 5000 for k in sample]
    salted = [bucket("other", PLACE, k) < 5000 for k in sample]
    assert place != cancel and place != salted


@pytest.mark.parametrize(
    ("live", "reason"),
    [
        ({"kill": True}, "kill switch"),
        ({"breakers": frozenset({"place_order"})}, "circuit breaker open"),
    ],
)
def test_kill_and_open_breaker_send_everything_to_python(base_config, live, reason):
    r = router(base_config, "production", **live)
    assert {r.decide(PLACE, k) for k in keys("sequential")[:1000]} == {Impl.PYTHON}
    assert (r.snapshot.disabled_reason(PLACE) or "").startswith(reason)


def test_an_open_breaker_disables_only_its_operation(base_config):
    r = router(base_config, "production", breakers=frozenset({"place_order"}))
    assert r.decide(Operation.CANCEL_ORDER, "1") is Impl.RUST


def test_config_kill_and_missing_native_send_everything_to_python(base_config):
    killed = copy.deepcopy(base_config)
    killed.rollout.kill = True
    snap = build_snapshot(killed.rollout, state("production"), native_available=True)
    assert all(v == 0.0 for v in snap.thresholds.values())
    assert snap.disabled_reason(PLACE) == "kill switch: rollout.kill is set in the config"
    no_native = build_snapshot(base_config.rollout, state("production"), native_available=False)
    assert all(v == 0.0 for v in no_native.thresholds.values())
    assert no_native.disabled_reason(PLACE) == "native module unavailable"


def test_a_stage_not_in_the_ladder_sends_everything_to_python_and_logs_once(base_config, caplog):
    r = router(base_config, "mystery")
    assert r.decide(PLACE, "any") is Impl.PYTHON and r.snapshot.shadow_sample_rate == 0.0
    r.apply_state(state("mystery"))
    errors = [rec for rec in caplog.records if "'mystery'" in rec.getMessage()]
    # Once per migration whose stage this process does not know (both, here).
    assert sorted(rec.args[0] for rec in errors) == ["bars", "orders"]  # type: ignore[index]
    assert all(rec.levelname == "ERROR" for rec in errors)


@pytest.mark.parametrize("value", ["false", "FALSE", "0", "no", " Off "])
def test_false_values_of_topstepx_use_rust_forbid_rust(value):
    assert not env_allows_rust({"TOPSTEPX_USE_RUST": value})


@pytest.mark.parametrize("value", [None, "true", "1", "yes", ""])
def test_other_values_of_topstepx_use_rust_allow_rust(value):
    env = {} if value is None else {"TOPSTEPX_USE_RUST": value}
    assert env_allows_rust(env)
