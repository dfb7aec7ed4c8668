"""Capture and replay, end to end: a real `harness run` against a `harness sim` child process
(the broker's API key a marker) captures every call; `harness replay` (the real CLI) replays
them on both sides of today's build and exits 0; a deliberately broken build of either side
(one body field built wrongly, one answer misread: `HARNESS_TEST_BROKEN_CODEC`) is caught by
`harness replay` and by the order shadow, the field named; the captures hold no secret."""

from __future__ import annotations

import json
import re
import shutil
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from run.kit import harness, summary
from sqlalchemy import create_engine, text

from harness.bars import python as python_engine
from harness.operations import Impl
from harness.orders.trace import Exchange
from harness.replay import replay
from harness.router.capture import encode, scrub_exchange
from harness.sim import SimSettings, Simulator, SpawnedSimulator
from harness.store.retention import MIN_AGE_NS, prune

pytestmark = pytest.mark.timeout(300)

SIM_USER = "replay-suite-user"
API_KEY = "APIKEY-replay-marker-3c9d1e07"
JWT = "eyJhbGciOi"  # every session token the simulator issues starts so
OPS = {"place_order", "modify_order", "cancel_order", "aggregate_bars"}
CAPTURE_ALL = (
    "rollout.migrations.orders.capture.rate=1.0",
    "rollout.migrations.bars.capture.rate=1.0",
)


@pytest.fixture(scope="module")
def gateway() -> Iterator[SpawnedSimulator]:
    """A `harness sim` child process whose API key is the marker."""
    spawned = Simulator.spawn(SimSettings(username=SIM_USER, api_key=API_KEY))
    try:
        yield spawned
    finally:
        spawned.stop()


def run(folder: Path, gateway: SpawnedSimulator, url: str, *overrides: str, env: Any = None):
    """`harness run --json` of a few round trips on `url`, every call captured; its summary."""
    done = harness(
        folder, "run", "--json", "workload.trades=4", "broker=projectx",
        f"broker.base_url={gateway.url}", f"db.url={url}", *CAPTURE_ALL, *overrides,
        env={"PROJECTX_USERNAME": SIM_USER, "PROJECTX_API_KEY": API_KEY, **(env or {})},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert API_KEY not in done.stdout + done.stderr
    return summary(done)


def query(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]
    finally:
        engine.dispose()


def replayed(folder: Path, url: str, *args: str, env: Any = None):
    return harness(folder, "replay", *args, f"db.url={url}", env=env)


@pytest.fixture(scope="module")
def captured(tmp_path_factory, gateway) -> tuple[str, str]:
    """One captured run on SQLite at canary (both sides serve): (url, run id)."""
    folder = tmp_path_factory.mktemp("captured")
    url = f"sqlite:///{folder / 'harness.db'}"
    data = run(folder, gateway, url, "rollout.start_stage=canary")
    return url, data["run"]


def test_a_captured_run_replays_clean_on_todays_build_and_its_captures_hold_no_secret(
    store_url, tmp_path, gateway
):
    data = run(tmp_path, gateway, store_url, "rollout.start_stage=canary")
    rows = query(store_url, "SELECT * FROM captures WHERE run_id = :r", r=data["run"])
    counts = Counter(r["op"] for r in rows)
    assert set(counts) == OPS
    assert counts["place_order"] == 12 and counts["aggregate_bars"] == 4  # every call, once
    build = query(store_url, "SELECT build_id FROM runs WHERE id = :r", r=data["run"])[0]
    paths = set()
    for row in rows:
        payload = bytes(row["payload"])
        assert row["size"] == len(payload) <= 65536 and row["format"] == 1
        assert row["build_id"] == build["build_id"]
        document = zlib.decompress(payload).decode()
        assert API_KEY not in document and JWT not in document, row["op"]
        paths |= {e["path"] for e in json.loads(document).get("exchanges", [])}
    assert "/api/Order/place" in paths and "/api/Order/cancel" in paths

    done = replayed(tmp_path, store_url, "--run", data["run"], "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["build_id"] == build["build_id"] and report["mismatched"] == 0
    by_op = {r["op"]: r for r in report["ops"]}
    assert set(by_op) == OPS
    for op, one in by_op.items():
        assert one["replayed"] == one["matched"] == counts[op], one
        assert one["skipped"] == one["unreadable"] == 0 and one["differences"] == []
    stored = query(store_url, "SELECT op, replayed, mismatched, build_id FROM replays")
    assert {(r["op"], r["replayed"], r["mismatched"]) for r in stored} == {
        (op, counts[op], 0) for op in OPS
    }
    assert {r["build_id"] for r in stored} == {build["build_id"]}


@pytest.mark.parametrize(
    ("hook", "field"),
    [("rust:body.size", r"body\.size"), ("python:read.order_id", r"read\[\d+\]\.order_id")],
    ids=["rust-builds-a-field-wrongly", "python-misreads-an-answer"],
)
def test_a_broken_build_fails_the_replay_naming_the_field(captured, tmp_path, hook, field):
    url, run_id = captured
    env = {"HARNESS_TEST_BROKEN_CODEC": hook}
    done = replayed(tmp_path, url, "--run", run_id, "--op", "place_order", "--json", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    place = json.loads(done.stdout)["ops"][0]
    assert place["op"] == "place_order" and place["mismatched"] == place["replayed"] == 12
    first = place["differences"][0]
    assert re.fullmatch(field, first["field"]), first
    assert first["left"] != first["right"]
    side = hook.split(":")[0]
    assert side in (first["left_side"], first["right_side"])
    text_form = replayed(tmp_path, url, "--run", run_id, env=env)
    assert text_form.returncode == 1
    assert re.search(rf"place_order capture \w+: {field} differs", text_form.stdout)
    clean = replayed(tmp_path, url, "--run", run_id, "--op", "place_order")
    assert clean.returncode == 0, clean.stdout + clean.stderr  # today's build, unbroken


@pytest.mark.parametrize(
    ("hook", "field"),
    [("rust:body.size", r"body\.size"), ("python:read.order_id", r"read\[\d+\]\.order_id")],
    ids=["rust-builds-a-field-wrongly", "python-misreads-an-answer"],
)
def test_a_broken_build_is_caught_by_the_order_shadow_naming_the_field(
    tmp_path, gateway, hook, field
):
    url = f"sqlite:///{tmp_path / 'harness.db'}"
    env = {"HARNESS_TEST_BROKEN_CODEC": hook}
    # Every placement compared, however slowly the shadow threads run on a loaded machine
    # (at the default max_in_flight a burst beyond 4 pending comparisons is skipped, counted).
    data = run(
        tmp_path, gateway, url, "rollout.start_stage=shadow", "rollout.shadow.max_in_flight=64",
        env=env,
    )  # fmt: skip
    rows = query(
        url, "SELECT op, field, matched FROM shadow_comparisons WHERE run_id = :r AND "
        "op = 'place_order'", r=data["run"],
    )  # fmt: skip
    assert len(rows) == 12 and not any(r["matched"] for r in rows)
    assert all(re.fullmatch(field, r["field"]) for r in rows), rows


class WrongEngine:
    """The pure-Python engine but for the high of bar 1 of the first timeframe."""

    Aggregator = python_engine.Aggregator

    @staticmethod
    def aggregate_columns(*args: Any) -> list[Any]:
        results = python_engine.aggregate_columns(*args)
        t, o, h, low, c, v = results[0]
        if len(h) > 1:
            h = h.copy()
            h[1] += 0.25
            results[0] = (t, o, h, low, c, v)
        return results


def test_a_wrong_aggregation_engine_fails_the_replay_naming_the_bar(captured):
    url, run_id = captured
    engine = create_engine(url)
    try:
        engines = {Impl.PYTHON: python_engine, Impl.RUST: WrongEngine}
        report = replay(engine, "test-build", run=run_id, op="aggregate_bars", engines=engines)
    finally:
        engine.dispose()
    bars = report.ops["aggregate_bars"]
    assert bars.replayed == bars.mismatched == 4
    first = bars.differences[0]
    assert re.fullmatch(r"\w+\.h\[1\]", first["field"]), first
    assert (first["left_side"], first["right_side"]) == ("python", "rust")
    assert first["right"] == pytest.approx(first["left"] + 0.25)


def test_prune_deletes_captures_past_the_age_and_keeps_the_replays(captured, tmp_path):
    url, _ = captured
    copy = tmp_path / "copy.db"
    shutil.copy(url.removeprefix("sqlite:///"), copy)
    copy_url = f"sqlite:///{copy}"
    before = query(copy_url, "SELECT count(*) AS n FROM captures")[0]["n"]
    assert before > 0
    engine = create_engine(copy_url)
    try:
        kept = prune(engine, MIN_AGE_NS, dry_run=True)
        assert kept.captures == 0  # all younger than an hour
        later = time.time_ns() + 2 * MIN_AGE_NS
        assert prune(engine, MIN_AGE_NS, dry_run=True, now_ns=later).captures == before
        assert prune(engine, MIN_AGE_NS, now_ns=later).captures == before
    finally:
        engine.dispose()
    assert query(copy_url, "SELECT count(*) AS n FROM captures")[0]["n"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--op", "nosuch"), "invalid op='nosuch': no such operation; known: "),
        (("--migration", "nope"), "invalid migration='nope': no such migration"),
        (("--run", "nosuch"), "invalid run='nosuch': no such run in the store"),
        (("--since", "soon"), "invalid since='soon'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(captured, tmp_path, args, message):
    url, _ = captured
    done = replayed(tmp_path, url, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""


def test_an_aggregation_over_max_bytes_is_not_captured_and_is_counted(tmp_path):
    import harness as api

    h = api.open([
        f"db.url=sqlite:///{tmp_path / 'h.db'}", "broker.sim.profile=default",
        "rollout.migrations.bars.capture.rate=1.0", "rollout.migrations.bars.capture.max_bytes=256",
    ])  # fmt: skip
    try:
        start_ns = 1_800_000_000 // 60 * 60 * 1_000_000_000  # a minute of 2027
        t = start_ns + np.arange(0, 600, dtype=np.int64) * 60_000_000_000
        price = 100.0 + np.sin(np.arange(600) / 7.0)
        bars = {"t": t, "o": price, "h": price + 1, "l": price - 1, "c": price,
                "v": np.ones(600, dtype=np.int64)}  # fmt: skip
        h.bars.aggregate(bars, "5m")
        assert h.recorder.flush(30)
        stats = h.recorder.stats()
    finally:
        h.close()
    assert stats.captures_oversize == 1 and stats.captures_written == 0
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert query(url, "SELECT count(*) AS n FROM captures")[0]["n"] == 0


def test_the_capture_scrubs_secrets_by_one_rule():
    login = Exchange(
        "/api/Auth/loginKey", b'{"userName":"u","apiKey":"K-1"}', 200, b'{"token":"T-1"}',
        None, None,
    )  # fmt: skip
    assert scrub_exchange(login)["request"] == scrub_exchange(login)["response"] == "***"
    other = Exchange(
        "/api/Order/place", b'{"a":{"Password":"P-1"},"token":"T-2","x":[{"apiKey":"K-2"}]}',
        200, b'{"success":true,"authorization":"Bearer T-3"}', None, None,
    )  # fmt: skip
    document = {"exchanges": [scrub_exchange(other)], "url": "postgresql://u:P-4@h/db"}
    text_form = zlib.decompress(encode(document, lambda s: s.replace("S-5", "***"))).decode()
    for secret in ("P-1", "T-2", "K-2", "T-3", "P-4"):
        assert secret not in text_form
    plain = Exchange("/api/Order/cancel", b'{"accountId":1,"orderId":2}', 200, b"{}", None, None)
    assert scrub_exchange(plain)["request"] == '{"accountId":1,"orderId":2}'  # byte for byte


def replay_criterion(folder: Path, url: str) -> dict[str, Any]:
    done = harness(
        folder, "gate", "--migration", "orders", "--json", "gate.replay_required=true",
        f"db.url={url}",
    )  # fmt: skip
    assert done.returncode in (1, 3), done.stdout + done.stderr  # FAIL or INCONCLUSIVE
    found = [c for c in json.loads(done.stdout)["criteria"] if c["criterion"] == "replay"]
    assert len(found) == 1 and found[0]["op"] is None
    return found[0]


def test_the_gate_requires_a_clean_replay_of_the_current_build(tmp_path, gateway):
    url = f"sqlite:///{tmp_path / 'harness.db'}"
    run(tmp_path, gateway, url, "rollout.start_stage=canary")
    assert replay_criterion(tmp_path, url)["result"] == "INCONCLUSIVE"  # not replayed yet
    broken = {"HARNESS_TEST_BROKEN_CODEC": "rust:body.size"}
    assert replayed(tmp_path, url, "--migration", "orders", env=broken).returncode == 1
    failed = replay_criterion(tmp_path, url)
    assert failed["result"] == "FAIL" and "mismatched on place_order" in failed["detail"]
    assert replayed(tmp_path, url, "--migration", "orders").returncode == 0
    passed = replay_criterion(tmp_path, url)
    assert passed["result"] == "PASS" and passed["figure"] == 0
    # Without the setting the gate judges no replay at all.
    plain = harness(tmp_path, "gate", "--migration", "orders", "--json", f"db.url={url}")
    assert "replay" not in {c["criterion"] for c in json.loads(plain.stdout)["criteria"]}


def test_without_the_native_module_there_is_no_rust_side_to_replay_on(captured, tmp_path):
    url, _ = captured
    done = replayed(tmp_path, url, env={"HARNESS_NO_NATIVE": "1"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "harness replay: error: the native module is unavailable" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""
