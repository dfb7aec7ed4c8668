"""The fault drills (issue 16) in one command: run every drill of `tests/drills` (real processes,
real servers, on loopback) and write `benches/reports/drills.md`, one table of every drill's
figures with the machine it ran on and the command that made it.

    python benches/drills.py                         # every drill; the report in benches/reports/
    python benches/drills.py --report OUT.md         # the report elsewhere (CI prints it)
    python benches/drills.py --results FIGURES.jsonl # only render figures a drill run wrote
    python benches/drills.py -- -k soak              # pytest arguments after --

Each drill appends its figures as a JSON line to the file named by `HARNESS_DRILL_RESULTS`
(`tests/drills/conftest.py`); this script points it at a fresh file, runs pytest, and renders.
The exit status is pytest's (a failed drill is in the table, marked FAIL, and fails the run).
PostgreSQL: drills 5, 9, 12 and 13 start clusters of their own; drills 7, 11 and 15 use
`HARNESS_TEST_PG_URL` or, without it, a throwaway cluster the test session starts
(`tests/pgcluster.py`). Drills 12 and 13 mount small tmpfs file systems (root, as CI runs).
Drill 15 kills 4 schema changes per case by default;
`HARNESS_DRILL_SCHEMA_TRIES=16 python benches/drills.py -- -k schema` kills more.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import describe

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "benches" / "reports" / "drills.md"


def _cell(value: Any) -> str:
    """A figure as table text (lists and mappings compact, pipes escaped)."""
    if isinstance(value, dict):
        text = ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = ", ".join(_cell(v) for v in value)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _order(line: dict[str, Any]) -> tuple[int, str]:
    return int(str(line["drill"]).split(".")[0]), str(line.get("title"))


def render(lines: list[dict[str, Any]], *, machine: str, command: str, wall_s: float) -> str:
    """The report: a header, then one table with a row per figure of every drill."""
    out = [
        "# Fault drills",
        "",
        f"Command: `{command}` ({wall_s:.0f} s wall in all); "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"Machine: {machine}.",
        "",
        "Each drill is a test of `tests/drills/` (real `harness` processes, a `harness sim` "
        "process or the embedded simulator, SQLite files and PostgreSQL servers, on loopback); "
        "its assertions are the pass criteria, its figures are below.",
        "",
        "| drill | result | s | figure | value |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for line in sorted(lines, key=_order):
        name = f"{line['drill']}. {line['title']}"
        verdict = "PASS" if line["passed"] else "**FAIL**"
        figures = line["figures"] or [["(no figures)", "-"]]
        for i, (figure, value) in enumerate(figures):
            head = (name, verdict, str(line["seconds"])) if i == 0 else ("", "", "")
            out.append(f"| {' | '.join(head)} | {_cell(figure)} | {_cell(value)} |")
    failed = [f"{line['drill']}. {line['title']}" for line in lines if not line["passed"]]
    out += ["", f"Drills failed: {', '.join(failed)}." if failed else "Every drill passed.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the drills (or read `--results`), write the report; pytest's exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, extra = args[:cut], args[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, default=REPORT, help=f"default {REPORT}")
    parser.add_argument("--results", type=Path, help="render this results file, run nothing")
    options = parser.parse_args(args)

    machine = describe(["SQLAlchemy", "psycopg"])
    began = time.monotonic()
    status = 0
    if options.results is not None:
        results = options.results
        command = f"python benches/drills.py --results {results}"
    else:
        results = Path(tempfile.mkdtemp(prefix="harness-drills-")) / "figures.jsonl"
        pytest = [sys.executable, "-m", "pytest", "-m", "drill", "tests/drills", *extra]
        command = "python benches/drills.py" + (" -- " + shlex.join(extra) if extra else "")
        env = {**os.environ, "HARNESS_DRILL_RESULTS": str(results)}
        print(f"running: {shlex.join(pytest)}", flush=True)
        status = subprocess.run(pytest, cwd=ROOT, env=env, check=False).returncode
    lines = []
    if results.exists():
        lines = [json.loads(text) for text in results.read_text().splitlines() if text.strip()]
    if not lines:
        print(f"no drill figures in {results}", file=sys.stderr)
        return status or 1
    report = render(lines, machine=machine, command=command, wall_s=time.monotonic() - began)
    options.report.parent.mkdir(parents=True, exist_ok=True)
    options.report.write_text(report)
    print(f"\n{report}\nwritten: {options.report}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
