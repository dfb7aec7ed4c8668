"""`python -m harness ...`: the same console script as `harness` (used by `Simulator.spawn`)."""

from __future__ import annotations

from harness.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
