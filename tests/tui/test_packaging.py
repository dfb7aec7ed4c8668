"""The dashboard ships inside the package (tests/test_wheel.py runs it from an installed
wheel); the top-level `tui/` is a link to it, not a second copy."""

from __future__ import annotations

from pathlib import Path

import harness.tui
from harness.tui.app import HarnessApp

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(harness.tui.__file__).resolve().parent


def test_the_top_level_tui_folder_is_a_link_to_the_package():
    link = ROOT / "tui"
    assert link.is_symlink()
    assert link.resolve() == PACKAGE
    assert (PACKAGE / HarnessApp.CSS_PATH).is_file()
