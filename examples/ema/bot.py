"""A bot's own operation rolled out by the harness: the worked example of docs/example.md.

The bot computes the EMA of each symbol's 1-minute closes once per bar. It had a Python EMA
(`ema_py.py`) and now has a Rust one (`src/lib.rs`, built as the module `ema_rs`); it registers
both as the operation `ema` of the migration `indicators`, and the harness routes every call by
that migration's stage, falls back, shadows, compares and records, as for its own operations.
`harness promote --migration indicators` then moves it up the ladder on the recorded evidence.

    maturin develop --release -m examples/ema/Cargo.toml     # or: pip install ./examples/ema
    python examples/ema/bot.py --calls 2000 [key=value ...]  # Hydra overrides, as `harness run`

Prints one line: the stage and how many calls each side served. Exit status 0; 2 for bad input
(one line naming the flag or config key), 1 when the harness cannot open its store.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import harness
from harness.errors import HarnessError, InvalidInputError

sys.path.insert(0, str(Path(__file__).resolve().parent))  # ema_py beside this file
import ema_py  # after the path it is found on

try:
    import ema_rs  # the example's crate
except ImportError:  # not built yet: say how, in one line, and stop
    sys.exit("bot.py: the module ema_rs is not built: maturin develop -m examples/ema/Cargo.toml")

SYMBOLS = ("MNQ", "MES", "MGC", "MCL")
FIRST_MINUTE = 29_456_070  # 2026-01-02 14:30 UTC in epoch minutes: the bars' clock starts here
START_PRICE = {"MNQ": 21_000.0, "MES": 6_000.0, "MGC": 2_650.0, "MCL": 70.0}


# The harness calls both sides with the caller's arguments: the symbol and the bar's minute are
# there for routing (the key below); the two EMA functions take only the closes and the span.
def python_side(symbol: str, minute: int, closes: Sequence[float], span: int) -> list[float]:
    """The EMA on Python (`ema_py.ema`)."""
    return ema_py.ema(closes, span)


def rust_side(symbol: str, minute: int, closes: Sequence[float], span: int) -> list[float]:
    """The EMA on Rust (`ema_rs.ema`, the example's crate)."""
    return ema_rs.ema(closes, span)


def routing_key(
    symbol: str, minute: int, closes: Sequence[float], span: int
) -> tuple[str, dict[str, str]]:
    """One key per symbol and bar, and the symbol for a stage's targets.

    A pure function needs no side kept per symbol, and a key per bar lets a stage's percentage
    apply to calls: a key per symbol would put whole symbols on one side (with four symbols a
    5% stage most likely gets no Rust call at all). The same bar recomputed lands on the same
    side.
    """
    return f"{symbol}@{minute}", {"symbol": symbol}


def same_ema(python: list[float], rust: list[float]) -> str | None:
    """None when the two EMAs are equal double for double, else where they first part.

    Exact equality, no tolerance: both sides do the same IEEE-754 double operations in the same
    order and neither reorders nor fuses them (docs/example.md says why), so any difference is
    a real divergence. The text gives the index, both values and their distance in units in the
    last place.
    """
    if len(python) != len(rust):
        return f"length differs: python {len(python)} != rust {len(rust)}"
    for i, (p, r) in enumerate(zip(python, rust, strict=True)):
        if p != r:
            ulps = abs(p - r) / math.ulp(p) if math.isfinite(p) and p != 0.0 else math.inf
            return f"ema differs at {i}: python {p!r} != rust {r!r} ({ulps:.0f} ulp)"
    return None


def positive(flag: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number >= 1, not {text!r}")
        return value

    return parse


def symbols(text: str) -> tuple[str, ...]:
    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in START_PRICE]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(
            f"--symbols must name some of {','.join(SYMBOLS)}, not {text!r}"
        )
    return chosen


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bot.py", description="Compute EMAs through the harness (docs/example.md)."
    )
    parser.add_argument("--calls", type=positive("--calls"), default=2000, help="EMA calls")
    parser.add_argument("--span", type=positive("--span"), default=20, help="the EMA's span")
    parser.add_argument("--window", type=positive("--window"), default=200, help="closes per EMA")
    parser.add_argument("--symbols", type=symbols, default=SYMBOLS, help="MNQ,MES,MGC,MCL")
    parser.add_argument("--seed", type=int, default=21, help="the price walk's seed")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="Hydra overrides")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    closes = {s: deque([START_PRICE[s]], maxlen=args.window) for s in args.symbols}
    try:
        h = harness.open(args.overrides)
    except InvalidInputError as exc:  # ConfigError too: one line naming the key
        print(f"bot.py: {exc}", file=sys.stderr)
        return 2
    except HarnessError as exc:  # the store cannot be opened (unreachable, newer schema)
        print(f"bot.py: {exc}", file=sys.stderr)
        return 1
    with h:
        ema = h.register_operation(
            "ema",
            python=python_side,
            rust=rust_side,
            migration="indicators",
            key=routing_key,
            compare=same_ema,
        )
        for i in range(args.calls):
            symbol = args.symbols[i % len(args.symbols)]
            minute = FIRST_MINUTE + i // len(args.symbols)
            last = closes[symbol][-1]
            closes[symbol].append(round(last * (1.0 + rng.gauss(0.0, 0.0005)), 2))
            ema(symbol, minute, list(closes[symbol]), args.span)
        h.wait_for_shadows()
        stats = h.stats()
        served = stats.calls["ema"]
        shadows = stats.shadows
        print(
            f"ema: stage {h.state.stages['ema']}, {served.calls} calls, "
            f"{served.served_by_rust} served by rust, {served.fell_back} fell back, "
            f"{shadows.matched} shadows matched, {shadows.mismatched} mismatched"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
