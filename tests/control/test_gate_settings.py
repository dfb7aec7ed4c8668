"""The gate settings a stage is judged by are the ones stored with it when it started
(`harness.control.gates`), on SQLite and PostgreSQL: `harness status`, `harness gate`,
`harness promote` and the automatic rollback agree whatever their own config, say which
settings judged, and warn in one line when theirs differ."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from harness.config import compose
from harness.control import actions
from harness.control.gates import COMMAND, REJUDGED, STORED, gate_config, stage_gate
from harness.control.monitor import GateMonitor
from harness.store.db import open_engine
from harness.store.models import MigrationState, RolloutEvent
from harness.store.state import ensure_state

from .test_actions import seed_rust_errors
from .test_cli import harness

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def engine(store_url):
    engine = open_engine(store_url)
    yield engine
    engine.dispose()


def test_stored_settings_read_back_as_the_same_settings():
    for overrides in ([], ["gate=quick"], ["gate.ops.place_order.critical=[error_rate]"]):
        gate = compose(overrides).gate
        stored = stage_gate(gate)
        again = stage_gate(gate_config(stored, gate))
        assert (again.fingerprint, again.settings) == (stored.fingerprint, stored.settings)
    assert stage_gate(compose([]).gate).fingerprint != stage_gate(compose(["gate=quick"]).gate)
    # What a process does with a verdict is its own, not part of the stage's settings.
    assert (
        stage_gate(compose(["gate.auto_rollback=false"]).gate).fingerprint
        == stage_gate(compose([]).gate).fingerprint
    )
    assert compose(["gate=quick", "gate.min_soak_s=60"]).gate.name == "quick gate.min_soak_s=60"


def test_every_reader_judges_a_stage_by_the_settings_stored_when_it_started(engine, store_url):
    quick = compose([f"db.url={store_url}", "gate=quick"])
    default = compose([f"db.url={store_url}"])
    actions.started_state(engine, quick)  # the state is created by a command with gate=quick
    by_quick = actions.verdict(engine, quick)
    by_default = actions.verdict(engine, default)
    assert by_quick.result.value == by_default.result.value == "PASS"  # quick: no soak time
    assert by_default.gate_settings == {
        "name": "quick",
        "fingerprint": stage_gate(quick.gate).fingerprint,
        "source": STORED,
    }
    status = actions.status(engine, default)
    assert status["verdict"] == "PASS"
    assert status["gate_settings"]["this_command"]["name"] == "default"
    assert (
        "judged by the gate settings stored when it started, 'quick'"
        in (status["gate_settings"]["note"])
    )
    assert actions.status(engine, quick)["gate_settings"]["note"] is None
    rejudged = actions.verdict(engine, default, rejudge=True)
    assert rejudged.result.value == "INCONCLUSIVE"  # default's 300 s soak
    assert rejudged.gate_settings["source"] == REJUDGED  # type: ignore[index]

    # A promotion by a command with the default gate, judged by the stored quick, stores the
    # default for the next stage: now every reader finds shadow INCONCLUSIVE (soak).
    done = actions.promote(engine, default, reason="off passed")
    assert done.verdict.gate_settings["name"] == "quick"  # type: ignore[union-attr,index]
    assert actions.verdict(engine, quick).result.value == "INCONCLUSIVE"
    assert actions.verdict(engine, quick).gate_settings["name"] == "default"  # type: ignore[index]
    with engine.connect() as conn:
        gate = conn.execute(  # one event per migration moved: orders' here
            select(RolloutEvent.gate).where(
                RolloutEvent.kind == "promote", RolloutEvent.migration == "orders"
            )
        )
        event = json.loads(gate.scalar_one())
    assert event["gate_settings"]["name"] == "quick"
    assert event["next_stage_gate"]["name"] == "default"
    assert event["next_stage_gate"]["min_soak_s"] == 300.0


def test_a_stage_stored_before_0003_is_judged_by_each_commands_own(engine, store_url):
    ensure_state(engine, "off")  # no settings stored, as an upgraded store's row
    quick = compose([f"db.url={store_url}", "gate=quick"])
    default = compose([f"db.url={store_url}"])
    assert actions.verdict(engine, quick).result.value == "PASS"
    assert actions.verdict(engine, default).result.value == "INCONCLUSIVE"
    assert actions.verdict(engine, default).gate_settings["source"] == COMMAND  # type: ignore[index]
    assert actions.status(engine, default)["gate_settings"]["note"] is None


def test_the_automatic_rollback_judges_with_the_stored_settings(engine, store_url, tmp_path):
    lax = compose(
        [
            f"db.url={store_url}",
            "gate.ops.place_order.max_error_rate=0.9",
            "gate.ops.place_order.max_error_excess=0.9",
        ]
    )
    strict = compose([f"db.url={store_url}", "gate.check_interval_s=3600"])
    ensure_state(engine, "canary", gate=stage_gate(lax.gate))
    seed_rust_errors(engine, "canary", tmp_path)  # Rust fails half of place_order's calls
    assert actions.verdict(engine, strict, rejudge=True).critical_failures()
    assert GateMonitor(engine, strict).check_once() is False  # the stage's own settings: no FAIL
    assert actions.current_state(engine, strict).stage == "canary"
    with engine.begin() as conn:  # the stage's settings are now the strict ones
        strict_gate = stage_gate(strict.gate)
        conn.execute(
            update(MigrationState).values(
                gate_name=strict_gate.name,
                gate_fingerprint=strict_gate.fingerprint,
                gate_settings=strict_gate.settings,
            )
        )
    assert GateMonitor(engine, lax).check_once() is True  # whatever the monitor's own say
    assert actions.current_state(engine, lax).stage == "shadow"


def bounds(verdict: dict) -> list[tuple]:
    """Each criterion's result and the bound it was held to (the figures move with the clock)."""
    return [(c["op"], c["criterion"], c["result"], c["bound"]) for c in verdict["criteria"]]


def test_after_a_promotion_with_gate_quick_every_command_without_it_agrees(store_url, tmp_path):
    db = f"db.url={store_url}"
    promoted = harness(
        "promote", "gate=quick", "--who", "ana", "--reason", "soaked", db, cwd=tmp_path
    )
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout == "promote: off -> shadow\n" and promoted.stderr == ""
    with_quick = harness("gate", "gate=quick", "--json", db, cwd=tmp_path)
    without = harness("gate", "--json", db, cwd=tmp_path)
    assert with_quick.returncode == without.returncode
    judged, again = json.loads(with_quick.stdout), json.loads(without.stdout)
    assert judged["verdict"] == again["verdict"]
    assert bounds(judged) == bounds(again) and judged["skipped"] == again["skipped"]
    assert again["gate_settings"]["name"] == "quick" and again["gate_settings"]["source"] == STORED
    assert with_quick.stderr == ""
    warnings = without.stderr.splitlines()  # one per migration, each naming it
    assert [w.split(": ")[2] for w in warnings] == ["orders", "bars"]
    for warning in warnings:
        assert ": stage 'shadow' is judged by the gate " in warning
        assert "'quick'" in warning and "not by this command's 'default'" in warning
    status = harness("status", "--json", db, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["verdict"] == judged["verdict"]
    assert bounds(data["gate"]) == bounds(judged)
    assert data["gate_settings"]["judged_by"]["name"] == "quick"
    assert len(status.stderr.splitlines()) == 2  # a warning per migration
    table = harness("gate", db, cwd=tmp_path)
    assert f"verdict: {judged['verdict']}  (gate settings 'quick' (" in table.stdout
    assert "stored with the stage)" in table.stdout
    rejudged = harness("gate", "--rejudge", "--json", db, cwd=tmp_path)
    assert json.loads(rejudged.stdout)["gate_settings"]["name"] == "default"
