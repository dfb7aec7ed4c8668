"""Fixtures of the fault drills: each drill's figures, and PostgreSQL clusters of their own.

Every drill records its figures with the `figures` fixture; they are printed at the end of the
session and, when `HARNESS_DRILL_RESULTS` names a file, appended to it as one JSON line per
drill (`benches/drills.py` runs the drills that way and writes `benches/reports/drills.md`).

Drills that stop PostgreSQL, need a role with a password, or change the server itself (made
read-only, a tablespace on a small disk), start a cluster of their own on a fixed port
(`own_pg`): never the one `.ci/run` shares with the other tests.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pgcluster
import pytest

RESULTS_ENV = "HARNESS_DRILL_RESULTS"
_session_figures: list[dict[str, Any]] = []


class Figures:
    """One drill's figures, in the order added: `figures.add("duplicate orders", 0)`."""

    def __init__(self, drill: str, title: str) -> None:
        self.drill = drill
        self.title = title
        self.rows: list[tuple[str, Any]] = []
        self.started = time.monotonic()

    def add(self, name: str, value: Any) -> Any:
        """Record (and return) one figure."""
        self.rows.append((name, value))
        print(f"drill {self.drill} {self.title}: {name} = {value}")
        return value

    def record(self, passed: bool) -> dict[str, Any]:
        """The drill's line of the results file."""
        return {
            "drill": self.drill,
            "title": self.title,
            "figures": [[name, value] for name, value in self.rows],
            "passed": passed,
            "seconds": round(time.monotonic() - self.started, 1),
        }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item, so `figures` knows whether the drill passed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """This drill's figures; the drill is named by its `@pytest.mark.drill_id(N, title)`."""
    marker = request.node.get_closest_marker("drill_id")
    assert marker is not None, "a drill needs @pytest.mark.drill_id(number, title)"
    number, title = marker.args
    fig = Figures(str(number), title)
    yield fig
    report = getattr(request.node, "report_call", None)
    line = fig.record(report is not None and report.passed)
    _session_figures.append(line)
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line, default=str) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Every drill's figures, after the tests (what CI's log shows)."""
    if not _session_figures:
        return
    terminalreporter.section("fault drills: figures")
    for line in sorted(_session_figures, key=lambda d: (int(d["drill"].split(".")[0]), d["drill"])):
        verdict = "PASS" if line["passed"] else "FAIL"
        terminalreporter.write_line(
            f"drill {line['drill']} {line['title']} ({verdict}, {line['seconds']} s)"
        )
        for name, value in line["figures"]:
            terminalreporter.write_line(f"    {name}: {value}")


class OwnPostgres:
    """A PostgreSQL cluster of this drill's own, on a fixed port: stop it, start it again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url = pgcluster.start(folder)
        self.port = int((folder / "port").read_text())
        self.running = True

    def stop(self) -> None:
        """Stop the server (fast mode: connections cut, as in an outage)."""
        if self.running:
            pgcluster.stop(self.folder)
            self.running = False

    def start(self) -> None:
        """Start it again on the same port."""
        if not self.running:
            pgcluster.start(self.folder, self.port)
            self.running = True


@pytest.fixture
def own_pg() -> Iterator[OwnPostgres]:
    """A throwaway cluster on loopback for one drill, stopped and removed after it."""
    folder = Path(tempfile.mkdtemp(prefix="harness-drill-pg-"))
    folder.chmod(0o755)  # the server runs as `postgres` when the drills run as root
    try:
        cluster = OwnPostgres(folder)
    except pgcluster.ClusterError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"no PostgreSQL for the drill: {exc}")
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
