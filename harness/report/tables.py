"""The report's tables as plain rows of text: one source for the HTML and the Markdown forms,
which only escape and lay them out.

Each function returns `(header, rows)`; every cell is a `str` still to be escaped by the form
(store text such as error messages, reasons and who is untrusted).
"""

from __future__ import annotations

import math
from typing import Any

from harness.report.content import Section

Table = tuple[list[str], list[list[str]]]


def cell(value: Any) -> str:
    """A value as a cell: `-` for None, 4 significant digits for a float, yes/no for a bool."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.3g}%"


def gate(section: Section) -> Table:
    """The gate's table: criterion, operation, figure, bound, interval, verdict, detail."""
    header = ["criterion", "op", "figure", "bound", "interval", "verdict", "detail"]
    rows = []
    for c in section.verdict.criteria:
        interval = "-" if c.interval is None else f"[{cell(c.interval[0])}, {cell(c.interval[1])}]"
        verdict = c.result.value + (" (critical)" if c.critical else "")
        rows.append(
            [c.criterion.value, cell(c.op or "stage"), cell(c.figure), cell(c.bound),
             interval, verdict, c.detail]
        )  # fmt: skip
    for s in section.verdict.skipped:
        rows.append([s.criterion.value, cell(s.op or "stage"), "-", "-", "-", "skipped", s.reason])
    return header, rows


def sides(section: Section) -> Table:
    """Per operation and side: calls routed there, errors, fallbacks and their rates, and the
    latency percentiles (ms) of the successful calls it served."""
    header = ["op", "side", "calls", "errors", "error rate", "fallbacks", "fallback rate",
              "served ok", "p50 ms", "p95 ms", "p99 ms", "max ms"]  # fmt: skip
    rows = [
        [r.op, r.side, cell(r.calls), cell(r.errors), _rate(r.error_rate), cell(r.fallbacks),
         _rate(r.fallback_rate), cell(r.count), cell(r.p50_ms), cell(r.p95_ms), cell(r.p99_ms),
         cell(r.max_ms)]
        for r in section.sides
    ]  # fmt: skip
    return header, rows


def mismatches(section: Section) -> Table:
    """The shadow comparisons that differed, newest first, with their first difference."""
    header = ["time", "op", "key", "primary", "shadow", "timeframe", "bar", "field",
              "primary value", "shadow value", "shadow error"]  # fmt: skip
    rows = [
        [cell(m[k]) for k in ("time", "op", "key", "primary", "shadow", "timeframe",
                              "bar_index", "field", "primary_value", "shadow_value",
                              "shadow_error")]
        for m in section.mismatches
    ]  # fmt: skip
    return header, rows


def events(section: Section) -> Table:
    """The events of the window, newest first."""
    header = ["time", "kind", "migration", "op", "from", "to", "who", "reason", "forced", "gate"]
    rows = [
        [cell(e["time"]), cell(e["kind"]), cell(e["migration"]), cell(e["op"]),
         cell(e["from_stage"]), cell(e["to_stage"]), cell(e["who"]), cell(e["reason"]),
         cell(e["forced"]), _event_verdict(e.get("gate"))]
        for e in section.events
    ]  # fmt: skip
    return header, rows


def _event_verdict(gate: Any) -> str:
    """The verdict the event's gate snapshot holds (`-` without one)."""
    import json

    if not isinstance(gate, str):
        return "-"
    try:
        return str(json.loads(gate).get("verdict", "-"))
    except (ValueError, AttributeError):
        return "-"


def summary(section: Section) -> list[tuple[str, str]]:
    """The section's head lines: (label, text)."""
    w, v = section.window, section.verdict
    from harness.report.content import queries_iso

    lines = [
        ("window", f"{queries_iso(w.since_ns)} to {queries_iso(w.until_ns)} ({w.how})"),
        ("verdict", v.result.value),
        ("shadow", f"{section.shadow_compared:,} comparisons, "
                   f"{section.shadow_mismatched:,} mismatched"),
    ]  # fmt: skip
    note = v.build_note()
    if note:
        lines.append(("build", note))
    if v.gate_settings:
        lines.append(("gate settings", f"{v.gate_settings.get('name')} "
                                       f"({v.gate_settings.get('source')})"))  # fmt: skip
    return lines
