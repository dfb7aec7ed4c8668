"""`--migration NAME` on every rollout command, as a person or a script meets it: real `harness`
processes on a real database (SQLite and PostgreSQL). One migration moves alone; an unknown
name is exit 2 naming the known ones, with nothing written; without the flag every migration
moves together, as before migrations."""

from __future__ import annotations

import json

import pytest

from .test_cli import harness

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def db(store_url):
    return f"db.url={store_url}"


def events(db: str, tmp_path) -> list[tuple[str, str | None, str | None]]:
    listed = harness("query", "events", "--json", "--limit", "1000", db, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    return [(e["kind"], e["migration"], e["to_stage"]) for e in reversed(rows)]


@pytest.mark.parametrize(
    "command",
    [
        ["promote"],
        ["rollback"],
        ["kill"],
        ["unkill"],
        ["status"],
        ["gate"],
        ["breaker"],
        ["breaker", "reset", "--op", "place_order"],
    ],
    ids=lambda c: " ".join(c),
)
def test_an_unknown_migration_is_exit_2_naming_the_known_ones(db, tmp_path, command):
    before = events(db, tmp_path)
    done = harness(*command, "--migration", "nosuch", db, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.splitlines() == [
        f"harness {command[0]}: error: unknown migration 'nosuch' (known: orders, bars)"
    ]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert events(db, tmp_path) == before  # nothing written


def test_every_command_acts_on_one_migration_with_the_flag(db, tmp_path):
    quick = ["gate.min_soak_s=0"]
    bars = ["--migration", "bars"]
    done = harness("promote", *bars, "--who", "ana", *quick, db, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "promote: bars: off -> shadow\n"), done.stderr
    status = json.loads(harness("status", "--json", db, cwd=tmp_path).stdout)
    stages = {m: s["stage"] for m, s in status["migrations"].items()}
    assert stages == {"orders": "off", "bars": "shadow"}
    assert status["stage"] is None  # they differ
    one = json.loads(harness("status", *bars, "--json", db, cwd=tmp_path).stdout)
    assert (list(one["migrations"]), one["stage"]) == (["bars"], "shadow")
    gate = harness("gate", *bars, "--json", *quick, db, cwd=tmp_path)
    judged = json.loads(gate.stdout)
    assert (judged["migration"], judged["stage"], list(judged["migrations"])) == (
        "bars", "shadow", ["bars"],
    )  # fmt: skip
    assert gate.returncode in (0, 1, 3)
    assert harness("kill", *bars, "--reason", "bad fills", db, cwd=tmp_path).returncode == 0
    killed = json.loads(harness("status", "--json", db, cwd=tmp_path).stdout)
    assert (killed["migrations"]["bars"]["kill"], killed["migrations"]["orders"]["kill"]) == (
        True, False,
    )  # fmt: skip
    assert killed["kill"] is False  # the global flag stands clear
    assert harness("unkill", *bars, db, cwd=tmp_path).returncode == 0
    shown = harness("breaker", *bars, "--json", db, cwd=tmp_path)
    assert [r["op"] for r in json.loads(shown.stdout)] == ["aggregate_bars"]
    wrong = harness("breaker", "reset", "--op", "place_order", *bars, db, cwd=tmp_path)
    assert wrong.returncode == 2 and "not an operation of migration bars" in wrong.stderr
    closed = harness("breaker", "reset", "--op", "aggregate_bars", *bars, db, cwd=tmp_path)
    assert closed.returncode == 1 and "breaker is not open" in closed.stderr
    back = harness("rollback", *bars, "--from", "shadow", db, cwd=tmp_path)
    assert (back.returncode, back.stdout) == (0, "rollback: bars: shadow -> off\n"), back.stderr
    assert [e for e in events(db, tmp_path) if e[0] != "start"] == [
        ("promote", "bars", "shadow"),
        ("kill", "bars", "shadow"),
        ("unkill", "bars", "shadow"),
        ("rollback", "bars", "off"),
    ]


def test_without_the_flag_every_migration_moves_together_all_or_none(db, tmp_path):
    quick = ["gate.min_soak_s=0"] + [
        f"gate.ops.{op}.min_shadow_comparisons=0"
        for op in ("aggregate_bars", "place_order", "modify_order", "cancel_order")
    ]  # orders are shadowed too: at its shadow stage, no comparison yet is no evidence
    assert harness("promote", "--migration", "bars", *quick, db, cwd=tmp_path).returncode == 0
    # bars at shadow, orders at off: one promotion moves each to its own next stage.
    done = harness("promote", *quick, db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "promote: orders: off -> shadow",
        "promote: bars: shadow -> canary",
    ]
    # bars at canary has no evidence: the gate refuses it, and so the whole (orders stays).
    refused = harness("promote", *quick, db, cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.startswith("harness promote: error: migration bars: the gate says ")
    status = json.loads(harness("status", "--json", db, cwd=tmp_path).stdout)
    assert {m: s["stage"] for m, s in status["migrations"].items()} == {
        "orders": "shadow", "bars": "canary",
    }  # fmt: skip
    # --from applies to each migration moved: orders is not at canary, so nothing moves.
    moved = harness("rollback", "--from", "canary", db, cwd=tmp_path)
    assert moved.returncode == 1 and "migration orders" in moved.stderr
    done = harness("rollback", "--to", "shadow", db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "rollback: bars: canary -> shadow",
        "rollback: orders: left alone (--to 'shadow' is not below its stage 'shadow')",
    ]
    # kill and unkill without the flag: the global flag, every migration.
    assert harness("kill", "--reason", "halt", db, cwd=tmp_path).returncode == 0
    status = json.loads(harness("status", "--json", db, cwd=tmp_path).stdout)
    assert status["kill"] is True and all(s["kill"] for s in status["migrations"].values())
    assert harness("unkill", db, cwd=tmp_path).returncode == 0
    kinds = [e for e in events(db, tmp_path) if e[0] in ("kill", "unkill")]
    assert kinds == [("kill", "all", "shadow"), ("unkill", "all", "shadow")]


def test_a_config_whose_ladder_lacks_the_stores_stage_is_refused_naming_the_one_that_has_it(
    tmp_path,
):
    # A store promoted with rollout=by_symbol (orders at `mnq`), then a command without it: the
    # router would send every order to Python while the store says MNQ is at 100% Rust.
    db = f"db.url=sqlite:///{tmp_path / 'h.db'}"
    assert harness("db", "upgrade", db, cwd=tmp_path).returncode == 0
    for _ in ("shadow", "mnq"):
        moved = harness(
            "promote", "--migration", "orders", "--force", "--reason", "tour",
            "rollout=by_symbol", db, cwd=tmp_path,
        )  # fmt: skip
        assert moved.returncode == 0, moved.stderr
    runs_before = harness("query", "runs", "--json", db, cwd=tmp_path)
    for command in (["run", "workload.trades=1"], ["status"], ["gate"], ["promote"]):
        refused = harness(*command, db, cwd=tmp_path)
        assert refused.returncode == 2, (command, refused.stdout, refused.stderr)
        line = refused.stderr.strip()
        assert len(line.splitlines()) == 1 and "Traceback" not in line, line
        assert "the store's migration orders is at stage 'mnq'" in line
        assert "run with rollout=by_symbol" in line
    assert harness("query", "runs", "--json", db, cwd=tmp_path).stdout == runs_before.stdout
    assert harness("status", "rollout=by_symbol", db, cwd=tmp_path).returncode == 0
