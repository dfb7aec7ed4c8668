"""Typed surface of the private Rust extension `harness._native` (built from `rust/`).

Users import from the Python facade (`harness.bars`, `harness.orders`), not from here.
"""

__version__: str

# --- bars (rust/src/bars/) ---
import numpy as np
import numpy.typing as npt

_I64 = npt.NDArray[np.int64]
_F64 = npt.NDArray[np.float64]
_Series = tuple[_I64, _F64, _F64, _F64, _F64, _I64]

def aggregate_columns(
    t: _I64, o: _F64, h: _F64, l: _F64, c: _F64, v: _I64, periods: list[int], offsets: list[int]
) -> list[_Series]:
    """Aggregate C-contiguous columns into each (period ns, offset ns) in one pass."""

class Aggregator:
    """Incremental aggregator; `input_period` ns (0 = complete a bucket on the next one)."""

    def __init__(self, periods: list[int], offsets: list[int], input_period: int) -> None: ...
    def push(
        self, t: int, o: float, h: float, l: float, c: float, v: int
    ) -> list[tuple[int, int, float, float, float, float, int]]: ...
    def push_many(self, t: _I64, o: _F64, h: _F64, l: _F64, c: _F64, v: _I64) -> list[_Series]: ...
    def partial(self, k: int) -> tuple[int, float, float, float, float, int] | None: ...
    @property
    def count(self) -> int: ...
    @property
    def last_t(self) -> int | None: ...

# --- orders (rust/src/orders/) ---
