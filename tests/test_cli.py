"""The `harness` command line as a user meets it: its version, and a help text on every option."""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

import harness
import harness._native
from harness.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_version_prints_the_package_version_and_exits_0() -> None:
    done = _harness("--version")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"harness {harness.__version__}\n",
        "",
    )


def test_the_version_has_one_source_the_crate() -> None:
    cargo = tomllib.loads((ROOT / "rust" / "Cargo.toml").read_text())["package"]["version"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # pyproject.toml does not repeat it: maturin copies the crate's version into the metadata.
    assert "version" not in project and "version" in project["dynamic"]
    assert harness.__version__ == version("rollout-harness") == harness._native.__version__
    assert harness.__version__ == cargo


def test_every_option_of_every_subcommand_has_a_help_text() -> None:
    parser = build_parser(COMMANDS)
    subcommands = _subcommands(parser)
    assert sorted(subcommands) == sorted(COMMANDS)
    checked, missing = [], []
    for name, sub in [("harness", parser), *subcommands.items()]:
        for action in sub._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            checked.append(f"{name} {action.option_strings[0]}")
            text = action.help
            if not text or text == argparse.SUPPRESS or len(text.split()) < 2:
                missing.append(checked[-1])
    assert missing == []
    # The flags the issue found bare are among those checked (the walk did reach them).
    for flag in ("--latency-ms", "--latency-jitter-ms", "--token-ttl-s", "--bar-timestamp"):
        assert f"sim {flag}" in checked
    for flag in ("--impl", "--progress", "--no-progress"):
        assert f"bars {flag}" in checked
    assert "harness --version" in checked


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_of_each_subcommand_prints_and_exits_0(command: str) -> None:
    done = _harness(command, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"usage: harness {command}")


def test_no_subcommand_is_a_usage_error_without_traceback() -> None:
    done = _harness()
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "COMMAND" in done.stderr


@pytest.mark.parametrize(
    "override",
    [
        # A text value is quoted for Hydra and taken as typed (`key'` and `[key` are keys);
        # these are what Hydra still cannot read: an unbalanced quote, a broken interpolation.
        "broker.api_key='key-9f1c-do-not-print",
        'broker.api_key="key-9f1c-do-not-print',
        "broker.api_key=${key-9f1c-do-not-print}",
        "db.url=postgresql+psycopg://u:key-9f1c-do-not-print@127.0.0.1:1/x'",
    ],
)
def test_an_override_too_broken_to_parse_never_prints_its_secret(override, capsys):
    assert main(["status", override]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "***" in err
    assert "key-9f1c-do-not-print" not in err and "9f1c" not in err


PROBE = Path(__file__).resolve().parent / "signalprobe"

# Moments of a `harness run` start, each named by what the process is doing (the probe's
# docstring says how): `main` taking SIGINT over and parsing (before it, while the interpreter
# starts and imports the package, Python answers a signal its own way: docs/history.md), the
# config being composed (from the packaged YAML, without Hydra for plain overrides), the harness
# opening (its modules, the database file, the schema's migrations), the first call to the
# broker. The round trips themselves: tests/run/test_run.py (a signal after the tenth row).
START_MOMENTS = [
    "main:start+0",
    "main:start+30",
    "main:start+300",
    "main:import:harness.config.fast+0",
    "main:import:yaml+0",
    "main:import:yaml+1000",
    "main:import:harness.api+0",
    "main:sqlite3.connect+0",
    "main:import:alembic+0",
    "main:import:alembic+2000",
    "main:socket.connect+0",
]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("moment", START_MOMENTS)
def test_ctrl_c_at_any_moment_of_a_run_start_is_one_line_and_130(tmp_path, moment):
    """SIGINT while modules load, while the config is composed, the store opens or the
    simulator starts: no traceback, at most one line on stderr, exit status 130 (or death by
    SIGINT, which a shell reports as 130 too), and no run left `running` in the store."""
    from run.kit import command, environment

    report = tmp_path / "sent"
    path = os.pathsep.join(filter(None, [str(PROBE), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path, "HARNESS_PROBE_AT": moment, "HARNESS_PROBE_REPORT": str(report)}
    done = subprocess.run(
        command("run", "workload.trades=50"),
        cwd=tmp_path,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert report.exists(), f"{moment} never came: {done.returncode}, {done.stderr[-2000:]}"
    assert done.returncode in (130, -signal.SIGINT), (report.read_text(), done.stderr[-2000:])
    assert "Traceback" not in done.stderr and "never retrieved" not in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) <= 1, done.stderr
    db = tmp_path / "harness.db"
    if db.exists():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            statuses = [status for (status,) in conn.execute("SELECT status FROM runs")]
        assert "running" not in statuses, (report.read_text(), statuses)


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    """`harness status | true`: the reader is gone before the table is written; no
    BrokenPipeError traceback, no "Exception ignored" at exit."""
    upgrade = subprocess.run(
        [sys.executable, "-m", "harness", "db", "upgrade"], cwd=tmp_path, capture_output=True
    )
    assert upgrade.returncode == 0, upgrade.stderr
    done = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m harness status | true"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_the_environments_kill_switch_is_shown_by_status(tmp_path):
    """`TOPSTEPX_USE_RUST=OFF harness status`: the stage says where Rust would get calls, so the
    status must say that a process started from this environment sends them all to Python."""
    import json
    import os

    subprocess.run([sys.executable, "-m", "harness", "db", "upgrade"], cwd=tmp_path, check=True)
    env = {**os.environ, "TOPSTEPX_USE_RUST": "OFF"}
    cmd = [sys.executable, "-m", "harness", "status"]
    text = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert "KILL SWITCH IN THIS ENVIRONMENT: TOPSTEPX_USE_RUST='OFF'" in text.stdout
    data = json.loads(
        subprocess.run(
            [*cmd, "--json"], cwd=tmp_path, env=env, capture_output=True, timeout=30
        ).stdout
    )
    assert data["env_kill"] is True
    env["TOPSTEPX_USE_RUST"] = "true"
    data = json.loads(
        subprocess.run(
            [*cmd, "--json"], cwd=tmp_path, env=env, capture_output=True, timeout=30
        ).stdout
    )
    assert data["env_kill"] is False


def test_an_error_quoting_the_users_input_never_writes_a_terminal_escape(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "harness", "status", "db.url=sqlite:///h\x1b[31m\u202e.db"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "\x1b" not in done.stderr and "\u202e" not in done.stderr
    assert "no database at h\\x1b[31m\\u202e.db" in done.stderr
    assert len(done.stderr.splitlines()) == 1
