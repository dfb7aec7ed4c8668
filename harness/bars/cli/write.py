"""The writers of `harness bars`: one CSV (t as ISO-8601 UTC) or Parquet (t as timestamp[ns,
UTC]) per timeframe, written all or nothing: temporaries beside the targets, renamed into place
together, removed (and the old files put back) on any failure or signal."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from harness.bars import COLUMNS, Bars
from harness.bars.cli.columns import to_arrow
from harness.bars.cli.progress import Progress
from harness.bars.cli.table import InputFileError

_END = 2**31 - 1  # a string position past any end


def write_csv(bars: Bars, path: Path) -> None:
    """Write bars as CSV with t in ISO-8601 UTC (seconds unless sub-second labels occur)."""
    table = pa.table({"t": _iso_utc(bars.t), **{k: to_arrow(bars[k]) for k in "ohlcv"}})
    with path.open("wb") as handle:
        handle.write((",".join(COLUMNS) + "\n").encode())  # pyarrow would quote the names
        options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
        pa_csv.write_csv(table, handle, options)


def _iso_utc(t: np.ndarray) -> pa.Array[Any]:
    """int64 ns as ISO-8601 text ending in Z: "2025-11-19T00:05:00Z" (with ".123456789" only
    if some label has a fraction), formatted by pyarrow in C."""
    stamps: pa.Array[Any]
    if np.any(t % 1_000_000_000):
        stamps = to_arrow(t).cast(pa.timestamp("ns"))
    else:
        stamps = to_arrow(t // 1_000_000_000).cast(pa.timestamp("s"))
    text = pc.cast(stamps, pa.string())  # "2025-11-19 00:05:00"
    text = pc.utf8_replace_slice(text, start=10, stop=11, replacement="T")
    return pc.utf8_replace_slice(text, start=_END, stop=_END, replacement="Z")  # appended


def write_parquet(bars: Bars, path: Path) -> None:
    """Write bars as Parquet with t as timestamp[ns, UTC]."""
    table = pa.table(
        {
            "t": to_arrow(bars.t).cast(pa.timestamp("ns", tz="UTC")),
            **{k: to_arrow(bars[k]) for k in "ohlcv"},
        }
    )
    pq.write_table(table, path)


WRITERS: dict[str, Callable[[Bars, Path], None]] = {"csv": write_csv, "parquet": write_parquet}


def write_all(
    results: dict[str, Bars], out_dir: Path, out_format: str, progress: Progress
) -> list[tuple[str, int, Path]]:
    """Write every timeframe, all or nothing: each to a temporary file beside its target, then
    all renamed into place; on any failure the temporaries are removed and files that were
    there before are left as they were. Returns (timeframe, bars, path) per output."""
    targets = {tf: out_dir / f"{tf}.{out_format}" for tf in results}
    for target in targets.values():
        if target.is_dir():
            raise InputFileError(f"{target} is a directory; the output file cannot replace it")
    created = [d for d in (out_dir, *out_dir.parents) if not d.exists()]  # deepest first
    out_dir.mkdir(parents=True, exist_ok=True)
    temps: list[tuple[Path, Path]] = []
    try:
        for timeframe, bars in results.items():
            target = targets[timeframe]
            progress.stage(f"writing {target}")
            temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            temps.append((temp, target))
            WRITERS[out_format](bars, temp)
        replace_all(temps)
    except BaseException:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)
        for directory in created:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if still empty
        raise
    return [(tf, len(bars), targets[tf]) for tf, bars in results.items()]


def replace_all(moves: list[tuple[Path, Path]]) -> None:
    """Rename each (temporary, target) pair, all or none: a target that existed is kept as a
    hard link until every rename is done, and put back if a later rename fails."""
    done: list[tuple[Path, Path | None]] = []  # (target, link to its former content)
    try:
        for temp, target in moves:
            backup = None
            if target.exists():
                backup = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
                try:
                    os.link(target, backup)
                except OSError:  # a file system without hard links: keep a copy
                    backup.write_bytes(target.read_bytes())
            try:
                os.replace(temp, target)
            except BaseException:
                if backup is not None:
                    backup.unlink(missing_ok=True)
                raise
            done.append((target, backup))
    except BaseException:
        for target, backup in reversed(done):
            if backup is None:
                target.unlink(missing_ok=True)
            else:
                os.replace(backup, target)
        raise
    for _, backup in done:
        if backup is not None:
            backup.unlink(missing_ok=True)
