"""The report as GitHub-flavoured Markdown: the same tables as the HTML form; the pictures are
PNG files in a folder beside it (`REPORT-pictures/`, linked relatively), written by the caller.

Store text is escaped for Markdown tables: `|` and the characters Markdown or its inline HTML
act on (`\\`, `` ` ``, `*`, `_`, `[`, `]`, `<`, `>`, `&`) are written as escapes or entities,
line breaks as spaces, so a cell stays one cell and a stored `<script>` stays text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.report.charts import Picture
from harness.report.content import Section
from harness.report.tables import Table, events, gate, mismatches, sides, summary

_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def escape(text: str) -> str:
    """`text` safe inside a Markdown table cell (see the module docstring)."""
    text = re.sub(r"\s+", " ", text)
    text = "".join(_ENTITIES.get(ch, ch) for ch in text)
    return _SPECIAL.sub(r"\\\1", text)


def _table(table: Table, empty: str) -> str:
    header, rows = table
    if not rows:
        return f"_{empty}_\n"
    lines = ["| " + " | ".join(escape(h) for h in header) + " |"]
    lines.append("|" + "|".join(" --- " for _ in header) + "|")
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _section(section: Section, pictures: Sequence[tuple[Picture, str]]) -> str:
    name = escape(section.window.migration)
    parts = [f"## Migration {name}\n"]
    parts += [f"- **{escape(label)}**: {escape(text)}" for label, text in summary(section)]
    parts += ["", "### Gate\n", _table(gate(section), "No criterion judged.")]
    parts += [
        "### Calls per operation and side\n",
        "calls, errors and fallbacks: the calls routed to the side; latency: its successful "
        "calls served without a fallback.\n",
        _table(sides(section), "No calls in the window."),
        "### Over time\n",
    ]
    if pictures:
        parts += [f"![{escape(p.title)}]({path})\n" for p, path in pictures]
    else:
        parts.append("_No calls in the window: nothing to draw._\n")
    parts += [
        f"### Shadow mismatches ({section.shadow_mismatched:,} of "
        f"{section.shadow_compared:,} comparisons)\n",
        _table(mismatches(section), "No shadow comparison differed."),
        "### Events of the window\n",
        _table(events(section), "No event in the window."),
    ]
    return "\n".join(parts)


def render(
    sections: Sequence[Section],
    pictures: Sequence[Sequence[tuple[Picture, str]]],
    *,
    generated: str,
    database: str,
    version: str,
) -> str:
    """The Markdown document: `pictures[i]` are `sections[i]`'s, each with the relative path
    its file is written at."""
    names = ", ".join(s.window.migration for s in sections) or "none"
    head = [
        f"# Rollout decision report: {escape(names)}\n",
        f"- **generated**: {escape(generated)}",
        f"- **database**: {escape(database)}",
        f"- **harness**: {escape(version)}\n",
    ]
    body = [_section(s, p) for s, p in zip(sections, pictures, strict=True)]
    return "\n".join(head + (body or ["_No migration to report._\n"]))
