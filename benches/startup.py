"""What the quick commands cost as a user runs them: CPU time and memory of a whole process.

    python benches/startup.py            # 7 rounds; writes benches/reports/startup.md
    python benches/startup.py --rounds 3

Runs `harness --help`, `harness status`, `harness gate` and `harness query latency` (the
console script, in a fresh process each) on a SQLite store seeded with a stage's traffic
(2,050 outcomes and 18 shadow comparisons, `tests/storekit.seed_rollout`), and, in the same
rounds, `python -c "import sqlalchemy"` as the reference. Each figure is the child's own user +
system CPU time and its max RSS (`os.wait4`, the child's `rusage`; Linux starts a child's max
RSS at its parent's, so this process stays small and seeds the store in another); rounds
interleave the commands so that the machine's load falls on all alike; medians. Target (issue
23): each command at most 2x the CPU time of `import sqlalchemy`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

REPORT = Path(__file__).parent / "reports" / "startup.md"
TARGET_RATIO = 2.0
REFERENCE = "python -c 'import sqlalchemy'"


def _harness() -> list[str]:
    script = Path(sys.executable).parent / "harness"
    return [str(script)] if script.exists() else [sys.executable, "-m", "harness.cli"]


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """One process: (CPU seconds, max RSS in MiB, exit status)."""
    child = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, child.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", nargs=2, metavar=("URL", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        import storekit

        url, folder = args.seed
        storekit.seed_rollout(url, Path(folder), time.time_ns()).engine.dispose()
        return 0
    machine = describe(["SQLAlchemy", "numpy", "hydra-core", "rich"])
    harness = _harness()
    commands = {
        REFERENCE: [sys.executable, "-c", "import sqlalchemy"],
        "harness --help": [*harness, "--help"],
        "harness status": [*harness, "status"],
        "harness gate": [*harness, "gate"],
        "harness query latency": [*harness, "query", "latency"],
    }
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as folder:
        tmp = Path(folder)
        url = f"sqlite:///{tmp / 'harness.db'}"
        env = {**os.environ, "HARNESS_DB_URL": url}
        upgrade = [*harness, "db", "upgrade"]
        subprocess.run(upgrade, cwd=tmp, env=env, check=True, capture_output=True)
        # Seeded by another process: a child's max RSS starts at its parent's (Linux keeps it
        # across fork and exec), so this one stays small (the figures' floor, about 13 MiB).
        seed = [sys.executable, __file__, "--seed", url, str(tmp)]
        subprocess.run(seed, check=True, capture_output=True)
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        rss: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                seconds, mib, code = run_once(argv, tmp, env)
                if code not in (0, 1, 3):  # gate: FAIL (1) or INCONCLUSIVE (3) are answers
                    raise SystemExit(f"{name} exited {code}")
                cpu[name].append(seconds)
                rss[name].append(mib)
    reference = statistics.median(cpu[REFERENCE])
    rows = []
    for name in commands:
        median = statistics.median(cpu[name])
        ratio = median / reference
        verdict = "" if name == REFERENCE else ("met" if ratio <= TARGET_RATIO else "MISSED")
        rows.append(
            f"| `{name}` | {median:.3f} | {ratio:.2f}x | {statistics.median(rss[name]):.0f} "
            f"| {verdict} |"
        )
    table = "\n".join(
        [
            "| command | CPU s (median) | vs import sqlalchemy | max RSS MiB | target <= 2x |",
            "| --- | ---: | ---: | ---: | --- |",
            *rows,
        ]
    )
    print(table)
    REPORT.write_text(
        "# Start-up cost of the quick commands\n\n"
        f"`python benches/startup.py --rounds {args.rounds}`: user + system CPU time and max RSS "
        "of each whole process (the child's own `rusage`), medians of the rounds, commands "
        "interleaved in each round, on a SQLite store with one stage's traffic (2,050 outcomes, "
        "18 shadow comparisons). Target (issue 23): each command at most 2x the CPU time of "
        "`import sqlalchemy`.\n\n"
        f"Machine: {machine}.\n\n{table}\n"
    )
    print(f"wrote {REPORT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
