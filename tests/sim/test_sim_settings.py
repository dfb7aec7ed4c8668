"""Simulator settings from every source: loopback only, and errors that never show a secret.

The `/_sim/` paths (reset, faults, the ledger) answer without authentication, so the loopback
rule holds for a profile file, stdin, the `--host` flag, the config's `broker.sim.profile` in
`harness run`, `SimSettings(...)` and a `Simulator` whose settings were changed after it was
made. A profile that cannot be read is named with its file, line and key, never its secrets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import InvalidInputError
from harness.sim import SimSettings, Simulator, load_profile
from harness.sim.settings import PROFILE_DIR_ENV

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-Key-42"
NOT_LOOPBACK = ["0.0.0.0", "::", "10.1.2.3", "192.168.0.7", "example.com", ""]

pytestmark = pytest.mark.timeout(120)


def _harness(
    *args: str, cwd: Path = ROOT, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (PROFILE_DIR_ENV, "HARNESS_DB_URL")}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


def _refused(done: subprocess.CompletedProcess[str], command: str = "sim") -> str:
    """The one line of a refusal: exit 2, nothing on stdout (no URL), no traceback."""
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"harness {command}: error: ")
    assert done.stderr.count("\n") == 1
    return done.stderr


# -- loopback only, however it is configured ---------------------------------------------------


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_a_profile_file_cannot_make_the_simulator_listen_beyond_loopback(
    tmp_path: Path, host: str
) -> None:
    profile = tmp_path / "open.yaml"
    profile.write_text(f"seed: 3\nhost: '{host}'\n")
    error = _refused(_harness("sim", "--profile", str(profile)))
    assert f"{profile}:2: host={host!r}: the simulator binds loopback only" in error
    with pytest.raises(ValueError, match="loopback only"):
        load_profile(str(profile))


def test_a_profile_on_stdin_cannot_either() -> None:
    done = _harness("sim", "--profile", "-", stdin=json.dumps({"host": "0.0.0.0"}))
    assert "--profile -:1: host='0.0.0.0': the simulator binds loopback only" in _refused(done)


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_settings_and_an_embedded_simulator_refuse_a_host_beyond_loopback(host: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        SimSettings(host=host)
    assert (refused.value.field, refused.value.value) == ("host", host)
    # Settings changed after the simulator was made are checked where it binds.
    sim = Simulator(SimSettings())
    sim.settings.host = host
    with pytest.raises(InvalidInputError, match="loopback only"):
        sim.start()
    with pytest.raises(RuntimeError, match="not running"):
        sim.url  # noqa: B018


LOOPBACK = [("127.0.0.1", "127.0.0.1"), ("127.0.0.2", "127.0.0.2"), ("::1", "[::1]"),
            ("localhost", "127.0.0.1")]  # fmt: skip


@pytest.mark.parametrize(("host", "bound"), LOOPBACK)
def test_every_loopback_address_is_accepted(host: str, bound: str) -> None:
    with Simulator(SimSettings(host=host)) as sim:
        assert sim.url.startswith(f"http://{bound}:")


def test_harness_run_refuses_such_a_profile_before_opening_anything(tmp_path: Path) -> None:
    profile = tmp_path / "open.yaml"
    profile.write_text("host: 0.0.0.0\n")
    done = _harness("run", f"broker.sim.profile={profile}", cwd=tmp_path)
    error = _refused(done, "run")
    assert f"invalid broker.sim.profile='{profile}'" in error and "host='0.0.0.0'" in error
    assert not (tmp_path / "harness.db").exists()  # no database, no run row, no simulator


# -- a broken profile names file, line and key; never a secret ---------------------------------


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        # The colon or its space missing: YAML reads the whole line as a key.
        ("first.yaml", f"api_key {SECRET}\n", ":1: unknown key (write `api_key: value`"),
        ("colon.yaml", f"seed: 3\napi_key {SECRET}\n",
         ":3:1: not valid YAML: could not find expected ':' "
         "(while scanning a simple key at line 2)"),
        ("equals.yaml", f"api_key={SECRET}\n", ":1: unknown key (write `api_key: value`"),
        ("glued.yaml", f"# mine\n\napi_key:{SECRET}\n", ":3: unknown key (write `api_key: value`"),
        ("alone.yaml", f"{SECRET}\n", ":1: unknown key;"),
        # The secret under the right key, of the wrong type.
        ("list.yaml", f"seed: 3\napi_key: [{SECRET}]\n", ":2: api_key: must be a string"),
        ("map.yaml", f"api_key: {{k: {SECRET}}}\n", ":1: api_key: must be a string"),
        ("list.json", f'{{"seed": 3,\n "api_key": ["{SECRET}"]}}', ":2: api_key: must be a string"),
        # The secret where another setting was expected.
        ("faults.json", f'{{"faults": ["{SECRET}"]}}', ":1: faults.0: must be a mapping"),
        ("top.json", f'["{SECRET}"]', ": a profile must be a mapping of settings"),
        ("scalar.json", f'"{SECRET}"', ": a profile must be a mapping of settings"),
        # Another key's fault in a file that holds the secret.
        ("port.yaml", f"api_key: {SECRET}\nport: x\n", ":2: port='x': must be an integer"),
    ],
)  # fmt: skip
def test_a_broken_profile_never_shows_its_secret(
    tmp_path: Path, name: str, text: str, said: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    error = _refused(_harness("sim", "--profile", str(path)))
    assert f"{path}{said}" in error
    assert SECRET not in error and SECRET.lower() not in error.lower()
    with pytest.raises(ValueError) as raised:
        load_profile(str(path))
    assert SECRET not in str(raised.value) and f"{path}{said}" in str(raised.value)
    if name.endswith(".json"):  # the same on stdin, as `Simulator.spawn` hands settings over
        error = _refused(_harness("sim", "--profile", "-", stdin=text))
        assert SECRET not in error and "--profile -" in error


def test_harness_run_shows_no_secret_of_a_broken_profile(tmp_path: Path) -> None:
    profile = tmp_path / "mine.yaml"
    profile.write_text(f"# latency_ms: 5\napi_key {SECRET}\n")
    error = _refused(_harness("run", f"broker.sim.profile={profile}", cwd=tmp_path), "run")
    assert f"{profile}:2: unknown key" in error and SECRET not in error


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("seed: 3\nlatncy_ms: 4\n", ":2: unknown key 'latncy_ms' (did you mean latency_ms?)"),
        ("seed: 3\nfaults:\n  - {kind: slow}\n  - {kind: meteor}\n",
         ":4: faults.1.kind='meteor': must be one of"),
        ("faults:\n  - kind: slow\n    delay: 5\n",
         ":3: unknown key 'delay' (did you mean delay_ms?)"),
        ("faults:\n  - kind: slow\n    probability: x\n",
         ":3: faults.0.probability='x': must be a number"),
        ("string_ids: maybe\n", ":1: string_ids='maybe': must be true or false"),
        ("state_file: [a]\n", ":1: state_file=['a']: must be a string or null"),
        ("port: 70000\n", ":1: port=70000: must be within 0..65535"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_named_by_line_full_key_and_value(
    tmp_path: Path, text: str, said: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as raised:
        load_profile(str(path))
    assert f"{path}{said}" in str(raised.value)


def test_a_bad_flag_is_named_as_the_flag() -> None:
    error = _refused(_harness("sim", "--token-ttl-s", "0"))
    assert "command line: --token-ttl-s=0.0: must be a finite number > 0" in error
