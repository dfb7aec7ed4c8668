"""What a benchmark ran on: every report states it, since figures mean little without it."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe(packages: Sequence[str] = ()) -> str:
    """CPU, cores, load at start, OS, Python, the named packages' versions and the commit."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except OSError:
        commit = ""
    return (
        f"{cpu_model()}, {os.cpu_count()} logical CPUs, load average {load:.2f} at start; "
        f"{platform.system()} {platform.release()}; CPython {platform.python_version()}"
        + "".join(f", {v}" for v in versions)
        + f"; commit {commit or '?'}"
    )
