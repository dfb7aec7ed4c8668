"""`harness sim` as a child process, `Simulator.spawn`, and the named profiles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import harness.sim
from harness.errors import InvalidInputError
from harness.sim import FaultRule, SimSettings, Simulator, load_profile
from harness.sim.gateway import Gateway
from harness.sim.settings import PACKAGED_PROFILES, PROFILE_DIR_ENV, profile_dirs

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    return proc, first


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def _refused(*args: str, env: dict[str, str] | None = None) -> str:
    """Run `harness sim` with arguments it must refuse; its stderr (exit 2, no traceback)."""
    done = subprocess.run(
        [sys.executable, "-m", "harness", "sim", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=env,
    )
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("harness sim: error: ")
    return done.stderr


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != PROFILE_DIR_ENV}
    return {**env, **extra}


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
        assert proc.wait(timeout=60) == 0


def test_cli_accepts_exactly_the_given_credentials_and_exits_0_on_sigint() -> None:
    proc, url = _start("--port", "0", "--username", "alice", "--api-key", "k-123", "--seed", "4")
    try:
        assert _login(url, "alice", "k-123")["success"] is True
        assert _login(url, "sim-user", "sim-key")["errorCode"] == 1
        refused = _login(url, "alice", "sim-key")
        assert (refused["success"], refused["errorCode"], refused["token"]) == (False, 3, None)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0


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
    assert packaged == PACKAGED_PROFILES
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


# -- profile files: every fault named, exit 2, no traceback ------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "where", "what"),
    [
        ("tabs.yaml", "seed: 3\n\tlatency_ms: 5\n", ":2:1:", "not valid YAML"),
        ("flow.yaml", "seed: 3\nfaults: [{kind: slow}\n", ":3:1:", "not valid YAML"),
        ("twice.yaml", "seed: 3\nseed: 4\n", ":2:1:", "duplicate key"),
        ("comma.json", '{"seed": 3,\n "latency_ms": }\n', ":2:16:", "not valid JSON"),
        ("list.yaml", "- seed\n- 3\n", ":", "must be a mapping"),
        ("number.json", "42\n", ":", "must be a mapping"),
        ("binary.yaml", "seed: 3\nx: \udcff\n", ":2:", "not UTF-8"),
    ],
)
def test_a_broken_profile_file_is_named_with_its_line_and_exits_2(
    tmp_path: Path, name: str, text: str, where: str, what: str
) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    error = _refused("--profile", str(path))
    assert f"{path}{where}" in error and what in error
    with pytest.raises(ValueError, match=what):
        load_profile(str(path))


def test_a_profile_path_that_does_not_exist_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "mine.yaml"
    error = _refused("--profile", str(missing))
    assert f"profile file '{missing}' does not exist" in error
    assert "no such profile" not in error
    error = _refused("--profile", str(tmp_path))
    assert f"profile '{tmp_path}' is a folder" in error


def test_an_unknown_profile_name_lists_the_known_ones_and_where_it_looked() -> None:
    error = _refused("--profile", "nosuch", env=_env())
    assert "no such profile 'nosuch'" in error
    assert "known: bench, chaos, default, demo" in error and str(PACKAGED_PROFILES) in error


def test_profile_folders_of_the_environment_add_to_the_packaged_ones(tmp_path: Path) -> None:
    mine, more = tmp_path / "mine", tmp_path / "more"
    mine.mkdir(), more.mkdir()
    (mine / "slow.yaml").write_text("latency_ms: 7.0\n")
    (mine / "demo.yaml").write_text("latency_ms: 1.0\n")  # shadows the packaged demo
    (more / "odd.json").write_text('{"string_ids": true}')
    env = _env(**{PROFILE_DIR_ENV: f"{mine}{os.pathsep}{more}"})
    for profile, key, want in [
        ("slow", "latency_ms", 7.0),  # the user's own
        ("odd", "string_ids", True),  # from the second folder, JSON
        ("demo", "latency_ms", 1.0),  # a user's file named like a packaged one comes first
        ("bench", "rate_limit", False),  # the packaged ones are still there
    ]:
        proc, url = _start("--port", "0", "--profile", profile, env=env)
        try:
            assert httpx.get(url + "/_sim/faults", timeout=10).json()[key] == want, profile
        finally:
            _stop(proc)
    error = _refused("--profile", "nosuch", env=env)
    assert "known: bench, chaos, default, demo, odd, slow" in error


def test_a_profile_folder_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    env = _env(**{PROFILE_DIR_ENV: str(tmp_path / "typo")})
    error = _refused("--profile", "demo", env=env)
    assert f"${PROFILE_DIR_ENV}: '{tmp_path / 'typo'}' is not a folder" in error


def test_without_the_environment_only_the_packaged_profiles_are_searched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PROFILE_DIR_ENV, raising=False)
    assert profile_dirs() == [PACKAGED_PROFILES]


# -- price of an unknown contract ---------------------------------------------------------------


def test_price_of_an_unknown_contract_names_it_embedded_and_spawned() -> None:
    with Simulator() as embedded, Simulator.spawn() as spawned:
        for sim in (embedded, spawned):
            with pytest.raises(InvalidInputError, match="NOPE") as raised:
                sim.price("NOPE")
            assert raised.value.field == "contract_id" and raised.value.value == "NOPE"
            assert "CON.F.US.MNQ.Z26" in raised.value.reason  # the known ids are listed
            assert isinstance(raised.value, ValueError)
            assert sim.price("CON.F.US.MNQ.Z26") > 0
        # An id that needs quoting in a URL reaches the spawned child intact.
        with pytest.raises(InvalidInputError, match="'A&B C'"):
            spawned.price("A&B C")


@pytest.mark.parametrize("where", ["missing folder", "file as folder", "a folder itself"])
def test_a_state_file_that_could_not_be_written_is_refused_at_start(
    tmp_path: Path, where: str
) -> None:
    (tmp_path / "plain").write_text("not a folder")
    (tmp_path / "dir").mkdir()
    path = {
        "missing folder": tmp_path / "nonexistent" / "state.json",
        "file as folder": tmp_path / "plain" / "state.json",
        "a folder itself": tmp_path / "dir",
    }[where]
    said = _refused("--port", "0", "--state-file", str(path))
    assert "--state-file" in said and str(path) in said, said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "plain"]


def test_a_book_that_cannot_be_written_at_the_stop_exits_non_zero(tmp_path: Path) -> None:
    folder = tmp_path / "books"
    folder.mkdir()
    state = folder / "state.json"
    proc, url = _start("--port", "0", "--state-file", str(state))
    assert url.startswith("http://"), proc.stderr.read() if proc.stderr else ""
    folder.rmdir()  # gone while the simulator serves
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 1
    assert proc.stderr is not None
    said = proc.stderr.read()
    assert "cannot write the book to state_file" in said and str(state) in said, said
    assert "Traceback" not in said


def test_a_state_file_in_a_writable_folder_is_written_at_the_stop(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    proc, url = _start("--port", "0", "--state-file", str(state))
    assert url.startswith("http://")
    _stop(proc)
    assert state.exists() and not (tmp_path / "state.json.partial").exists()


def test_a_state_file_with_a_malformed_book_is_refused_in_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    text = json.dumps({**Gateway(SimSettings()).book(), "sessions": []})
    state.write_text(text)
    said = _refused("--port", "0", "--state-file", str(state))
    assert said.count("\n") == 1 and str(state) in said and "sessions" in said, said
    assert state.read_text() == text  # left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
