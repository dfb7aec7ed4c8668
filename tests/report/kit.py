"""A seeded rollout for the report and export tests, and `harness` as a subprocess."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from storekit import (
    MINUTE_NS,
    NOW_NS,
    SECOND_NS,
    Seeded,
    event,
    outcomes,
    record,
    seed_history,
    shadows,
)

from harness.operations import Operation
from harness.store.queries.latency import iso_seconds

MARK = '<script>alert("MARKER-7e1")</script>'
"""Stored text a page must show, never run: in an error message and in an event's reason."""

NOW_ISO = iso_seconds(NOW_NS)
HISTORY = (("start", "off", 60), ("promote", "shadow", 40), ("promote", "canary", 20))


def seed(url: str, tmp_path: Path) -> Seeded:
    """`off` 60 min before NOW, `shadow` 40, `canary` 20 (every migration), traffic in each,
    an error whose message holds `MARK`, a kill whose reason holds it, and 12 aggregation
    shadow comparisons in the canary window (the last 3 differing)."""
    seeded = seed_history(url, tmp_path, NOW_NS, HISTORY)
    base = outcomes(
        seeded.run_id,
        "canary",
        NOW_NS - 90 * SECOND_NS,
        NOW_NS - 60 * SECOND_NS,
        [_one_failure()],
        seed=11,
    )
    marked = [r._replace(error_message=f"rejected {MARK}") for r in base if not r.ok]
    compared = shadows(
        seeded.run_id, "canary", [NOW_NS - i * MINUTE_NS for i in range(13, 1, -1)], mismatches=3
    )
    record(seeded.engine, tmp_path / "spill2", marked, compared, now_ns=NOW_NS)
    event(seeded.engine, "kill", NOW_NS - 10 * MINUTE_NS, reason=f"halt {MARK}", who="ops")
    return seeded


def _one_failure():
    from storekit import Traffic

    return Traffic(Operation.PLACE_ORDER, 20, rust_share=0.0, python_error_rate=1.0)


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGS` in `cwd` (the caller's HARNESS_DB_URL not inherited)."""
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_DB_URL"}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=env,
    )


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR; AssertionError if `data` is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_pixels(data: bytes) -> bytes:
    """A PNG's decompressed image data (the filtered scanlines): enough to tell a blank
    picture (a handful of distinct byte values) from a drawn one."""
    i, idat = 8, b""
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        if kind == b"IDAT":
            idat += data[i + 8 : i + 8 + length]
        i += 12 + length
    return zlib.decompress(idat)
