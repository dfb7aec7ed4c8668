"""A hang fails fast: every test of the suite runs under pytest-timeout's per-test time-out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_suite_gives_every_test_a_time_out(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.hasplugin("timeout")
    assert 0 < float(pytestconfig.getini("timeout")) <= 120


def test_a_hung_test_fails_fast_instead_of_stalling_the_run(tmp_path: Path) -> None:
    (tmp_path / "test_hang.py").write_text(
        "import time\n\n\ndef test_hangs():\n    time.sleep(600)\n"
    )
    config = ROOT / "pyproject.toml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(config)]
    command += ["--rootdir", str(tmp_path), "-o", "timeout=2", str(tmp_path / "test_hang.py")]
    # Ended at all within 120 s, the 600 s sleep was cut short: no elapsed time is judged (the
    # start of a pytest on a loaded machine takes what it takes).
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert "Timeout (>2.0s) from pytest-timeout" in done.stdout and "1 failed" in done.stdout
