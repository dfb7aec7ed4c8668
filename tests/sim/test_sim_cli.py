"""`harness sim` as a child process, `Simulator.spawn`, and the named profiles."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import harness.sim
from harness.sim import FaultRule, SimSettings, Simulator, load_profile
from harness.sim.settings import profile_dir

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    return proc, first


def _login(url: str, username: str, api_key: str) -> dict:
    body = {"userName": username, "apiKey": api_key}
    return httpx.post(url + "/api/Auth/loginKey", json=body, timeout=10).json()


def test_cli_prints_its_url_first_serves_and_exits_0_on_sigterm() -> None:
    proc, url = _start("--port", "0")
    try:
        assert url.startswith("http://127.0.0.1:") and int(url.rsplit(":", 1)[1]) > 0
        assert httpx.get(url + "/api/Status/ping", timeout=10).json() == "pong"
        assert _login(url, "sim-user", "sim-key")["success"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_cli_accepts_exactly_the_given_credentials_and_exits_0_on_sigint() -> None:
    proc, url = _start("--port", "0", "--username", "alice", "--api-key", "k-123", "--seed", "4")
    try:
        assert _login(url, "alice", "k-123")["success"] is True
        assert _login(url, "sim-user", "sim-key")["errorCode"] == 1
        refused = _login(url, "alice", "sim-key")
        assert (refused["success"], refused["errorCode"], refused["token"]) == (False, 3, None)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--port", "70000"], "--port"),
        (["--port", "x"], "--port"),
        (["--latency-ms", "slow"], "--latency-ms"),
        (["--host", "10.1.2.3"], "--host"),
        (["--profile", "no-such-profile"], "no-such-profile"),
    ],
)
def test_cli_names_the_bad_option(args: list[str], named: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "sim", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert named in done.stderr


def test_spawn_runs_a_child_with_the_given_settings_and_faults() -> None:
    settings = SimSettings(
        username="bob",
        api_key="secret-k",
        string_ids=True,
        faults=[FaultRule(path="/api/Order/place", kind="error_after", count=1)],
    )
    with Simulator.spawn(settings) as child:
        assert child.process.poll() is None
        token = _login(child.url, "bob", "secret-k")["token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = {"accountId": 1001, "contractId": "CON.F.US.MNQ.Z26", "type": 2, "side": 0,
                "size": 1, "customTag": "spawned"}  # fmt: skip
        resp = httpx.post(child.url + "/api/Order/place", json=body, headers=headers, timeout=10)
        assert resp.status_code == 500
        assert [o["customTag"] for o in child.ledger()] == ["spawned"]
        assert child.stats()["faults"] == {"error_after": 1}
        child.reset()
        assert child.ledger() == []
        assert child.price("CON.F.US.MNQ.Z26") > 0
        # The api key never shows in the child's command line.
        assert "secret-k" not in " ".join(child.process.args)
    assert child.process.returncode == 0


def test_profiles_ship_inside_the_package_and_conf_links_to_them() -> None:
    # Package data reaches an installed wheel; a folder beside the package would not.
    packaged = Path(harness.sim.__file__).resolve().parent / "profiles"
    assert profile_dir().resolve() == packaged
    assert sorted(p.stem for p in packaged.glob("*.yaml")) == ["bench", "chaos", "default", "demo"]
    assert (ROOT / "conf" / "sim").resolve() == packaged


@pytest.mark.parametrize("name", ["default", "demo", "bench", "chaos"])
def test_every_profile_loads(name: str) -> None:
    settings = load_profile(name)
    assert isinstance(settings, SimSettings)
    assert all(isinstance(rule, FaultRule) for rule in settings.faults)
    if name == "demo":
        assert 80 <= settings.latency_ms <= 100 and settings.latency_jitter_ms > 0
    if name == "bench":
        assert settings.latency_ms == 0 and settings.rate_limit is False
    if name == "chaos":
        kinds = {rule.kind for rule in settings.faults}
        assert {"error_after", "drop_after", "rate_limit", "expire_token", "slow"} <= kinds


def test_a_bad_profile_names_the_key_and_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("latency_ms: fast\n")
    with pytest.raises(ValueError, match="latency_ms"):
        load_profile(str(bad))
    bad.write_text("colour: red\n")
    with pytest.raises(ValueError, match="colour"):
        load_profile(str(bad))
    bad.write_text("faults: [{kind: meteor}]\n")
    with pytest.raises(ValueError, match="meteor"):
        load_profile(str(bad))


def test_settings_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match="bar_timestamp"):
        SimSettings(bar_timestamp="middle")
    with pytest.raises(ValueError, match="probability"):
        FaultRule(probability=1.5)
    with pytest.raises(ValueError, match="path"):
        FaultRule(path="Order/place")
    assert "sim-key" not in repr(SimSettings())
