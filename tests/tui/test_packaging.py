"""The dashboard ships inside the package: the built wheel carries every module of
`harness/tui/` and its stylesheet (an installed user runs `harness tui` from any folder), and
the top-level `tui/` is a link to it, not a second copy.

The wheel is the one `.ci/run` builds (`HARNESS_TEST_WHEEL`), else one built here with maturin
(incremental after the editable install; about a minute on 2 cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import harness.tui

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(harness.tui.__file__).resolve().parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("HARNESS_TEST_WHEEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "maturin", "build", "--release", "-q", "-i", sys.executable,
         "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    [built] = out.glob("*.whl")
    return built


@pytest.mark.timeout(900)
def test_the_wheel_carries_the_dashboard_and_its_styles(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        str(path.relative_to(PACKAGE.parent.parent))
        for path in PACKAGE.rglob("*")
        if path.suffix in (".py", ".tcss") and "__pycache__" not in path.parts
    }
    assert "harness/tui/app.tcss" in sources
    assert sources <= names, sorted(sources - names)


def test_the_top_level_tui_folder_is_a_link_to_the_package():
    link = ROOT / "tui"
    assert link.is_symlink()
    assert link.resolve() == PACKAGE
    from harness.tui.app import HarnessApp

    assert (PACKAGE / HarnessApp.CSS_PATH).is_file()
