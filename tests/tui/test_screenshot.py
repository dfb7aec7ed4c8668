"""The palette's Screenshot command saves where the dashboard can write (the folder it was
started in, or `--screenshots DIR`) and the notification names the file; Textual's own saves
to `~/Downloads`, which a headless server lacks, and says only that it failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import OptionList

from harness.cli import main

from .conftest import app_on, loaded, until

pytestmark = pytest.mark.timeout(180)


def notes(app) -> list[tuple[str, str]]:
    return [(n.title, n.message) for n in app._notifications]


async def screenshot_from_the_palette(pilot) -> None:
    """ctrl+p, `screenshot`, and Enter once the palette offers it."""
    app = pilot.app
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the palette")
    await pilot.press(*"screenshot")
    options = app.screen.query_one(OptionList)

    def offered() -> bool:
        return options.option_count > 0 and "Screenshot" in str(
            options.get_option_at_index(0).prompt
        )

    await until(pilot, offered, what="the Screenshot command")
    await pilot.press("enter")
    await until(pilot, lambda: notes(app), what="a notification")


@pytest.fixture
def headless_home(tmp_path, monkeypatch) -> Path:
    """HOME is a folder without Downloads (and no XDG user dirs): a server's account."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)
    return home


async def test_the_screenshot_is_saved_in_the_working_folder_named_in_the_notification(
    seeded_sqlite, tmp_path, headless_home, monkeypatch
):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    app = app_on(seeded_sqlite)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        await screenshot_from_the_palette(pilot)
        [(title, message)] = notes(app)
    assert title == "screenshot saved", message
    saved = Path(message)
    assert saved.parent == work.resolve() and saved.is_file()
    assert saved.name.startswith("harness-overview-") and saved.suffix == ".svg"
    assert "<svg" in saved.read_text(encoding="utf-8")
    assert not (headless_home / "Downloads").exists()


async def test_screenshots_go_to_the_folder_given_and_never_overwrite(seeded_sqlite, tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    app = app_on(seeded_sqlite, screenshot_dir=shots)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        first = app.save_screen(shots)
        second = app.save_screen(shots)  # the same second of the pinned clock
    assert first.parent == second.parent == shots.resolve()
    assert first != second and first.is_file() and second.is_file()
    assert second.name == first.name.replace(".svg", "-2.svg")


async def test_a_screenshot_that_cannot_be_written_says_where_and_why(seeded_sqlite, tmp_path):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    app = app_on(seeded_sqlite, screenshot_dir=not_a_folder)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        await screenshot_from_the_palette(pilot)
        [(title, message)] = notes(app)
    assert title == "screenshot not saved"
    assert message.startswith(f"{not_a_folder}: ")


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_tui_refuses_a_screenshots_folder_that_is_not_one(kind, tmp_path, capsys):
    target = tmp_path / "shots"
    if kind == "file":
        target.write_text("")
    assert main(["tui", "--screenshots", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"harness tui: error: invalid --screenshots={str(target)!r}: is not a folder"]
