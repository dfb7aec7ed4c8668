"""The dashboard follows another process: `harness run` (a real subprocess, a short session
against the embedded simulator) writes to the same database while the dashboard watches, and
the figures on screen grow as it goes, ending at what `harness query rates` counts."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import storekit

from harness.cli import main
from harness.config import compose
from harness.operations import Operation
from harness.store.db import open_store
from harness.tui.app import make_app
from harness.tui.widgets.operation_table import OperationTable

from .conftest import loaded, until

pytestmark = pytest.mark.timeout(300)


def total_calls(app) -> int:
    table = app.screen.query_one(OperationTable)
    return sum(int(table.cell_text("calls", op).replace(",", "")) for op in Operation)


async def test_the_dashboard_follows_harness_run_in_another_process(store_url, tmp_path, capsys):
    engine = open_store(store_url)
    storekit.set_stage(engine, "canary", time.time_ns() - storekit.SECOND_NS)
    engine.dispose()
    overrides = [f"db.url={store_url}", "rollout.start_stage=canary"]
    app = make_app(compose(overrides), refresh_s=0.3)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        assert total_calls(app) == 0
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                "--json",
                "workload.trades=24",
                "workload.concurrency=1",
                *overrides,
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            seen = [0]
            while run.poll() is None:
                await pilot.pause(0.3)
                calls = total_calls(app)
                if calls != seen[-1]:
                    seen.append(calls)
            out, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode == 0, err
        assert len(seen) >= 3, f"the figures moved only {seen} while the run went on"
        assert seen == sorted(seen)
        summary = json.loads(out)
        refreshed = app.refreshes  # the run has ended: two more refreshes see all it wrote
        await until(pilot, lambda: app.refreshes > refreshed + 1, what="a last refresh")
        final = total_calls(app)
    capsys.readouterr()
    assert main(["query", "rates", "--stage", "canary", "--json", *overrides]) == 0
    counted = sum(row["calls"] for row in json.loads(capsys.readouterr().out))
    assert final == counted > seen[1]
    assert summary  # the run printed its summary (JSON) and exited 0
