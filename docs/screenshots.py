"""The dashboard's screenshots in docs/dashboard.md, made from the real app on a seeded store.

    python docs/screenshots.py      # writes docs/dashboard-*.svg

A store is seeded as the snapshot tests seed theirs (`tests/storekit.py`: a staging rollout
twenty minutes old, 2,050 calls through the real recorder, one shadow mismatch), in a
temporary folder named `harness.db`; the app runs headless (`App.run_test`) with its clock
pinned and each screen is saved with `App.save_screenshot`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import storekit

from harness.store.db import open_engine, upgrade
from harness.tui.app import LIGHT, HarnessApp, make_app

HERE = Path(__file__).resolve().parent

SHOTS = [
    # (file, theme, size, keys pressed before the shot)
    ("dashboard-overview.svg", None, (120, 40), ()),
    ("dashboard-overview-light.svg", LIGHT, (120, 40), ()),
    ("dashboard-gate.svg", None, (120, 40), ("2",)),
    ("dashboard-80x24.svg", None, (80, 24), ()),
]


async def shoot(app: HarnessApp, size: tuple[int, int], keys: tuple[str, ...], out: Path) -> None:
    async with app.run_test(size=size) as pilot:
        while app.refreshes < 1:
            await pilot.pause(0.05)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.3)
        await pilot.pause(0.5)
        app.save_screenshot(out.name, str(out.parent))


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="harness-screens-"))
    cwd = Path.cwd()
    try:
        os.chdir(work)
        engine = open_engine("sqlite:///harness.db")
        upgrade(engine)
        engine.dispose()
        seeded = storekit.seed_rollout("sqlite:///harness.db", work, storekit.NOW_NS)
        seeded.engine.dispose()
        for name, theme, size, keys in SHOTS:
            app = make_app(seeded.config(), clock=lambda: storekit.NOW_NS)
            if theme is not None:
                app.theme = theme
            asyncio.run(shoot(app, size, keys, HERE / name))
            print(f"wrote docs/{name}")
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
