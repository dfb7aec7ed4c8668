"""`harness tui` from the command line: it checks the database before opening the screen (the
usual one-line error and exit 2), refuses a refresh interval too short naming the option, and
leaves no database file behind."""

from __future__ import annotations

import pytest

from harness.cli import main


@pytest.mark.parametrize("value", ["0", "0.1"])
def test_tui_refuses_a_refresh_too_fast_naming_the_option(value, capsys):
    assert main(["tui", "--refresh", value]) == 2
    err = capsys.readouterr().err
    assert "refresh" in err and "at least 0.2" in err and "Traceback" not in err


def test_tui_on_a_missing_database_is_one_line_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "nowhere.db"
    assert main(["tui", f"db.url=sqlite:///{missing}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"harness tui: error: no database at {missing}: `harness run` creates it, "
        "or `harness db upgrade` (or point db.url / HARNESS_DB_URL at yours)"
    ]
    assert not missing.exists()
