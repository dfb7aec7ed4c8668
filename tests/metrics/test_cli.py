"""`harness metrics` as a real process after a real `harness run`: `/metrics` parses with
prometheus_client's parser and its call counts equal `harness query rates --json`; signals,
bad flags, and the database's password (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess

import httpx
import pytest

from tests.metrics.kit import by, one, samples
from tests.run.kit import FAST, harness, start

# Real processes (a run, the exporter, a query) on a shared, loaded machine.
pytestmark = pytest.mark.timeout(300)

SECRET = "pw-Metrics-5e2c"


def _with_password(url: str) -> str:
    """`url` with a password in it (the test server trusts loopback, so any password works)."""
    scheme, _, rest = url.partition("://")
    user, _, where = rest.partition("@")
    return f"{scheme}://{user}:{SECRET}@{where}"


@pytest.fixture
def ran(tmp_path, store_url):
    """The store of a real `harness run` at staging_50 (both sides serve), its `db.url=`."""
    url = _with_password(store_url) if store_url.startswith("postgresql") else store_url
    db = f"db.url={url}"
    done = harness(tmp_path, "run", "workload.trades=6", "rollout.start_stage=staging_50", db,
                   *FAST)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return db


def _serve(folder, *args: str) -> tuple[subprocess.Popen[str], str]:
    """`harness metrics --port 0 ARGS` started; (the process, its first line)."""
    process = start(folder, "metrics", "--port", "0", *args)
    assert process.stdout is not None
    line = process.stdout.readline()  # the URL, printed once it is served
    if not line.startswith("serving http://"):
        process.kill()
        raise AssertionError(f"no URL: {line!r} {process.communicate()}")
    return process, line


def test_metrics_after_a_run_parse_and_equal_query_rates(tmp_path, ran):
    process, first = _serve(tmp_path, ran)
    try:
        response = httpx.get(first.split()[1], timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    rates = harness(tmp_path, "query", "rates", "--json", ran)
    assert rates.returncode == 0, rates.stderr
    expected = {(r["op"], r["impl"]): r["calls"] for r in json.loads(rates.stdout)}
    assert {side for _, side in expected} == {"rust", "python"}
    assert by(got["harness_calls_total"], "op", "side") == expected
    assert one(got["harness_store_up"]) == 1
    assert one(got["harness_stage"], migration="orders", stage="staging_50") == 1
    # SIGTERM: one line, 143; the password nowhere.
    assert (process.returncode, err) == (143, "harness metrics: error: terminated\n")
    assert SECRET not in first + out + err + response.text
    if "postgresql" in ran:
        assert ":***@" in first


def test_a_host_name_serves_and_sigint_stops_it_with_130(tmp_path, sqlite_url):
    process, first = _serve(tmp_path, "--host", "localhost", f"db.url={sqlite_url}")
    try:
        assert first.startswith("serving http://localhost:")
        scraped = samples(httpx.get(first.split()[1], timeout=30).text)
        assert one(scraped["harness_store_up"]) == 1
    finally:
        process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert (process.returncode, err) == (130, "harness metrics: error: interrupted\n")


def test_once_prints_one_scrape(tmp_path, sqlite_url):
    done = harness(tmp_path, "metrics", "--once", f"db.url={sqlite_url}")
    assert done.returncode == 0, done.stderr
    assert one(samples(done.stdout)["harness_store_up"]) == 1


@pytest.mark.parametrize(
    ("args", "flag", "value"),
    [
        (("--port", "http"), "--port", "'http'"),
        (("--port", "65536"), "--port", "'65536'"),
        (("--port", "-1"), "--port", "'-1'"),
        (("--host", "no such host"), "--host", "'no such host'"),
        (("--window", "0s"), "--window", "'0s'"),
        (("--window", "soon"), "--window", "'soon'"),
    ],
)
def test_a_bad_flag_is_one_line_and_status_2(tmp_path, sqlite_url, args, flag, value):
    done = harness(tmp_path, "metrics", *args, f"db.url={sqlite_url}")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"harness metrics: error: invalid {flag}={value}: ")
    assert done.stderr.count("\n") == 1, done.stderr


def test_a_port_in_use_is_one_line_and_status_2(tmp_path, sqlite_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = harness(tmp_path, "metrics", "--port", port, f"db.url={sqlite_url}")
    assert done.returncode == 2
    assert done.stderr.startswith(f"harness metrics: error: invalid --port={int(port)!r}: ")
    assert "in use" in done.stderr and done.stderr.count("\n") == 1


def test_a_missing_store_is_refused_without_creating_it(tmp_path):
    done = harness(tmp_path, "metrics", "--once")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "harness.db").exists()
