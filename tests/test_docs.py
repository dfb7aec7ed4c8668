"""The docs hold to the code: their examples run as written, against a real simulator, and
every list of keys or columns they give is the code's."""

from __future__ import annotations

import ast
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from harness.orders import ClientSettings
from harness.sim import Simulator

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CREDENTIALS = ("PROJECTX_BASE_URL", "PROJECTX_USERNAME", "PROJECTX_API_KEY")


def doc_example(page: str) -> str:
    """The first ```python block of `docs/{page}`."""
    text = (DOCS / page).read_text()
    match = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert match is not None, f"no python example in docs/{page}"
    return match.group(1)


ORDER_EXAMPLE = doc_example("orders.md")


def test_the_order_example_runs_twice_against_the_simulator(tmp_path: Path) -> None:
    script = tmp_path / "order_example.py"
    script.write_text(ORDER_EXAMPLE)
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    with Simulator() as sim:  # default settings: the real rate limits
        env["PROJECTX_BASE_URL"] = sim.url  # the one change from the page: a free port
        for run in (1, 2):
            done = subprocess.run(
                [sys.executable, str(script)],
                capture_output=True,
                text=True,
                timeout=50,
                cwd=tmp_path,
                env=env,
            )
            assert done.returncode == 0, f"run {run}: {done.stderr}"
            assert "cancelled" in done.stdout
        ledger = sim.ledger()
    # Each run: a market order that filled, a limit order modified and then cancelled.
    assert [o["type"] for o in ledger] == [2, 1, 2, 1]
    assert [o["status"] for o in ledger] == [2, 3, 2, 3]
    assert len({o["customTag"] for o in ledger}) == 4
    assert {o["limitPrice"] for o in ledger if o["type"] == 1} == {29999.75}


def test_the_order_example_trades_on_the_simulator_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Credentials alone (as a bot's environment may hold) must not reach the live gateway.
    monkeypatch.delenv("PROJECTX_BASE_URL", raising=False)
    monkeypatch.setenv("PROJECTX_USERNAME", "someone")
    monkeypatch.setenv("PROJECTX_API_KEY", "a-real-key")
    tree = ast.parse(ORDER_EXAMPLE)
    setup = [node for node in tree.body if not isinstance(node, ast.AsyncFunctionDef | ast.Expr)]
    names: dict[str, object] = {}
    exec(compile(ast.Module(body=setup, type_ignores=[]), "docs/orders.md", "exec"), names)
    settings = names["settings"]
    assert isinstance(settings, ClientSettings)
    assert settings.base_url == "http://127.0.0.1:8787"  # what `harness sim --port 8787` serves


ROUTER_EXAMPLE = doc_example("router.md")


def test_the_router_example_trades_through_the_router_and_leaves_the_account_flat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As written: the embedded simulator, ./harness.db in the working folder. The harness it
    # opens is kept so that its simulator's book can be read once the example has closed it.
    import harness

    monkeypatch.chdir(tmp_path)
    opened: list[harness.Harness] = []
    real_open = harness.open

    def open_and_keep(*args: Any, **kwargs: Any) -> harness.Harness:
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(harness, "open", open_and_keep)
    exec(compile(ROUTER_EXAMPLE, "docs/router.md", "exec"), {"__name__": "__main__"})
    (h,) = opened
    assert h.simulator is not None
    # A market entry, a stop moved once then cancelled, a market exit: the account is flat.
    ledger = h.simulator.ledger()
    assert [(o["type"], o["side"], o["status"]) for o in ledger] == [
        (2, 0, 2),  # market buy, filled
        (4, 1, 3),  # stop sell, cancelled
        (2, 1, 2),  # market sell, filled
    ]
    assert h.simulator.positions() == []
    assert not [o for o in ledger if o["status"] == 1]  # nothing left working
    stage, five_minute_bars, *_ = capsys.readouterr().out.split()
    assert stage == "canary" and int(five_minute_bars) >= 120  # 600 minutes of real bars
    # Every routed call is one outcome row: three placements, a modify, a cancel, and the batch
    # aggregation plus the live aggregator's push_many.
    with closing(sqlite3.connect(tmp_path / "harness.db")) as db:
        counts = dict(db.execute("SELECT op, count(*) FROM outcomes GROUP BY op").fetchall())
    assert counts == {"place_order": 3, "modify_order": 1, "cancel_order": 1, "aggregate_bars": 2}


def test_every_history_query_is_documented_with_its_columns() -> None:
    from harness.store.cli import COLUMNS, KINDS

    text = (DOCS / "history.md").read_text()
    listed = re.search(r"`harness query ((?:\w+\|)+\w+)`", text)
    assert listed is not None, "no `harness query a|b|...` list in docs/history.md"
    assert set(listed.group(1).split("|")) == set(KINDS)
    for kind in ("latency", "rates"):  # the aggregates: every column explained
        described = text.split(f"`harness query {kind}` gives", 1)[1][:900]
        for column in COLUMNS[kind]:
            assert f"`{column}`" in described, (kind, column)


def test_the_order_tags_are_documented_as_the_workload_writes_them() -> None:
    from harness.run.workload import tag_prefix

    run_id = "3f2a9c0e5b7d4e1a" + "0" * 16
    text = " ".join((DOCS / "run.md").read_text().split())
    assert f"`{tag_prefix(run_id)}12-stop`" in text
    assert "`hr-<first 16 hex digits of the run id>-<trip number>-entry|stop|exit`" in text


# --- links ---------------------------------------------------------------------------------
# Every relative link of the README and the docs pages must land: on a file or folder of the
# repository, and on a heading of the page when it names an anchor. Anchors are made as GitHub
# makes them (github-slugger): lower case, punctuation dropped, spaces to hyphens, `-1`, `-2` ...
# on repeated headings.

PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(([^()\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading, e.g. `what-harness-run-prints` for the heading
    What `harness run` prints (link text kept, punctuation and backticks dropped)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a Markdown page offers (headings outside code blocks)."""
    found: set[str] = set()
    repeats: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        n = repeats.get(base, 0)
        repeats[base] = n + 1
        found.add(f"{base}-{n}" if n else base)
    return found


def broken_links(page: Path) -> list[str]:
    """The relative links of `page` that do not resolve, each as `target: why`."""
    text = CODE_SPAN.sub("code", FENCE.sub("", page.read_text()))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ... not ours to check
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


def test_the_slugs_are_githubs() -> None:
    assert slug("What `harness run` prints") == "what-harness-run-prints"
    assert slug("A staged rollout, start to end") == "a-staged-rollout-start-to-end"
    assert slug("Shadow runs (aggregation)") == "shadow-runs-aggregation"
    assert slug("The store and the recorder") == "the-store-and-the-recorder"


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A part\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Here\n\n[ok](other.md#a-part) [ok](#here) [ok](https://example.com/x#y)\n"
        "`[not a link](nowhere.md)`\n```\n[not a link](nowhere.md)\n```\n"
        "[gone](missing.md) [no anchor](other.md#nothing) [no anchor](#there)\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nothing: no heading #nothing in other.md",
        "#there: no heading #there in page.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


SOURCES = ("harness", "tests", "benches", ".ci", "rust/src", "docs")
DOCS_PAGE = r"\bdocs/[\w-]+\.md\b"


def repository_texts() -> dict[str, str]:
    """Every text file of the product, by path from the root: code, tests, CI, docs."""
    texts = {name: (ROOT / name).read_text() for name in ("README.md", "pyproject.toml")}
    for folder in SOURCES:
        for source in (ROOT / folder).rglob("*"):
            if source.is_file() and source.suffix in {".py", ".rs", ".yaml", ".toml", ".md", ""}:
                texts[str(source.relative_to(ROOT))] = source.read_text(errors="replace")
    return texts


def test_every_docs_page_the_code_names_exists() -> None:
    named = {p for text in repository_texts().values() for p in re.findall(DOCS_PAGE, text)}
    assert "docs/gate.md" in named  # the gate's config points there
    assert sorted(p for p in named if not (ROOT / p).exists()) == []


def test_nothing_cites_files_outside_the_repository() -> None:
    # The product refers only to what it contains: notes kept beside the repository while it
    # was written (a shared/ folder) are not shipped, so citing them leaves a reader nowhere.
    cites = [
        f"{path}: {hit}"
        for path, text in repository_texts().items()
        for hit in re.findall(r"\bshared/[\w./-]+", text)
    ]
    assert cites == []


def test_the_run_samples_show_what_harness_run_prints() -> None:
    # The README's and docs/run.md's `harness run` samples: the `build:` line under the
    # headline, and the table's columns those `print_summary` lays out, in order.
    code = (ROOT / "harness" / "run" / "summary.py").read_text()
    rows = code[code.index("    rows = [\n") : code.index('for o in summary["ops"]')]
    columns = re.findall(r'^\s+"([^"]+)": ', rows, re.MULTILINE)
    assert columns[:3] == ["op", "migration", "calls"], columns
    for page in (ROOT / "README.md", DOCS / "run.md"):
        text = page.read_text()
        assert re.search(r"^run [0-9a-f]{32}: .*\nbuild: \S+\n", text, re.MULTILINE), page
        header = re.search(r"^op +┃.*$", text, re.MULTILINE)
        assert header is not None, page
        assert [c.strip() for c in header.group().split("┃")] == columns, page


def test_the_readme_status_sample_shows_every_line_status_prints() -> None:
    # `harness status` prints the table, then per migration its since/ladder line, then the
    # native module, the build and the gate (harness/control/cli.py): the README shows them all.
    text = (ROOT / "README.md").read_text()
    sample = text[text.index("$ harness status") :].split("```")[0]
    for pattern in (
        r"^migration +┃ stage",
        r"^orders: since \S+; ladder .*; automatic promotion (on|off)",
        r"^bars: since \S+; ladder .*; automatic promotion (on|off)",
        r"^native module \(latest run\): ",
        r"^build \(latest run\): ",
        r"^gate: (PASS|FAIL|INCONCLUSIVE) ",
    ):
        assert re.search(pattern, sample, re.MULTILINE), pattern
