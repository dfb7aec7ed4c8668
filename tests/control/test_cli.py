"""The rollout commands as a person or a script meets them: real `harness` processes on a real
database (SQLite and PostgreSQL), exit statuses, JSON, events, and secrets never printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each test starts up to a dozen `harness` processes (2 to 5 s each on a loaded 2-core machine,
# Hydra and SQLAlchemy imported every time): the suite's 60 s per test is a hang detector, not
# a budget such a test can be held to.
pytestmark = pytest.mark.timeout(300)

MARK_KEY = "key-MARKER-5f1c2e"
MARK_PW = "pw-MARKER-9d3a7b"


def harness(*args: str, cwd: Path, env: dict[str, str] | None = None):
    """`python -m harness ARGS` in `cwd`; the caller's HARNESS_DB_URL is not inherited."""
    merged = {k: v for k, v in os.environ.items() if k != "HARNESS_DB_URL"}
    merged.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=merged,
    )


@pytest.fixture
def db(store_url):
    return f"db.url={store_url}"


@pytest.mark.timeout(300)  # fourteen commands, each a fresh interpreter
def test_a_full_cycle_of_actions_with_exit_statuses_and_events(db, tmp_path):
    done = harness("gate", db, cwd=tmp_path)
    assert done.returncode == 3, done.stderr  # a fresh stage has not soaked: INCONCLUSIVE
    assert "verdict: INCONCLUSIVE" in done.stdout
    refused = harness("promote", "--who", "ana", db, cwd=tmp_path)
    assert refused.returncode == 1 and "not promoted" in refused.stderr
    assert "Traceback" not in refused.stderr
    # Reading and a refused action write nothing: the first action that writes (a kill here)
    # starts the rollout state, judged by its gate settings from then on.
    unread = json.loads(harness("status", "--json", db, cwd=tmp_path).stdout)
    assert [unread["started"]] + [m["started"] for m in unread["migrations"].values()] == [
        False, False, False,
    ]  # fmt: skip
    assert harness("kill", "--reason", "first look", db, cwd=tmp_path).returncode == 0
    assert harness("unkill", db, cwd=tmp_path).returncode == 0
    # `off` is judged by the settings stored when it started (the default gate's, by the first
    # command that wrote): other settings judge it only when asked, with a reason, and the
    # event says so.
    done = harness("promote", db, "gate.min_soak_s=0", "--json", cwd=tmp_path)
    assert done.returncode == 1 and "judged by gate settings 'default'" in done.stderr
    rejudged = harness("promote", db, "gate.min_soak_s=0", "--rejudge", cwd=tmp_path)
    assert rejudged.returncode == 2 and "a re-judged promotion needs a reason" in rejudged.stderr
    done = harness(
        "promote",
        db,
        "gate.min_soak_s=0",
        "--rejudge",
        "--reason",
        "no soak",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["to_stage"] == "shadow"
    forced = harness("promote", "--force", db, cwd=tmp_path)
    assert forced.returncode == 2 and "needs a reason" in forced.stderr
    forced = harness("promote", "--force", "--reason", "drill: a=b", db, cwd=tmp_path)
    assert forced.returncode == 0 and "FORCED" in forced.stdout
    assert harness("kill", "--reason", "halt", db, cwd=tmp_path).returncode == 0
    status = json.loads(harness("status", "--json", db, cwd=tmp_path).stdout)
    assert status["stage"] == "canary" and status["kill"] is True
    assert harness("unkill", db, cwd=tmp_path).returncode == 0
    assert harness("rollback", "--to", "off", "--who", "ops", db, cwd=tmp_path).returncode == 0
    listed = harness("query", "events", "--json", db, cwd=tmp_path)
    kinds = [(e["kind"], e["forced"], e["migration"]) for e in reversed(json.loads(listed.stdout))]
    # Each migration starts, is promoted and rolled back with its own event; kills are global.
    assert sorted(kinds[:2]) == [("start", False, "bars"), ("start", False, "orders")]
    assert [k[:2] for k in kinds[2:]] == [
        ("kill", False),
        ("unkill", False),
        ("promote", False), ("promote", False),
        ("promote", True), ("promote", True),
        ("kill", False),
        ("unkill", False),
        ("rollback", False), ("rollback", False),
    ]  # fmt: skip
    assert [k[2] for k in kinds if k[0] in ("kill", "unkill")] == ["all"] * 4
    reasons = [e["reason"] for e in json.loads(listed.stdout)]
    assert "drill: a=b" in reasons
    first = json.loads(listed.stdout)[-6]["gate"]["gate_settings"]
    assert first == {
        "name": "default gate.min_soak_s=0",
        "fingerprint": first["fingerprint"],
        "source": "rejudged",
    }


def test_overrides_may_stand_anywhere_and_cfg_job_prints_the_config(db, tmp_path):
    for args in (("status", "--json", db), ("status", db, "--json")):
        done = harness(*args, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stderr)
        assert json.loads(done.stdout)["stage"] == "off"
    printed = harness("gate", "--cfg", "job", db, "rollout.start_stage=canary", cwd=tmp_path)
    assert printed.returncode == 0 and "start_stage: canary" in printed.stdout


def test_secrets_never_reach_the_screen(tmp_path):
    env = {"PROJECTX_API_KEY": MARK_KEY, "PROJECTX_USERNAME": "bot"}
    url = f"postgresql+psycopg://bot:{MARK_PW}@127.0.0.1:1/nowhere"
    outputs = [
        harness(
            "status", "--cfg", "job", "broker=projectx", f"db.url={url}", cwd=tmp_path, env=env
        ),
        harness("status", "broker=projectx", f"db.url={url}", cwd=tmp_path, env=env),
        harness("query", "latency", f"db.url={url}", cwd=tmp_path, env=env),
        harness("db", "upgrade", cwd=tmp_path, env={**env, "HARNESS_DB_URL": url}),
    ]
    assert outputs[0].returncode == 0 and "api_key: '***'" in outputs[0].stdout
    for done in outputs[1:]:
        assert done.returncode == 2, done.stderr
        assert "cannot open the database" in done.stderr and "Traceback" not in done.stderr
    for done in outputs:
        assert MARK_KEY not in done.stdout + done.stderr
        assert MARK_PW not in done.stdout + done.stderr


def test_reading_a_database_that_is_not_there_creates_nothing(tmp_path):
    reads = (
        ("status",),
        ("gate",),
        ("query", "runs"),
        ("db", "current"),
        ("breaker", "show"),
        ("tui",),
    )
    for args in reads:
        done = harness(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "no database at harness.db" in done.stderr, args
        assert "`harness db upgrade`" in done.stderr and "Traceback" not in done.stderr
        assert list(tmp_path.iterdir()) == [], args
    assert harness("db", "upgrade", cwd=tmp_path).returncode == 0
    current = harness("db", "current", cwd=tmp_path)
    assert current.returncode == 0 and "(current)" in current.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("query", "latency", "--since", "yesterday"), "since"),
        (("query", "latency", "--bucket", "30s"), "bucket"),
        (("query", "errors", "--limit", "0"), "limit"),
        (("query", "latency", "--stage", "x\tz"), "stage"),
        (("gate", "rollout.stages.2.percent.place_order=140"), "rollout.stages.2.percent"),
        (("status", "rollout.foo=1"), "rollout.foo"),
        (("status", "broker=nope"), "broker"),
        (("status", "nonsense"), None),
    ],
)
def test_bad_input_is_one_line_naming_the_field_exit_2(db, tmp_path, args, field):
    done = harness(*args, db, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.startswith("harness ")
    if field is not None:
        assert field in done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("rollback", "--to", "nope"), "--to 'nope' is not on this ladder (off, shadow"),
        (("promote", "--force"), "a forced promotion needs a reason (--reason TEXT)"),
        (("promote", "--force", "--reason", "  "), "needs a reason"),
        (("breaker", "reset"), "breaker reset needs --op"),
        (("kill", "--reason", "\x1b[2J\x1b[31mall clear"), "--reason holds a control character"),
        (("promote", "--force", "--reason", "ok\nforged line"), "holds a control character"),
    ],
)
def test_an_action_asked_wrongly_is_a_usage_error_exit_2_nothing_written(db, tmp_path, args, said):
    done = harness(*args, db, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert said in done.stderr and "Traceback" not in done.stderr
    events = json.loads(harness("query", "events", "--json", db, cwd=tmp_path).stdout)
    assert {e["kind"] for e in events} <= {"start"}  # the state may be created, nothing else


def test_a_refusal_by_the_state_or_the_gate_stays_exit_1(db, tmp_path):
    first = harness("rollback", db, cwd=tmp_path)  # off is the first stage
    assert first.returncode == 1 and "nothing to roll back to" in first.stderr
    not_below = harness("rollback", "--to", "canary", db, cwd=tmp_path)
    assert not_below.returncode == 1 and "not below" in not_below.stderr
    refused = harness("promote", db, cwd=tmp_path)  # a fresh stage: INCONCLUSIVE
    assert refused.returncode == 1 and "not promoted" in refused.stderr
    closed = harness("breaker", "reset", "--op", "place_order", db, cwd=tmp_path)
    assert closed.returncode == 1 and "is not open" in closed.stderr


def test_an_unknown_option_of_every_config_group_names_the_group_and_its_options(tmp_path):
    conf = Path(__file__).resolve().parents[2] / "harness" / "conf"
    groups = sorted(p.name for p in conf.iterdir() if p.is_dir())
    assert {"broker", "db", "gate", "rollout", "workload"} <= set(groups)
    for group in groups:
        options = ", ".join(sorted(p.stem for p in (conf / group).glob("*.yaml")))
        done = harness("gate", f"{group}=nope", cwd=tmp_path)
        assert done.returncode == 2, (group, done.stderr)
        assert done.stderr == (
            f"harness gate: error: invalid {group}='nope': unknown option; available: {options}\n"
        )


@pytest.mark.parametrize("typed", ["7x", "1s", "90s"])
def test_a_bad_bucket_suggests_only_buckets_that_are_accepted(tmp_path, typed):
    assert harness("db", "upgrade", cwd=tmp_path).returncode == 0
    refused = harness("query", "latency", "--bucket", typed, cwd=tmp_path)
    assert refused.returncode == 2 and f"invalid bucket={typed!r}" in refused.stderr
    examples = refused.stderr.rstrip().rsplit("such as ", 1)[1].split(", ")
    assert len(examples) >= 3, refused.stderr
    for example in examples:
        done = harness("query", "latency", "--bucket", example, cwd=tmp_path)
        assert done.returncode == 0, (example, done.stderr)


def test_identifiers_print_as_plain_numbers_and_counts_keep_separators(tmp_path):
    from sqlalchemy import update

    from harness.config import RecorderConfig
    from harness.recorder import OutcomeRecord, Recorder
    from harness.store.db import open_engine, upgrade
    from harness.store.models import Run
    from harness.store.runs import start_run

    engine = open_engine(f"sqlite:///{tmp_path / 'harness.db'}")
    upgrade(engine)
    run = start_run(engine, kind="run", config={}, native_available=True)
    with engine.begin() as conn:
        conn.execute(update(Run).values(pid=5905, rows_recorded=1_234_567))
    recorder = Recorder(engine, RecorderConfig(flush_interval_s=0.05), spill_dir=tmp_path, name="t")
    fields = ("place_order", "off", "python", "python", False, None, False)
    failure = ("OrderRejectedError", "rejected", 900.0, 1, 200, 7_000_000_046, "hr-x-1-entry", None)
    recorder.record(OutcomeRecord(1_700_000_000_000_000_000, run, *fields, *failure))
    assert recorder.flush(30)
    recorder.close()
    engine.dispose()
    errors = harness("query", "errors", "--since", "2023-01-01", cwd=tmp_path)
    assert errors.returncode == 0, errors.stderr
    assert "7000000046" in errors.stdout and "7,000,000,046" not in errors.stdout
    runs = harness("query", "runs", cwd=tmp_path)
    assert runs.returncode == 0, runs.stderr
    assert " 5905 " in runs.stdout and "5,905" not in runs.stdout
    assert "1,234,567" in runs.stdout  # a count keeps its separators


def test_breaker_show_with_op_shows_only_that_operation(db, tmp_path):
    every = harness("breaker", "show", "--json", db, cwd=tmp_path)
    assert every.returncode == 0, every.stderr
    assert len(json.loads(every.stdout)) == 4
    one = harness("breaker", "show", "--op", "cancel_order", "--json", db, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert [row["op"] for row in json.loads(one.stdout)] == ["cancel_order"]
    table = harness("breaker", "--op", "modify_order", db, cwd=tmp_path).stdout
    assert "modify_order" in table and "place_order" not in table


def event_kinds(db: str, tmp_path: Path) -> list[str]:
    listed = harness("query", "events", "--json", "--limit", "1000", db, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    return [e["kind"] for e in reversed(json.loads(listed.stdout))]


@pytest.mark.parametrize(
    ("args", "prepare"),
    [
        (("kill", "--reason", "halt"), None),
        (("unkill",), "kill"),
        (("breaker", "reset", "--op", "place_order"), "trip"),
        (("promote", "--force", "--reason", "drill"), None),
        (("rollback", "--reason", "p99"), None),
    ],
)
@pytest.mark.timeout(180)
def test_a_write_meeting_a_busy_database_is_one_line_naming_it_exit_2(
    store_url, db, tmp_path, args, prepare
):
    import storekit

    from harness.store.db import open_engine
    from harness.store.state import ensure_state, set_kill, trip_breaker

    engine = open_engine(store_url)
    ensure_state(engine, "canary")
    if prepare == "kill":
        set_kill(engine, True, reason="halt")
    if prepare == "trip":
        trip_breaker(engine, "place_order", failures=5, reason="5 failures")
    engine.dispose()
    before = event_kinds(db, tmp_path)
    with storekit.write_lock_held(store_url):
        done = harness(*args, db, "db.write_wait_s=0.2", cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    [line] = done.stderr.splitlines()
    command = args[0]
    assert line.startswith(f"harness {command}: error: the database "), line
    assert "is busy: another process has held its write lock" in line
    assert ("harness.db" in line) if store_url.startswith("sqlite") else ("/test_" in line)
    assert done.stdout == ""
    assert event_kinds(db, tmp_path) == before  # nothing written


@pytest.mark.timeout(180)
def test_two_forced_promotions_from_the_stage_both_saw_land_once(store_url, db, tmp_path):
    from harness.store.db import open_engine
    from harness.store.state import ensure_state

    engine = open_engine(store_url)
    ensure_state(engine, "canary")
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_DB_URL"}
    promote = [sys.executable, "-m", "harness", "promote", "--force", "--from", "canary", db]
    both = [
        subprocess.Popen(
            [*promote, "--reason", f"drill {who}", "--who", who],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        for who in ("ana", "bob")
    ]
    outcomes = sorted((p.wait(120), *p.communicate()) for p in both)
    (landed, out, _), (refused, _, said) = outcomes
    assert (landed, refused) == (0, 1), outcomes
    assert out == "promote: canary -> staging (FORCED: the gate said INCONCLUSIVE)\n"
    [line] = said.splitlines()
    assert line.startswith("harness promote: error: the state moved since this was decided: ")
    assert "the stage is now 'staging', not 'canary' (latest event: promote by " in line
    assert event_kinds(db, tmp_path) == ["start", "promote"]
    status = json.loads(harness("status", "--json", db, cwd=tmp_path).stdout)
    assert status["stage"] == "staging"  # not staging_50: no stage skipped


@pytest.mark.timeout(180)
def test_a_second_kill_says_the_flag_was_already_set(db, tmp_path):
    assert harness("kill", "--reason", "broker incident", db, cwd=tmp_path).returncode == 0
    again = harness("kill", "--reason", "again", db, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == (
        "kill: the kill flag was already set at stage off (broker incident): nothing written\n"
    )
    assert event_kinds(db, tmp_path) == ["start", "start", "kill"]  # a start per migration


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("kill", "--who", "\x1b]0;pwned\x07ops"), "--who holds a control character (\\x1b"),
        (("kill", "--who", "ops\u202eevil"), "--who holds a control character (\\u202e"),
        (("kill", "--who", "x" * 100_000), "--who is 100,000 characters long, at most 255"),
        (("kill", "--reason", "r" * 100_000), "--reason is 100,000 characters long, at most 1,000"),
        (("promote", "--force", "--reason", "ok", "--who", "a\nb"), "--who holds a control"),
        (("rollback", "--from", "nope"), "--from 'nope' is not on this ladder"),
    ],
)
@pytest.mark.timeout(180)
def test_typed_text_follows_one_rule_exit_2_nothing_written(db, tmp_path, args, said):
    done = harness(*args, db, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    [line] = done.stderr.splitlines()
    assert said in line and "Traceback" not in line
    assert len(line) < 400  # the value is quoted cut, not 100,000 characters long
    assert "\x1b" not in line and "\u202e" not in line
    assert set(event_kinds(db, tmp_path)) <= {"start"}


@pytest.mark.timeout(180)
def test_events_written_by_an_older_version_are_shown_escaped(store_url, db, tmp_path):
    from harness.store.db import open_engine
    from harness.store.state import ensure_state, write_event

    engine = open_engine(store_url)
    ensure_state(engine, "canary")
    with engine.begin() as conn:  # as a version before the rule stored them
        write_event(
            conn,
            "kill",
            who="\x1b]0;owned\x07mallory",
            reason="\x1b[2J\x1b[Hall clear\nforged line",
            gate={"verdict": "PASS", "criteria": []},
        )
    engine.dispose()
    for form in ((), ("--csv",)):
        shown = harness("query", "events", *form, db, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
        assert "\\x1b[2J\\x1b[Hall clear\\nforged line" in shown.stdout
        assert "\\x1b]0;owned\\x07mallory" in shown.stdout
    listed = harness("query", "events", "--json", db, cwd=tmp_path)
    rows = json.loads(listed.stdout)
    assert "\x1b" not in listed.stdout  # JSON escapes it; the value read back is exact
    assert rows[0]["who"] == "\x1b]0;owned\x07mallory"
    assert rows[0]["gate"] == {"verdict": "PASS", "criteria": []}  # an object, not a string
    assert rows[-1]["kind"] == "start" and rows[-1]["gate"] is None
