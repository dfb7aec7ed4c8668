"""Logs as a user sets them (issue 24): `--log-level` and `HARNESS_LOG_LEVEL` (the option wins),
`HARNESS_LOG_FORMAT=json` one JSON object per line on stderr, stdout left to the command's own
output, secrets scrubbed in both formats; bad values refused in one line naming the option or
the variable and the value."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from run.kit import FAST, SIM_USER, command, environment, harness

from harness import logs
from harness.sim import FaultRule, SimSettings, Simulator

pytestmark = pytest.mark.timeout(180)

API_KEY = "APIKEY-logmarker-3c9d1e07"
PASSWORD = "PGPASS-logmarker-8b2f4a16"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib3QifQ.c2lnbmF0dXJl"  # a session token's shape
MARKERS = (API_KEY, PASSWORD, "eyJhbGciOi", "c2lnbmF0dXJl")


def _json_lines(stderr: str) -> list[dict[str, object]]:
    """Every line of `stderr` parsed as one JSON object (a line that is not one fails)."""
    entries = []
    for line in stderr.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


# ----- the handler, in process: every place a secret can stand in a record ---------------------


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _log_every_secret_place() -> None:
    log = logging.getLogger("harness.test")
    logs.add_secrets([API_KEY, PASSWORD])
    url = f"postgresql+psycopg://bot:{PASSWORD}@db.example:5432/harness"
    log.debug("key %s at %s", API_KEY, url, extra={"token": f"Bearer {JWT}", "n": 3})
    try:
        raise RuntimeError(f"login refused for apiKey={API_KEY}, token {JWT}")
    except RuntimeError:
        log.exception("failed", extra={"where": {"url": url, "tries": [1, JWT]}})


@pytest.mark.usefixtures("restore_root")
def test_json_lines_carry_the_fields_and_extras_with_every_secret_scrubbed() -> None:
    out = io.StringIO()
    logs.setup("DEBUG", environ={"HARNESS_LOG_FORMAT": "json"}, stream=out)
    _log_every_secret_place()
    text = out.getvalue()
    first, second = _json_lines(text)
    assert not [m for m in MARKERS if m in text]
    assert list(first)[:4] == ["ts", "level", "logger", "message"]
    assert (first["level"], first["logger"], first["n"]) == ("DEBUG", "harness.test", 3)
    assert first["message"] == "key *** at postgresql+psycopg://bot:***@db.example:5432/harness"
    assert first["token"] == "Bearer ***"
    assert datetime.fromisoformat(str(first["ts"])).utcoffset().total_seconds() == 0
    assert str(first["ts"]).endswith("Z")
    assert second["level"] == "ERROR" and "Traceback" in str(second["exception"])
    assert "RuntimeError: login refused for apiKey=***, token ***" in str(second["exception"])
    assert second["where"] == {"url": "postgresql+psycopg://bot:***@db.example:5432/harness",
                               "tries": [1, "***"]}  # fmt: skip


@pytest.mark.usefixtures("restore_root")
def test_text_lines_stay_as_before_with_every_secret_scrubbed() -> None:
    out = io.StringIO()
    logs.setup("DEBUG", environ={}, stream=out)
    _log_every_secret_place()
    text = out.getvalue()
    assert not [m for m in MARKERS if m in text]
    assert text.startswith("DEBUG harness.test: key *** at postgresql+psycopg://bot:***@")
    assert "ERROR harness.test: failed\nTraceback" in text


@pytest.mark.usefixtures("restore_root")
def test_the_level_comes_from_the_option_then_the_variable_then_warning() -> None:
    logs.setup("ERROR", environ={"HARNESS_LOG_LEVEL": "debug"}, stream=io.StringIO())
    assert logging.getLogger().level == logging.ERROR
    logs.setup(None, environ={"HARNESS_LOG_LEVEL": "info"}, stream=io.StringIO())
    assert logging.getLogger().level == logging.INFO
    logs.setup(None, environ={"HARNESS_LOG_LEVEL": ""}, stream=io.StringIO())
    assert logging.getLogger().level == logging.WARNING


# ----- the real command line --------------------------------------------------------------------


def test_a_real_run_at_debug_in_json_logs_only_json_lines_and_no_secret(
    tmp_path: Path, pg_url: str
) -> None:
    """A `harness run` against a `harness sim` with the marker API key (faults, so errors and
    retries are logged), its database URL carrying the marker password: stderr is JSON lines
    only, DEBUG records among them, no marker and no session token anywhere; stdout is still
    the summary's JSON."""
    url = pg_url.replace("://harness@", f"://harness:{PASSWORD}@")
    assert PASSWORD in url
    faults = [
        FaultRule(path="/api/Order/place", kind="error_after", probability=0.2),
        FaultRule(path="*", kind="expire_token", probability=0.1),
    ]
    settings = SimSettings(
        username=SIM_USER, api_key=API_KEY, rate_limit=False, faults=faults, token_ttl_s=5.0
    )
    with Simulator.spawn(settings) as sim:
        done = harness(
            tmp_path, "run", "--json", "workload.trades=6", "rollout.start_stage=staging_50",
            "broker=projectx", f"broker.base_url={sim.url}", "broker.retry_delays_s=[0.05]",
            env={"PROJECTX_USERNAME": SIM_USER, "PROJECTX_API_KEY": API_KEY,
                 "HARNESS_DB_URL": url, "HARNESS_LOG_LEVEL": "debug",
                 "HARNESS_LOG_FORMAT": "json"},
        )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-2000:]
    entries = _json_lines(done.stderr)
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e["level"] == "DEBUG" and str(e["logger"]).startswith("harness") for e in entries)
    found = [m for m in MARKERS if m in done.stderr + done.stdout]
    assert not found, found
    assert json.loads(done.stdout)["status"] == "finished"  # the summary, untouched


def test_the_option_wins_over_the_variable_and_works_after_the_command(tmp_path: Path) -> None:
    quiet = harness(tmp_path, "run", "--log-level", "error", "workload.trades=2", *FAST,
                    env={"HARNESS_LOG_LEVEL": "DEBUG"})  # fmt: skip
    loud = harness(tmp_path, "--log-level=Debug", "run", "workload.trades=2", *FAST,
                   env={"HARNESS_LOG_LEVEL": "error"})  # fmt: skip
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert "DEBUG " not in quiet.stderr
    assert "DEBUG harness.orders: logged in as" in loud.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("--log-level", "loud", "status"), {},
         "harness: error: argument --log-level: 'loud' is not a log level"),
        (("status", "--log-level", "trace"), {},
         "error: argument --log-level: 'trace' is not a log level"),
        (("status",), {"HARNESS_LOG_LEVEL": "verbose"},
         "harness status: error: invalid HARNESS_LOG_LEVEL='verbose': not a log level"),
        (("status",), {"HARNESS_LOG_FORMAT": "xml"},
         "harness status: error: invalid HARNESS_LOG_FORMAT='xml': not a log format"),
    ],
)  # fmt: skip
def test_a_bad_level_or_format_is_refused_in_one_line(tmp_path, args, env, expected) -> None:
    done = subprocess.run(
        command(*args), cwd=tmp_path, env=environment(env), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (tmp_path / "harness.db").exists()  # nothing written


def test_logs_leave_stdout_to_the_commands_json(tmp_path: Path) -> None:
    done = harness(tmp_path, "run", "--json", "workload.trades=2", *FAST,
                   env={"HARNESS_LOG_LEVEL": "DEBUG", "HARNESS_LOG_FORMAT": "json"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    json.loads(done.stdout)
    assert _json_lines(done.stderr)
    status = harness(tmp_path, "status", "--json",
                     env={"HARNESS_LOG_LEVEL": "DEBUG", "HARNESS_LOG_FORMAT": "json"})  # fmt: skip
    assert status.returncode == 0, status.stderr
    json.loads(status.stdout)
    _json_lines(status.stderr)


BOT = """
import logging, sys
import harness.cli as cli

def target(name, _real=cli._target):
    # A bot's own log line inside the command, once the command runs: the secrets it repeats
    # are the config's (API key, the URL's password) and a session token's shape.
    url, key, jwt = sys.argv[1:4]
    logging.getLogger("bot").debug("key %s db %s token %s", key, url, jwt, extra={"url": url})
    return _real(name)

cli._target = target
raise SystemExit(cli.main(["status", "--json"]))
"""


def test_what_a_command_logs_is_scrubbed_of_the_configs_secrets(tmp_path: Path, pg_url) -> None:
    """Through the real `main`: the API key comes from PROJECTX_API_KEY and the password from
    HARNESS_DB_URL, neither of a shape the scrubber would know without the config."""
    url = pg_url.replace("://harness@", f"://harness:{PASSWORD}@")
    env = {"PROJECTX_API_KEY": API_KEY, "HARNESS_DB_URL": url,
           "HARNESS_LOG_LEVEL": "DEBUG", "HARNESS_LOG_FORMAT": "json"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", BOT, url, API_KEY, JWT], cwd=tmp_path, env=environment(env),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (entry,) = [e for e in _json_lines(done.stderr) if e["logger"] == "bot"]
    assert entry["message"] == "key *** db postgresql+psycopg://harness:***@" + url.split("@")[1] \
        + " token ***"  # fmt: skip
    assert PASSWORD not in str(entry["url"])
    json.loads(done.stdout)
