"""`harness ARGS...` in a process whose Rust order client panics in every placement (the drills'
test hook): `place_order` and `place_market_order` of `harness.orders._rust.RustOrderClient`
await the native `_panic_probe`, a Rust future that panics inside the extension, so what the
router sees is a real panic caught at the native boundary (`NativePanicError`). Everything
else is the real `harness` command.

    python tests/drills/panicking_run.py run --json rollout.start_stage=production
"""

from __future__ import annotations

import sys
from typing import Any

from harness.orders._rust import RustOrderClient


async def _panicking_place(self: RustOrderClient, *args: Any, **kwargs: Any) -> Any:
    await self._native._panic_probe()
    raise AssertionError("the panic probe returned instead of raising NativePanicError")


RustOrderClient.place_order = _panicking_place  # type: ignore[method-assign]
RustOrderClient.place_market_order = _panicking_place  # type: ignore[method-assign]

if __name__ == "__main__":
    from harness.cli import main

    sys.exit(main(sys.argv[1:]))
