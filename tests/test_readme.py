"""The README's examples run as written: the order example, twice, against a real simulator."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.orders import ClientSettings
from harness.sim import Simulator

ROOT = Path(__file__).resolve().parents[1]
CREDENTIALS = ("PROJECTX_BASE_URL", "PROJECTX_USERNAME", "PROJECTX_API_KEY")


def readme_example(section: str) -> str:
    """The first ```python block after the heading `## {section}`."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", body, re.DOTALL)
    assert match is not None, f"no python example under '## {section}'"
    return match.group(1)


ORDER_EXAMPLE = readme_example("Order execution")


def test_the_order_example_runs_twice_against_the_simulator(tmp_path: Path) -> None:
    script = tmp_path / "order_example.py"
    script.write_text(ORDER_EXAMPLE)
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    with Simulator() as sim:  # default settings: the real rate limits
        env["PROJECTX_BASE_URL"] = sim.url  # the one change from the README: a free port
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
    exec(compile(ast.Module(body=setup, type_ignores=[]), "README.md", "exec"), names)
    settings = names["settings"]
    assert isinstance(settings, ClientSettings)
    assert settings.base_url == "http://127.0.0.1:8787"  # what `harness sim --port 8787` serves


def test_every_history_query_is_documented_with_its_columns() -> None:
    from harness.store.cli import COLUMNS, KINDS

    text = (ROOT / "README.md").read_text()
    listed = re.search(r"`harness query ((?:\w+\|)+\w+)`", text)
    assert listed is not None, "no `harness query a|b|...` list in the README"
    assert set(listed.group(1).split("|")) == set(KINDS)
    for kind in ("latency", "rates"):  # the aggregates: every column explained
        described = text.split(f"`harness query {kind}` gives", 1)[1][:900]
        for column in COLUMNS[kind]:
            assert f"`{column}`" in described, (kind, column)


def test_the_order_tags_are_documented_as_the_workload_writes_them() -> None:
    from harness.run.workload import tag_prefix

    run_id = "3f2a9c0e5b7d4e1a" + "0" * 16
    text = " ".join((ROOT / "README.md").read_text().split())
    assert f"`{tag_prefix(run_id)}12-stop`" in text
    assert "`hr-<first 16 hex digits of the run id>-<trip number>-entry|stop|exit`" in text
