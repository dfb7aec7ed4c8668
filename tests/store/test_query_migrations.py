"""History by migration: `harness query --op` takes any operation the store has calls of (a
bot's registered one included), `--migration` keeps one migration's calls, and the figures count
the calls that went to Python because the stage did not target them apart from those the hash
sent there; on SQLite and PostgreSQL, over compacted and dirty minutes alike."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.cli import main
from harness.config import RecorderConfig
from harness.recorder import OutcomeRecord, Recorder, ShadowRecord
from harness.store import queries as q
from harness.store.db import open_engine, upgrade
from harness.store.rollups import MINUTE_NS, compact
from harness.store.runs import start_run
from harness.store.state import write_event

T0 = 1_700_000_000_000_000_000 - 1_700_000_000_000_000_000 % MINUTE_NS


def call(run_id, i, op, migration, *, routed, targeted=True, ok=True, fell_back=False):
    served = "python" if fell_back else routed
    return OutcomeRecord(
        ts_ns=T0 + i * 1_000_000_000,
        run_id=run_id,
        op=op,
        stage="canary",
        routed=routed,
        served=served,
        fell_back=fell_back,
        fallback_reason="RustPanic" if fell_back else None,
        ok=ok,
        error_class=None if ok else "OrderRejectedError",
        error_message=None if ok else "rejected",
        latency_us=200.0 + i,
        attempts=1,
        http_status=None,
        order_id=None,
        custom_tag=None,
        routing_key="MES" if not targeted else "MNQ",
        migration=migration,
        targeted=targeted,
    )


@pytest.fixture
def store(db_url, tmp_path):
    """Run A: orders on MNQ (targeted: 6 to Rust, 2 hashed to Python, 1 failing) and MES (not
    targeted: 5 to Python, 1 failing), bars (3 on Rust, one of them fell back), in minutes
    compacted; run B: a registered `ema` of migration `signals` (4 on Rust, 2 on Python), in a
    minute still dirty. Plus a global event (migration NULL) and one of `bars`."""
    engine = open_engine(db_url)
    upgrade(engine)
    run_a = start_run(engine, kind="test", config={}, native_available=True)
    run_b = start_run(engine, kind="test", config={}, native_available=True)
    rows = []
    rows += [call(run_a, i, "place_order", "orders", routed="rust") for i in range(6)]
    rows += [call(run_a, 6 + i, "place_order", "orders", routed="python") for i in range(2)]
    rows += [call(run_a, 8, "place_order", "orders", routed="rust", ok=False)]
    rows += [
        call(run_a, 10 + i, "place_order", "orders", routed="python", targeted=False)
        for i in range(5)
    ]
    rows += [call(run_a, 15, "place_order", "orders", routed="python", targeted=False, ok=False)]
    rows += [call(run_a, 20 + i, "aggregate_bars", "bars", routed="rust") for i in range(2)]
    rows += [call(run_a, 22, "aggregate_bars", "bars", routed="rust", fell_back=True)]
    recorder = Recorder(engine, RecorderConfig(flush_interval_s=0.05), spill_dir=tmp_path, name="m")
    for row in rows:
        recorder.record(row)
    recorder.record_shadow(
        ShadowRecord(
            T0,
            run_a,
            "aggregate_bars",
            "canary",
            "MNQ",
            "rust",
            "python",
            True,
            None,
            None,
            None,
            None,
            None,
            200.0,
            900.0,
            None,
            10,
            migration="bars",
        )
    )
    assert recorder.flush(30)
    compact(engine, now_ns=T0 + 60 * MINUTE_NS)  # those minutes compacted: read from rollups
    late = [call(run_b, 3600 + i, "ema", "signals", routed="rust") for i in range(4)]
    late += [call(run_b, 3604 + i, "ema", "signals", routed="python") for i in range(2)]
    for row in late:
        recorder.record(row)
    assert recorder.flush(30)  # minute 60: dirty, read raw
    with engine.begin() as conn:
        write_event(conn, "kill", who="t", reason="all at once", ts_ns=T0 + 1, migration=None)
        write_event(conn, "promote", who="t", from_stage="off", to_stage="canary",
                    ts_ns=T0 + 2, migration="bars")  # fmt: skip
    yield engine, run_a, run_b
    recorder.close()
    engine.dispose()


def by(rows, *keys):
    return {tuple(getattr(r, k) for k in keys): r for r in rows}


def test_rates_tell_not_targeted_from_hashed_to_python(store):
    engine, _, _ = store
    rates = by(q.rates(engine, q.Filters()), "op", "impl")
    python = rates[("place_order", "python")]
    assert (python.migration, python.calls, python.not_targeted, python.errors) == (
        "orders", 8, 6, 1,
    )  # fmt: skip
    rust = rates[("place_order", "rust")]
    assert (rust.calls, rust.not_targeted, rust.errors) == (7, 0, 1)
    assert rates[("aggregate_bars", "rust")].migration == "bars"
    ema = rates[("ema", "rust")]
    assert (ema.migration, ema.calls, ema.not_targeted) == ("signals", 4, 0)
    assert python.to_dict()["not_targeted"] == 6 and python.to_dict()["migration"] == "orders"


def test_latency_rows_carry_the_migration_and_the_not_targeted_calls(store):
    engine, _, _ = store
    rows = by(q.latency(engine, q.Filters()), "op", "impl")
    python = rows[("place_order", "python")]
    assert (python.migration, python.calls, python.not_targeted, python.count) == (
        "orders", 8, 6, 7,
    )  # fmt: skip
    assert rows[("ema", "python")].to_dict()["migration"] == "signals"


def test_a_migration_filter_keeps_its_operations_only(store):
    engine, _, _ = store
    assert {r.op for r in q.rates(engine, q.Filters(migration="bars"))} == {"aggregate_bars"}
    assert {r.op for r in q.latency(engine, q.Filters(migration="signals"))} == {"ema"}
    assert [r["op"] for r in q.errors(engine, q.Filters(migration="orders"))] == ["place_order"] * 2
    assert q.errors(engine, q.Filters(migration="bars")) == []
    fell = q.fallbacks(engine, q.Filters(migration="bars"))
    assert [(r["op"], r["migration"], r["targeted"]) for r in fell] == [
        ("aggregate_bars", "bars", True)
    ]
    assert [r["migration"] for r in q.shadow(engine, q.Filters(migration="bars"))] == ["bars"]
    assert q.shadow(engine, q.Filters(migration="orders")) == []
    errors = q.errors(engine, q.Filters(op="place_order"))
    assert sorted(r["targeted"] for r in errors) == [False, True]


def test_runs_list_the_migrations_they_recorded_calls_of(store):
    engine, run_a, run_b = store
    runs = {r["run"]: r for r in q.runs(engine, q.Filters())}
    assert runs[run_a]["migrations"] == ["bars", "orders"]  # from the rollups
    assert runs[run_b]["migrations"] == ["signals"]  # from a dirty minute's raw rows
    assert [r["run"] for r in q.runs(engine, q.Filters(migration="signals"))] == [run_b]
    assert [r["run"] for r in q.runs(engine, q.Filters(migration="bars"))] == [run_a]


def test_events_name_their_migration_and_a_global_one_is_all(store):
    engine, _, _ = store
    events = q.events(engine, q.Filters())
    assert [(e["kind"], e["migration"]) for e in events[:2]] == [
        ("promote", "bars"),
        ("kill", "all"),
    ]
    kept = q.events(engine, q.Filters(migration="orders"))
    assert ("kill", "all") in [(e["kind"], e["migration"]) for e in kept]
    assert "promote" not in [e["kind"] for e in kept]


def test_the_store_knows_every_operation_and_migration_it_has_calls_of(store):
    engine, _, _ = store
    with engine.connect() as conn:
        assert {"place_order", "aggregate_bars", "ema"} <= set(q.known_ops(conn))
        assert {"orders", "bars", "signals"} <= set(q.known_migrations(conn))


def url_of(engine):
    return engine.url.render_as_string(hide_password=False)


def test_query_op_takes_a_registered_operation_and_migration(store, capsys):
    engine, _, run_b = store
    url = url_of(engine)
    assert main(["query", "rates", "--op", "ema", "--json", f"db.url={url}"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["op"], r["migration"], r["impl"]) for r in rows] == [
        ("ema", "signals", "python"), ("ema", "signals", "rust"),
    ]  # fmt: skip
    assert main(["query", "runs", "--migration", "signals", "--json", f"db.url={url}"]) == 0
    assert [r["run"] for r in json.loads(capsys.readouterr().out)] == [run_b]
    assert main(["query", "rates", "--migration", "orders", f"db.url={url}"]) == 0
    table = capsys.readouterr().out
    assert "not_targeted" in table and "place_order" in table and "ema" not in table
    assert main(["query", "events", f"db.url={url}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("kill" in line and " all " in line for line in lines)
    assert main(["query", "runs", f"db.url={url}"]) == 0
    assert "bars, orders" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flag", "value", "known"),
    [
        ("--op", "emma", "ema, modify_order"),
        ("--migration", "signal", "orders, signals"),
        ("--stage", "canery", "canary, off, production, shadow"),
        ("--build", "0.2", "no run has a build_id yet"),
        ("--run", "f" * 32, "no such run; latest: "),
    ],
)
def test_an_unknown_op_or_migration_is_refused_naming_the_known_ones(store, flag, value, known):
    engine, _, _ = store
    done = subprocess.run(
        [sys.executable, "-m", "harness", "query", "latency", flag, value,
         f"db.url={url_of(engine)}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"{flag.lstrip('-')}={value!r}" in done.stderr and known in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_build_is_known_by_any_prefix_of_its_id(db_url, tmp_path, capsys):
    engine = open_engine(db_url)
    upgrade(engine)
    for build in ("0.1.0+aaaa.1111", "0.1.0+bbbb.2222", "0.1.0+aaaa.1111"):
        start_run(engine, kind="test", config={}, native_available=True, build_id=build)
    url = url_of(engine)
    engine.dispose()
    assert main(["query", "runs", "--build", "0.1.0+bb", "--json", f"db.url={url}"]) == 0
    assert [r["build_id"] for r in json.loads(capsys.readouterr().out)] == ["0.1.0+bbbb.2222"]
    assert main(["query", "runs", "--build", "0.1.0+cc", f"db.url={url}"]) == 2
    err = capsys.readouterr().err
    assert "invalid build='0.1.0+cc': no run's build_id starts with it; latest: " in err
    assert "0.1.0+aaaa.1111, 0.1.0+bbbb.2222" in err  # newest first, each once
