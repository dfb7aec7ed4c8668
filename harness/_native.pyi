"""Typed surface of the private Rust extension `harness._native` (built from `rust/`).

Users import from the Python facade (`harness.bars`, `harness.orders`), not from here.
"""

__version__: str

# --- bars (rust/src/bars.rs) ---

# --- orders (rust/src/orders/) ---
