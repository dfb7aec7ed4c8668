"""The report as one self-contained HTML file: inline CSS, pictures as `data:image/png;base64`
URIs, no script, no font, no link: it opens in a browser with no network.

Every text read from the store (error messages, reasons, who, keys, values) is escaped
(`html.escape`, quotes included), so a stored `<script>` is shown, never run.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence

from harness.report.charts import Picture
from harness.report.content import Section
from harness.report.tables import Table, events, gate, mismatches, sides, summary

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.5em; } h2 { border-bottom: 2px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.PASS { color: #16702e; font-weight: bold; } .FAIL { color: #b00020; font-weight: bold; }
.INCONCLUSIVE { color: #a36100; font-weight: bold; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { font-weight: bold; } img { display: block; max-width: 100%; margin: 0.5em 0; }
.note { color: #666; }
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _table(table: Table, empty: str) -> str:
    header, rows = table
    if not rows:
        return f'<p class="note">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for value in row:
            numeric = _NUMBER.fullmatch(value) is not None
            klass = value.split(" ")[0] if value.split(" ")[0] in _VERDICTS else None
            attr = f' class="{klass}"' if klass else (' class="num"' if numeric else "")
            cells.append(f"<td{attr}>{_e(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")
_NUMBER = re.compile(r"-?[\d,]+(\.\d+)?(e[-+]?\d+)?%?|-|inf")


def _img(picture: Picture) -> str:
    data = base64.b64encode(picture.png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(picture.title)}">'


def _section(section: Section, pictures: Sequence[Picture]) -> str:
    name = section.window.migration
    head = "".join(
        f"<dt>{_e(label)}</dt><dd"
        + (f' class="{_e(text)}"' if text in _VERDICTS else "")
        + f">{_e(text)}</dd>"
        for label, text in summary(section)
    )
    parts = [
        f'<section id="migration-{_e(name)}"><h2>Migration {_e(name)}</h2><dl>{head}</dl>',
        "<h3>Gate</h3>",
        _table(gate(section), "No criterion judged."),
        "<h3>Calls per operation and side</h3>",
        '<p class="note">calls, errors and fallbacks: the calls routed to the side; latency: '
        "its successful calls served without a fallback.</p>",
        _table(sides(section), "No calls in the window."),
        "<h3>Over time</h3>",
    ]
    if pictures:
        parts += [_img(p) for p in pictures]
    else:
        parts.append('<p class="note">No calls in the window: nothing to draw.</p>')
    parts += [
        f"<h3>Shadow mismatches ({section.shadow_mismatched:,} of "
        f"{section.shadow_compared:,} comparisons)</h3>",
        _table(mismatches(section), "No shadow comparison differed."),
        "<h3>Events of the window</h3>",
        _table(events(section), "No event in the window."),
        "</section>",
    ]
    return "\n".join(parts)


def render(
    sections: Sequence[Section],
    pictures: Sequence[Sequence[Picture]],
    *,
    generated: str,
    database: str,
    version: str,
) -> str:
    """The HTML document: `pictures[i]` are those of `sections[i]`; `generated` (ISO-8601 UTC),
    `database` (its URL with the password hidden) and `version` head the page."""
    names = ", ".join(s.window.migration for s in sections) or "none"
    body = "\n".join(_section(s, p) for s, p in zip(sections, pictures, strict=True))
    if not sections:
        body = '<p class="note">No migration to report.</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>Rollout decision report: {_e(names)}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>Rollout decision report: {_e(names)}</h1>"
        f"<dl><dt>generated</dt><dd>{_e(generated)}</dd>"
        f"<dt>database</dt><dd>{_e(database)}</dd>"
        f"<dt>harness</dt><dd>{_e(version)}</dd></dl>\n"
        f"{body}\n</body></html>\n"
    )
