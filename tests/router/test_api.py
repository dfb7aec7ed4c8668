"""`harness.open()` and the `Harness` it returns: composing, refusing bad setups before anything
is written, the embedded simulator, and closing (normally, on SIGTERM, at exit) with every
recorded row flushed and the run row ended."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import harness
from harness.config import ConfigError

from .kit import ACCOUNT, rows


def test_projectx_without_credentials_is_refused_naming_the_variables(tmp_path, monkeypatch):
    for name in ("PROJECTX_USERNAME", "PROJECTX_API_KEY", "TOPSTEPX_USERNAME", "TOPSTEPX_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "h.db"
    with pytest.raises(ConfigError) as refused:
        harness.open(["broker=projectx", "broker.username=u", f"db.url=sqlite:///{db}"])
    assert refused.value.field == "broker.api_key"
    assert "PROJECTX_API_KEY" in str(refused.value) and "TOPSTEPX_API_KEY" in str(refused.value)
    assert not db.exists()  # refused before anything was opened


def test_an_unknown_simulator_profile_is_refused_before_the_store_is_touched(tmp_path):
    db = tmp_path / "h.db"
    with pytest.raises(ConfigError) as refused:
        harness.open(["broker.sim.profile=nosuch", f"db.url=sqlite:///{db}"])
    assert (refused.value.field, refused.value.value) == ("broker.sim.profile", "nosuch")
    assert not db.exists()  # no database, no run row, no rollout state


async def test_a_run_that_fails_says_why_in_its_row(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with pytest.raises(RuntimeError):
        async with harness.open(["broker.sim.profile=bench", f"db.url={url}"]):
            raise RuntimeError("the bot's strategy gave up")
    with harness.open(["broker.sim.profile=bench", f"db.url={url}"]) as h:
        key = h.simulator.settings.api_key if h.simulator else ""
    h.close("failed")  # already closed: nothing changes
    with harness.open(["broker.sim.profile=bench", f"db.url={url}"]) as h:
        h.close("failed", reason=f"gave up with key {h.simulator.settings.api_key}")
    found = rows(url, "SELECT status, summary FROM runs ORDER BY started_ns")
    reasons = [(r["status"], json.loads(r["summary"]).get("reason")) for r in found]
    assert reasons == [
        ("failed", "RuntimeError: the bot's strategy gave up"),
        ("finished", None),
        ("failed", "gave up with key ***"),  # the broker key never reaches the row
    ]
    assert key and all(key not in (r["summary"] or "") for r in found)


def test_overrides_and_a_config_together_are_refused(base_config):
    with pytest.raises(ConfigError, match="not both"):
        harness.open(["rollout.kill=true"], config=base_config)


def test_a_bad_override_is_refused_with_its_key(tmp_path):
    with pytest.raises(ConfigError) as refused:
        harness.open(
            ["rollout.stages.2.percent.place_order=140", f"db.url=sqlite:///{tmp_path}/x.db"]
        )
    assert refused.value.field == "rollout.stages.2.percent.place_order"


async def test_the_embedded_simulator_serves_a_default_harness(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    async with harness.open(["broker.sim.profile=bench", "rollout.start_stage=canary"]) as h:
        assert h.simulator is not None and h.simulator.url.startswith("http://127.0.0.1:")
        placed = await h.orders.place_market_order(ACCOUNT, "MNQ", "buy", 1)
        assert [o["id"] for o in h.simulator.ledger()] == [placed.order_id]
        assert h.state.stage == "canary"
        run_id, key = h.run_id, h.simulator.settings.api_key
    url = f"sqlite:///{tmp_path / 'harness.db'}"  # the default: a file in the working folder
    (run,) = rows(url, "SELECT id, status, rows_recorded, rows_dropped, kind, config FROM runs")
    assert (run["id"], run["status"], run["rows_recorded"], run["rows_dropped"]) == (
        run_id,
        "finished",
        1,
        0,
    )
    assert run["kind"] == "bot"
    stored = [rows(url, f"SELECT * FROM {t}") for t in ("runs", "outcomes", "rollout_events")]
    assert key not in repr(stored)


async def test_closing_flushes_every_row_and_is_idempotent(open_harness, sqlite_url):
    h = open_harness(stage="off")
    from .kit import minute_bars

    for _ in range(50):
        h.bars.aggregate(minute_bars(30), "5m")
    await h.aclose()
    await h.aclose()
    (run,) = rows(sqlite_url, "SELECT status, rows_recorded FROM runs")
    assert run["status"] == "finished" and run["rows_recorded"] == 50
    assert len(rows(sqlite_url, "SELECT id FROM outcomes")) == 50


BOT = textwrap.dedent(
    """
    import os, signal, sys, threading
    import numpy as np
    import harness
    from harness.config import compose
    url, calls, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode in ("own-handler", "thread-own-handler"):  # the bot's own handler, installed first
        def stop(signum, frame):
            print("bot handler ran", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, stop)

    def bot():
        cfg = compose(["db.url=" + url, "broker.sim.profile=bench",
                       "db.recorder.flush_interval_s=30"])   # nothing flushed before the end
        h = harness.open(config=cfg)
        if mode == "own-handler-after":  # installed after opening: it replaces the harness's
            def stop(signum, frame):
                flushed = h.flush()
                print(f"bot handler flushed: {flushed}", flush=True)
                os._exit(3)  # no atexit, no close: only the flush saved the rows
            signal.signal(signal.SIGTERM, stop)
        n = 30
        t = (29_000_000 + np.arange(n, dtype=np.int64)) * 60_000_000_000
        o = np.full(n, 4000.0)
        bars = {"t": t, "o": o, "h": o + 1, "l": o - 1, "c": o, "v": np.ones(n, np.int64)}
        for _ in range(calls):
            h.bars.aggregate(bars, "5m")
        if mode == "thread-fork":  # a child made by fork() gets SIGTERM: not the parent's
            child = os.fork()
            if child == 0:
                os.kill(os.getpid(), signal.SIGTERM)
                os._exit(0)  # (not reached: SIGTERM's default ends the child)
            _, status = os.waitpid(child, 0)
            print(f"child ended by signal {os.WTERMSIG(status)}", flush=True)
        print("ready", flush=True)
        if mode != "exit":
            threading.Event().wait()  # until the signal ends the process

    if mode.startswith("thread"):  # opened, used and left open on a worker thread
        worker = threading.Thread(target=bot, daemon=True)
        worker.start()
        worker.join()
    else:
        bot()
    """
)


def run_bot(url: str, calls: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", BOT, url, str(calls), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_flushes_the_recorder_then_exits(sqlite_url):
    bot = run_bot(sqlite_url, 40, "wait")
    assert bot.stdout is not None and bot.stdout.readline().strip() == "ready"
    bot.send_signal(signal.SIGTERM)
    bot.wait(timeout=60)
    assert bot.returncode == -signal.SIGTERM  # it still dies of the signal, as before
    assert len(rows(sqlite_url, "SELECT id FROM outcomes")) == 40
    (run,) = rows(sqlite_url, "SELECT status, rows_recorded FROM runs")
    assert run["status"] == "interrupted" and run["rows_recorded"] == 40


def test_sigterm_flushes_then_chains_to_the_bots_own_handler(sqlite_url):
    bot = run_bot(sqlite_url, 15, "own-handler")
    assert bot.stdout is not None and bot.stdout.readline().strip() == "ready"
    bot.send_signal(signal.SIGTERM)
    out, err = bot.communicate(timeout=60)
    assert bot.returncode == 3, err  # the bot's handler decided how to exit
    assert out.strip() == "bot handler ran"
    assert len(rows(sqlite_url, "SELECT id FROM outcomes")) == 15
    (run,) = rows(sqlite_url, "SELECT status FROM runs")
    assert run["status"] == "interrupted"  # sys.exit -> atexit closed the harness


def test_sigterm_flushes_a_harness_opened_on_a_worker_thread_then_exits(store_url):
    """Python installs signal handlers from the main thread only: a harness opened on another
    thread is flushed by faulthandler's C-level handler and a watcher thread instead."""
    calls = 40
    bot = run_bot(store_url, calls, "thread-wait")
    assert bot.stdout is not None and bot.stdout.readline().strip() == "ready"
    bot.send_signal(signal.SIGTERM)
    _, err = bot.communicate(timeout=60)
    assert bot.returncode == -signal.SIGTERM, err  # it still dies of the signal, as before
    assert "Traceback" not in err, err
    assert len(rows(store_url, "SELECT id FROM outcomes")) == calls
    (run,) = rows(store_url, "SELECT status, rows_recorded FROM runs")
    assert run["status"] == "interrupted" and run["rows_recorded"] == calls


def test_a_forked_childs_sigterm_is_not_the_parents(sqlite_url):
    """The child shares the watcher's pipe: its SIGTERM must not end the parent's harness."""
    bot = run_bot(sqlite_url, 10, "thread-fork")
    assert bot.stdout is not None
    assert bot.stdout.readline().strip() == f"child ended by signal {int(signal.SIGTERM)}"
    assert bot.stdout.readline().strip() == "ready"  # the parent lives on, its harness open
    assert [r["status"] for r in rows(sqlite_url, "SELECT status FROM runs")] == ["running"]
    bot.send_signal(signal.SIGTERM)
    _, err = bot.communicate(timeout=60)
    assert bot.returncode == -signal.SIGTERM, err
    assert len(rows(sqlite_url, "SELECT id FROM outcomes")) == 10
    assert [r["status"] for r in rows(sqlite_url, "SELECT status FROM runs")] == ["interrupted"]


def test_sigterm_on_a_worker_threads_harness_chains_to_the_bots_own_handler(sqlite_url):
    bot = run_bot(sqlite_url, 15, "thread-own-handler")
    assert bot.stdout is not None and bot.stdout.readline().strip() == "ready"
    bot.send_signal(signal.SIGTERM)
    out, err = bot.communicate(timeout=60)
    assert bot.returncode == 3, err  # the bot's handler ran, on the main thread, and exited
    assert out.strip() == "bot handler ran"
    assert len(rows(sqlite_url, "SELECT id FROM outcomes")) == 15
    (run,) = rows(sqlite_url, "SELECT status FROM runs")
    assert run["status"] == "interrupted"


def test_a_bots_handler_installed_after_opening_flushes_with_h_flush(sqlite_url):
    bot = run_bot(sqlite_url, 20, "own-handler-after")
    assert bot.stdout is not None and bot.stdout.readline().strip() == "ready"
    bot.send_signal(signal.SIGTERM)
    out, err = bot.communicate(timeout=60)
    assert bot.returncode == 3, err
    assert out.strip() == "bot handler flushed: True"
    assert len(rows(sqlite_url, "SELECT id FROM outcomes")) == 20


def test_an_unclosed_harness_is_flushed_at_exit(sqlite_url):
    bot = run_bot(sqlite_url, 25, "exit")
    _, err = bot.communicate(timeout=60)
    assert bot.returncode == 0, err
    assert len(rows(sqlite_url, "SELECT id FROM outcomes")) == 25
    (run,) = rows(sqlite_url, "SELECT status FROM runs")
    assert run["status"] == "interrupted"


def test_harness_import_stays_light():
    script = "import sys, harness.errors; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
    assert Path(harness.__file__).name == "__init__.py"


def test_a_start_stage_the_store_already_left_behind_is_said_not_applied(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with harness.open(["broker.sim.profile=bench", f"db.url={url}"]) as h:
        assert h.state.stage == "off"
    with (
        caplog.at_level("WARNING", logger="harness.router"),
        harness.open(
            ["broker.sim.profile=bench", f"db.url={url}", "rollout.start_stage=shadow"]
        ) as h,
    ):
        assert h.state.stage == "off"  # the store's stage, not the start stage
    said = [r.getMessage() for r in caplog.records if "start_stage=shadow" in r.getMessage()]
    assert len(said) == 2 and any("migration orders at off" in line for line in said), said


def test_a_global_start_stage_may_name_a_stage_of_a_migrations_own_ladder(tmp_path):
    from harness.config import compose

    cfg = compose(["rollout=by_symbol", "rollout.start_stage=mnq"])
    assert {cfg.rollout.start_of(name) for name in ("orders", "bars")} == {"mnq"}
    with pytest.raises(ConfigError, match="not a stage"):
        compose(["rollout=by_symbol", "rollout.start_stage=mnx"])
