"""Alerts on a real webhook receiver on loopback: what each event sends, and what a dead
endpoint costs.

Every event is sent by the process that writes it, once its transaction commits, from a sender
thread: the tests wait for the body to arrive (5 s is the bound the issue sets; the waits are
generous and the bound is asserted once per alert on the event's own clock). No body may carry
a secret: the broker's API key, the database password and the webhook's own token are markers
looked for in every raw body.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waitkit import wait_until

import harness
from harness.alerts import Alert, notify, open_alerter
from harness.alerts.sender import send_test
from harness.config import AlertsConfig, BrokerKind, HarnessConfig, compose, redacted
from harness.recorder import OutcomeRecord, Recorder
from harness.sim import SimSettings, Simulator
from harness.store.db import open_engine, write_transaction
from harness.store.state import write_event

from .receiver import Receiver, receiver, refused_url

SECRET_KEY = "alerts-key-7c2f-do-not-send"
TOKEN = "T0KEN-b9e1-do-not-send"
SIM_USER = "alerts-user"
BOUND_S = 5.0  # what the issue asks: each alert within 5 s of its event
ALL = ["alerts.events=[auto_rollback,breaker_trip,kill,unkill,promote,rollback,"
       "native_unavailable,rows_dropped,spill]"]  # fmt: skip


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimSettings(rate_limit=False, username=SIM_USER, api_key=SECRET_KEY)) as s:
        yield s


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOPSTEPX_USE_RUST", raising=False)
    monkeypatch.delenv("HARNESS_NO_NATIVE", raising=False)


def config(url: str, sim: Simulator, target: str, *overrides: str) -> HarnessConfig:
    """The shipped config at production (every call of a registered operation goes to its
    Rust side), on `url`, the module's simulator as the gateway, alerting `target`."""
    cfg = compose(
        [
            "rollout.start_stage=production",
            "rollout.refresh_s=0.1",
            "gate.check_interval_s=0.2",
            "db.recorder.flush_interval_s=0.05",
            *overrides,
        ],
        environ={},
    )
    cfg.db.url = url
    cfg.broker.kind = BrokerKind.projectx
    cfg.broker.base_url = sim.url
    cfg.broker.username = SIM_USER
    cfg.broker.api_key = SECRET_KEY
    cfg.alerts.urls = [target]
    return cfg


def secrets_of(url: str) -> list[str]:
    from sqlalchemy.engine import make_url

    password = make_url(url).password
    return [SECRET_KEY, TOKEN] + ([str(password)] if password else [])


def arrived(hook: Receiver, kind: str, **fields: Any) -> dict[str, Any]:
    """The first body of `kind` with `fields`, waited for (generously: CI is loaded)."""

    def found() -> dict[str, Any] | None:
        for body in hook.events(kind):
            if all(body.get(k) == v for k, v in fields.items()):
                return body
        return None

    return wait_until(found, timeout=30, what=f"a {kind} alert with {fields}")


def within_bound(hook: Receiver, body: dict[str, Any]) -> float:
    """Seconds from the event's time (`at`) to the body's arrival."""
    from datetime import datetime

    (got,) = [t for _p, b, t in hook.bodies if b is body]
    at = datetime.fromisoformat(body["at"].replace("Z", "+00:00")).timestamp()
    return got - time.monotonic() + time.time() - at


def assert_no_secret(hook: Receiver, secrets: list[str]) -> None:
    assert hook.raw, "nothing was received"
    for raw in hook.raw:
        for secret in secrets:
            assert secret.encode() not in raw, (secret, raw[:300])


def seed_rust_errors(h: harness.Harness, stage: str) -> None:
    """Rust placements failing at `stage`, recorded through the harness's own recorder (as its
    router records them): the gate's error_rate FAILs, a critical criterion."""
    now = time.time_ns()
    for i in range(300):
        failed = i < 150
        for side in ("rust", "python"):
            h.recorder.record(
                OutcomeRecord(
                    now + i * 1000, h.run_id, "place_order", stage, side, side, False, None,
                    not (failed and side == "rust"),
                    "BrokerUnavailableError" if failed and side == "rust" else None,
                    "connection lost" if failed and side == "rust" else None,
                    90_000.0, 1, None, None, None, None,
                )
            )  # fmt: skip


def test_a_harness_sends_its_breaker_trip_kill_rollback_and_automatic_rollback(
    store_url: str, sim: Simulator, hook: Receiver
) -> None:
    cfg = config(store_url, sim, f"{hook.url}/hook/{TOKEN}", *ALL, "rollout.breaker.failures=2")
    with harness.open(config=cfg) as h:
        op = h.register_operation("flaky", python=lambda x: x, rust=_broken)
        for i in range(3):
            assert op(i) == i
        trip = arrived(hook, "breaker_trip", op="flaky")
        assert trip["migration"] == "flaky" and trip["who"] == "router"
        assert "RuntimeError" in trip["reason"]

        h.kill("drill: kill", who="ops")
        kill = arrived(hook, "kill", who="ops")
        assert kill["migration"] is None and kill["reason"] == "drill: kill"
        h.unkill("drill: unkill", who="ops")
        arrived(hook, "unkill", who="ops")

        from harness.control import actions

        actions.rollback(h.engine, cfg, who="ops", reason="drill: rollback")
        rollback = arrived(hook, "rollback", who="ops")
        assert (rollback["from"], rollback["to"]) == ("production", "staging_50")

        actions.promote(h.engine, cfg, who="ops", reason="drill: forced promotion", force=True)
        promote = arrived(hook, "promote", who="ops")
        assert (promote["from"], promote["to"]) == ("staging_50", "production")

        wait_until(lambda: h.state.stage == "production", what="the harness at production")
        seed_rust_errors(h, "production")
        auto = arrived(hook, "auto_rollback")
        assert (auto["from"], auto["to"], auto["who"]) == ("production", "staging_50", "gate")
        assert "error_rate" in auto["reason"] and auto["gate"]["verdict"] == "FAIL"
        for body in (trip, kill, rollback, promote, auto):
            assert within_bound(hook, body) < BOUND_S, body
            assert body["host"] and body["at"].endswith("Z")
    assert_no_secret(hook, secrets_of(store_url))
    assert all(path == f"/hook/{TOKEN}" for path, _b, _t in hook.bodies)


def _broken(x: int) -> int:
    raise RuntimeError(f"rust side broken (key {SECRET_KEY})")


def test_the_native_module_unavailable_is_sent(
    sqlite_url: str, sim: Simulator, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_NO_NATIVE", "1")
    with harness.open(config=config(sqlite_url, sim, hook.url)):
        body = arrived(hook, "native_unavailable")
    assert body["reason"] == "disabled by HARNESS_NO_NATIVE=1"
    assert within_bound(hook, body) < BOUND_S


def test_manual_promotions_are_not_sent_by_default_and_events_select(
    sqlite_url: str, sim: Simulator, hook: Receiver
) -> None:
    cfg = config(sqlite_url, sim, hook.url)
    assert "promote" not in cfg.alerts.events
    with harness.open(config=cfg) as h:
        from harness.control import actions

        actions.rollback(h.engine, cfg, who="ops", reason="back")
        actions.promote(h.engine, cfg, who="ops", reason="forced", force=True)
        arrived(hook, "rollback", who="ops")
        assert h.alerter is not None and h.alerter.flush(30)
    assert hook.events("promote") == []
    only_kill = config(sqlite_url, sim, hook.url, "alerts.events=[kill]")
    with harness.open(config=only_kill) as h:
        h.kill("only kills", who="ops")
        h.unkill("not sent", who="ops")
        arrived(hook, "kill", reason="only kills")
        assert h.alerter is not None and h.alerter.flush(30)
    assert hook.events("unkill") == []


def test_an_event_is_sent_once_its_transaction_commits_and_never_when_rolled_back(
    store_url: str, hook: Receiver
) -> None:
    alerter = open_alerter(AlertsConfig(urls=[hook.url]))
    assert alerter is not None
    engine = open_engine(store_url)
    try:
        with pytest.raises(RuntimeError), write_transaction(engine) as conn:
            write_event(conn, "rows_dropped", who="recorder", reason="rolled back")
            raise RuntimeError("the transaction fails")
        with write_transaction(engine) as conn:
            write_event(conn, "rows_dropped", who="recorder", reason="1 row refused")
            assert hook.events() == []  # not before the commit
        arrived(hook, "rows_dropped", reason="1 row refused")
        assert alerter.flush(30)
    finally:
        alerter.close()
        engine.dispose()
    assert [b["reason"] for b in hook.events()] == ["1 row refused"]


def test_the_recorder_spilling_is_sent_once_per_spell(tmp_path: Path, hook: Receiver) -> None:
    alerter = open_alerter(AlertsConfig(urls=[hook.url]))
    assert alerter is not None
    down = refused_url().replace("http://", "postgresql+psycopg://u:pw-9f3a@")
    engine = open_engine(down)
    rec_cfg = compose([]).db.recorder
    rec_cfg = dataclasses.replace(rec_cfg, buffer_rows=10, flush_interval_s=0.02, retry_s=0.05)
    recorder = Recorder(engine, rec_cfg, spill_dir=tmp_path, name="spilling")
    try:
        for i in range(200):
            recorder.record(_row(i))
        wait_until(lambda: recorder.stats().spilled > 0, what="rows spilled")
        body = arrived(hook, "spill")
        assert "spilled to" in body["reason"] and "pw-9f3a" not in json.dumps(body)
        for i in range(200, 400):
            recorder.record(_row(i))
        wait_until(lambda: recorder.stats().spilled >= 300, what="more rows spilled")
        assert alerter.flush(30)
        assert len(hook.events("spill")) == 1
    finally:
        recorder.close(timeout=0.1)
        alerter.close()
        engine.dispose()


def _row(i: int) -> OutcomeRecord:
    return OutcomeRecord(
        time.time_ns(), "run", "place_order", "canary", "rust", "rust", False, None, True,
        None, None, 90_000.0, 1, None, None, None, None,
    )  # fmt: skip


def test_the_queue_is_bounded_and_what_is_dropped_is_counted() -> None:
    with receiver(hang=True) as stuck:
        cfg = AlertsConfig(urls=[stuck.url], max_pending=3, timeout_s=30, flush_s=0.2)
        alerter = open_alerter(cfg)
        assert alerter is not None
        try:
            notify(Alert(kind="kill", reason="kill 0"))
            wait_until(lambda: stuck.requests == 1, what="the first alert in flight")
            for i in range(1, 10):
                notify(Alert(kind="kill", reason=f"kill {i}"))
            # One in flight (the receiver holds it), three waiting, the other six dropped.
            assert (alerter.stats().dropped, alerter.stats().pending) == (6, 4)
        finally:
            stats = alerter.close()
        assert stuck.requests == 1  # closed while the endpoint still holds the first
    # What was not sent by the flush deadline is dropped too, and counted once.
    assert (stats.sent, stats.failed, stats.dropped, stats.pending) == (0, 0, 10, 0)
    assert alerter.stats() == stats


def test_a_failing_endpoint_is_retried_with_backoff_until_it_answers() -> None:
    with receiver(status=503) as flaky:
        cfg = AlertsConfig(urls=[flaky.url], deadline_s=60)
        alerter = open_alerter(cfg)
        assert alerter is not None
        try:
            notify(Alert(kind="breaker_trip", op="place_order"))
            wait_until(lambda: len(flaky.bodies) >= 2, what="a second attempt")
            flaky.status = 200
            wait_until(lambda: alerter.stats().sent == 1, what="the alert sent")
        finally:
            stats = alerter.close()
    assert stats.retries >= 1 and stats.failed == 0
    bodies = flaky.events("breaker_trip")
    assert len({b["id"] for b in bodies}) == 1  # the same alert, tried again


def test_an_apprise_target_receives_the_alert(hook: Receiver) -> None:
    target = hook.url.replace("http://", "json://") + f"/apprise/{TOKEN}"
    answers = send_test(
        AlertsConfig(urls=[target]), Alert(kind="test", reason=f"with {SECRET_KEY}"), [SECRET_KEY]
    )
    assert [(a.target, a.ok, a.answer) for a in answers] == [("json://***", True, "sent")]
    ((path, body, _t),) = hook.bodies
    assert path == f"/apprise/{TOKEN}"
    assert body["title"].startswith("harness: test") and "reason: with ***" in body["message"]
    assert_no_secret(hook, [SECRET_KEY])


def test_a_token_in_a_target_is_redacted_in_the_config_shown_and_stored() -> None:
    cfg = compose([f"alerts.urls=[https://hooks.slack.com/services/T/B/{TOKEN},slack://{TOKEN}]"])
    assert redacted(cfg)["alerts"]["urls"] == ["https://hooks.slack.com/***", "slack://***"]
    url = f"https://h.example/x?token={TOKEN}"
    shown = _harness("status", "--cfg", "job", f"alerts.urls=['{url}']")
    assert shown.returncode == 0 and TOKEN not in shown.stdout
    assert "https://h.example/***" in shown.stdout
    unquoted = _harness("status", f"alerts.urls=[{url}]")  # Hydra's grammar refuses it
    assert unquoted.returncode == 2 and TOKEN not in unquoted.stderr + unquoted.stdout
    bad = _harness("status", f"alerts.urls=[nope/{TOKEN}]")
    assert bad.returncode == 2 and TOKEN not in bad.stderr + bad.stdout
    assert "alerts.urls.0" in bad.stderr and "Traceback" not in bad.stderr


def _harness(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**os.environ, "HARNESS_NO_NATIVE": "", **env},
    )  # fmt: skip


def test_harness_kill_sends_its_alert_and_returns_while_dead_endpoints_hang(
    tmp_path: Path, hook: Receiver
) -> None:
    db = f"sqlite:///{tmp_path / 'harness.db'}"
    assert _harness("db", "upgrade", f"db.url={db}").returncode == 0
    with receiver(hang=True) as stuck:
        targets = f"alerts.urls=[{hook.url}/k/{TOKEN},{refused_url()},{stuck.url}/never]"
        done = _harness("kill", "--reason", "night drill", "--who", "ops", f"db.url={db}", targets)
        assert done.returncode == 0, done.stderr
        # The command has ended while the hanging endpoint still holds its request unanswered.
        assert stuck.requests <= 1 and not stuck.bodies
        body = arrived(hook, "kill", who="ops")
        assert TOKEN not in done.stderr + done.stdout
    assert body["reason"] == "night drill" and body["migration"] is None
    assert within_bound(hook, body) < BOUND_S
    assert_no_secret(hook, [TOKEN])


def test_harness_alerts_test_says_what_each_target_answered(hook: Receiver) -> None:
    targets = f"alerts.urls=[{hook.url}/ok/{TOKEN},{refused_url()}]"
    done = _harness("alerts", "test", "--json", targets)
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    answers = [(t["target"], t["ok"]) for t in data["targets"]]
    assert answers[0] == (f"{hook.url}/***", True) and answers[1][1] is False
    assert data["targets"][0]["answer"] == "HTTP 204"
    assert "ConnectError" in data["targets"][1]["answer"]
    assert TOKEN not in done.stdout + done.stderr
    assert hook.events("test")[0]["who"] == "harness alerts test"
    ok = _harness("alerts", "test", f"alerts.urls=[{hook.url}/ok/{TOKEN}]")
    assert ok.returncode == 0 and "HTTP 204" in ok.stdout and TOKEN not in ok.stdout
    none = _harness("alerts", "test")
    assert none.returncode == 2 and "alerts.urls" in none.stderr


def test_a_dead_endpoint_does_not_hold_up_a_routed_call(sqlite_url: str, sim: Simulator) -> None:
    with receiver(hang=True) as stuck:
        cfg = config(sqlite_url, sim, f"{stuck.url}/never", "rollout.breaker.failures=1")
        with harness.open(config=cfg) as h:
            op = h.register_operation("flaky", python=lambda x: x, rust=_broken)
            assert op(0) == 0  # trips the breaker: its alert goes to the hanging endpoint
            wait_until(lambda: stuck.requests == 1, what="the trip's alert in flight")
            for i in range(1, 200):  # routed calls while the endpoint holds the alert
                assert op(i) == i
            assert stuck.requests == 1 and not stuck.bodies  # still hung: nothing answered
            assert h.alerter is not None and h.alerter.stats().pending == 1


def test_an_automatic_promotion_is_sent_by_default_with_its_verdict(
    sqlite_url: str, sim: Simulator, hook: Receiver
) -> None:
    # `off` PASSes at once under `quick` (no soak, nothing to judge at 0%): the harness's own
    # monitor promotes both migrations to `shadow`, where new evidence is needed.
    cfg = config(
        sqlite_url, sim, hook.url, "rollout.start_stage=off", "gate=quick",
        "gate.auto_promote=true",
    )  # fmt: skip
    assert "auto_promote" in cfg.alerts.events
    with harness.open(config=cfg):
        bodies = [arrived(hook, "auto_promote", migration=m) for m in ("orders", "bars")]
    for body in bodies:
        assert (body["from"], body["to"], body["who"]) == ("off", "shadow", "gate")
        assert body["gate"]["verdict"] == "PASS" and "automatic promotion" in body["reason"]
    assert_no_secret(hook, secrets_of(sqlite_url))
