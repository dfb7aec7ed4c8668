"""`harness run` refuses bad input before any order: exit 2, a line naming the key, no traceback."""

from __future__ import annotations

import json

import pytest

from .kit import FAST, harness, rows

pytestmark = pytest.mark.timeout(120)


def test_the_real_gateway_without_credentials_names_the_api_key(tmp_path):
    done = harness(tmp_path, "run", "broker=projectx")
    assert done.returncode == 2
    assert "PROJECTX_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (tmp_path / "harness.db").exists()  # nothing opened


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("workload.symbols=[MNQ,NOPE]", "workload.symbols.1='NOPE'"),
        ("workload.account=4242", "workload.account=4242"),
        ("workload.timeframes=[5m,7x]", "workload.timeframes.1='7x'"),
        ("workload.symbols=[MNQ,CON.F.US.MNQ.Z26]", "workload.symbols.1='CON.F.US.MNQ.Z26'"),
    ],
)
def test_a_key_the_broker_cannot_honour_is_refused_before_any_order(tmp_path, override, named):
    done = harness(tmp_path, "run", override, *FAST)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("harness run: error: invalid ") and named in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    db = tmp_path / "harness.db"
    if db.exists():  # the broker was asked (the run row says failed, and why): no order sent
        assert rows(db, "SELECT count(*) AS n FROM outcomes")[0]["n"] == 0
        (run,) = rows(db, "SELECT status, summary FROM runs")
        assert run["status"] == "failed" and named in json.loads(run["summary"])["reason"]
        listed = harness(tmp_path, "query", "runs", "--json")
        (shown,) = json.loads(listed.stdout)
        assert shown["status"] == "failed" and named in shown["reason"]


def test_an_unknown_simulator_profile_is_refused_before_the_store_is_touched(tmp_path):
    done = harness(tmp_path, "run", "broker.sim.profile=nosuch")
    assert done.returncode == 2, done.stderr
    assert "broker.sim.profile='nosuch'" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no database, no run row, no rollout state


@pytest.mark.parametrize("trades", ["0", "-3"])
def test_no_round_trips_is_refused(tmp_path, trades):
    done = harness(tmp_path, "run", f"workload.trades={trades}")
    assert done.returncode == 2
    assert f"workload.trades={trades}" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "harness.db").exists()
