"""`harness bars` writes its outputs all or nothing: a failure while writing one timeframe, or
while moving the files into place, leaves no new output, no temporary file, and every file
that was there before exactly as it was; so does SIGINT or SIGTERM while a real `harness bars`
process is writing."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from harness.bars import cli
from harness.cli import main

from .test_cli import read_output, write_input

OLD = {"5m.csv": "old 5m\n", "1h.csv": "old 1h\n"}


def prepare(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "in.csv"
    write_input(source, None)
    out = tmp_path / "out"
    out.mkdir()
    for name, text in OLD.items():
        (out / name).write_text(text)
    return source, out


def assert_untouched(out: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == sorted(OLD)  # no new file, no .tmp
    for name, text in OLD.items():
        assert (out / name).read_text() == text


def test_a_failed_write_of_one_timeframe_leaves_nothing_half_done(
    tmp_path, capsys, monkeypatch, impl
):
    source, out = prepare(tmp_path)
    real = cli.WRITERS["csv"]
    calls = []

    def disk_full_on_second(bars, path):
        calls.append(path)
        if len(calls) == 2:
            real(bars, path)  # a partial file exists when the disk fills up
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(bars, path)

    monkeypatch.setitem(cli.WRITERS, "csv", disk_full_on_second)
    argv = ["bars", "--input", str(source), "--timeframe", "5m,15m,1h", "--output", str(out)]
    assert main([*argv, "--impl", impl]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert len(calls) == 2 and all(p.parent == out for p in calls)  # temporaries beside targets
    assert_untouched(out)


def test_a_failed_rename_puts_back_the_files_already_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "5m.csv").write_text("old 5m\n")
    blocker = out / "1h.csv"
    blocker.mkdir()
    (blocker / "keep").write_text("x")  # a non-empty directory: no file can be renamed onto it
    temps = [out / ".a.tmp", out / ".b.tmp", out / ".c.tmp"]
    for temp in temps:
        temp.write_text(f"new {temp.name}\n")
    moves = [(temps[0], out / "5m.csv"), (temps[1], out / "15m.csv"), (temps[2], blocker)]
    with pytest.raises(OSError):
        cli.replace_all(moves)
    assert (out / "5m.csv").read_text() == "old 5m\n"  # put back
    assert not (out / "15m.csv").exists()  # was not there before: removed
    leftovers = sorted(p.name for p in out.iterdir())
    assert leftovers == sorted(["5m.csv", "1h.csv", ".c.tmp"])  # no backup link left behind


def test_a_directory_where_an_output_goes_is_refused_before_writing(tmp_path, capsys, impl):
    source, out = prepare(tmp_path)
    (out / "15m.csv").mkdir()
    argv = ["bars", "--input", str(source), "--timeframe", "5m,15m,1h", "--output", str(out)]
    assert main([*argv, "--impl", impl]) == 2
    err = capsys.readouterr().err
    assert f"{out / '15m.csv'} is a directory; the output file cannot replace it" in err
    (out / "15m.csv").rmdir()
    assert_untouched(out)


def test_a_successful_run_replaces_old_outputs_and_leaves_no_temporaries(tmp_path, impl):
    source, out = prepare(tmp_path)
    argv = ["bars", "--input", str(source), "--timeframe", "5m,15m,1h", "--output", str(out)]
    assert main([*argv, "--impl", impl]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["15m.csv", "1h.csv", "5m.csv"]
    assert np.all(np.diff(read_output(out / "5m.csv")["t"]) > 0)


def test_a_failure_removes_the_output_directories_it_created(tmp_path, monkeypatch):
    source = tmp_path / "in.csv"
    write_input(source, None)

    def fail(bars, path):
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setitem(cli.WRITERS, "csv", fail)
    out = tmp_path / "new" / "out"
    assert main(["bars", "--input", str(source), "--timeframe", "5m", "--output", str(out)]) == 2
    assert not (tmp_path / "new").exists()


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600,000 1-minute bars (about 45 MB of CSV): long enough to write that a signal can be
    sent while the outputs are being written."""
    n = 600_000
    rng = np.random.default_rng(7)
    close = np.round(100 + np.cumsum(rng.normal(0, 0.1, n)), 2)
    t = (1_704_067_200 + 60 * np.arange(n)).astype("datetime64[s]")
    table = pa.table(
        {
            "t": pa.array(t).cast(pa.timestamp("s", "UTC")),
            "o": close,
            "h": close + 0.25,
            "l": close - 0.25,
            "c": close,
            "v": rng.integers(1, 100, n),
        }
    )
    path = tmp_path_factory.mktemp("big") / "big.csv"
    pa_csv.write_csv(table, path)
    return path


def _writing_into_a_temporary(folder: Path) -> bool:
    """Whether a temporary output file in `folder` already holds bytes."""
    for entry in os.scandir(folder):
        if entry.name.endswith(".tmp"):
            try:
                if entry.stat().st_size > 0:
                    return True
            except FileNotFoundError:  # renamed into place meanwhile
                continue
    return False


@pytest.mark.parametrize(
    ("signum", "status", "said"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_signal_while_writing_leaves_no_new_file_and_no_temporary(
    tmp_path, big_csv, signum, status, said
):
    out = tmp_path / "out"
    out.mkdir()
    for name, text in OLD.items():
        (out / name).write_text(text)
    # 1m is written first and is as large as the input: the window to signal in.
    argv = ["--input", str(big_csv), "--timeframe", "1m,2m,5m,1h", "--output", str(out)]
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "bars", *argv, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Into the write: a temporary file holding bytes (it is renamed once whole).
    deadline = time.monotonic() + 60
    writing = False
    while process.poll() is None and time.monotonic() < deadline:
        writing = _writing_into_a_temporary(out)
        if writing:
            break
        time.sleep(0.002)
    assert writing, "the command ended before it wrote into a temporary file: no signal sent"
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == status, (stdout, stderr)
    assert stderr == f"harness bars: error: {said}" + (" (SIGTERM)" if status == 143 else "") + "\n"
    assert stdout == ""
    assert_untouched(out)
