"""The report's pictures: PNG bytes drawn with matplotlib's Agg backend (no display, no
network), from a `Section`'s time series.

- latency over time: per operation, p50 and p95 (ms, log scale) of each serving side per
  bucket, from the merged sketches (`queries.latency` with a bucket);
- rates over time: per routed side, the error rate and the fallback rate of the migration's
  calls per bucket (%), from the rollups' counts (`queries.rates` with a bucket).

matplotlib is imported here only, and this module only by `harness report`.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from harness.report.content import Section

COLOURS: Final = {"rust": "#c0392b", "python": "#2e6da4"}
DPI: Final = 96
SIZE_IN: Final = (9.0, 3.2)  # 864 x 307 pixels at 96 dpi


@dataclass(frozen=True, slots=True)
class Picture:
    """One picture: `name` (a file name's stem, `latency-place_order`), `title` (alt text),
    `png` its bytes."""

    name: str
    title: str
    png: bytes


def pictures(section: Section) -> list[Picture]:
    """The section's pictures: one latency picture per operation that has latency, one rates
    picture when the window has calls (none for an empty window)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    out = []
    by_op: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in section.latency_series:
        by_op[row["op"]].append(row)
    for op, rows in by_op.items():
        if any(r["p50_ms"] is not None for r in rows):
            title = (
                f"{section.window.migration}: {op} latency over time (ms, p50 solid, p95 dashed)"
            )
            out.append(Picture(f"latency-{op}", title, _latency(rows, title)))
    if section.rate_series:
        title = f"{section.window.migration}: error and fallback rates over time (%)"
        out.append(Picture("rates", title, _rates(section.rate_series, title)))
    return out


def _time(bucket: str) -> datetime:
    return datetime.fromisoformat(bucket.replace("Z", "+00:00"))


def _figure(title: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE_IN, dpi=DPI)  # no pyplot: no global state, no display
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)
    return fig, ax


def _png(fig: Any) -> bytes:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    for ax in fig.axes:
        locator = AutoDateLocator()  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    fig.tight_layout()
    buffer = io.BytesIO()
    # No metadata: the same data draws the same bytes (no software version, no time).
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _latency(rows: list[dict[str, Any]], title: str) -> bytes:
    fig, ax = _figure(title)
    for side in ("python", "rust"):
        points = [r for r in rows if r["impl"] == side and r["p50_ms"] is not None]
        if not points:
            continue
        x = [_time(r["bucket"]) for r in points]
        colour = COLOURS.get(side, "black")
        ax.plot(x, [r["p50_ms"] for r in points], color=colour, label=f"{side} p50", marker=".")
        ax.plot(x, [r["p95_ms"] for r in points], color=colour, label=f"{side} p95", ls="--")
    from matplotlib.ticker import FuncFormatter

    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _pos: f"{value:g}")  # 0.3, 2, 40: not 3x10^-1
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_ylabel("ms")
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def _rates(rows: tuple[dict[str, Any], ...], title: str) -> bytes:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        c = counts[(r["impl"], r["bucket"])]
        c[0] += r["calls"]
        c[1] += r["errors"]
        c[2] += r["fallbacks"]
    fig, ax = _figure(title)
    for side in ("python", "rust"):
        points = sorted((b, c) for (s, b), c in counts.items() if s == side and c[0])
        if not points:
            continue
        x = [_time(b) for b, _ in points]
        colour = COLOURS.get(side, "black")
        ax.plot(x, [100 * c[1] / c[0] for _, c in points], color=colour, label=f"{side} errors")
        if side == "rust":  # only calls routed to Rust fall back
            ax.plot(x, [100 * c[2] / c[0] for _, c in points], color=colour, ls="--",
                    label="rust fallbacks")  # fmt: skip
    ax.set_ylabel("% of calls")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)
