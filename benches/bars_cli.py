"""`harness bars` end to end against pandas reading the same file, side by side in one run;
and what the time column's type costs `harness.bars.aggregate`.

    python benches/bars_cli.py                  # 2,000,000 rows (the issue's size)
    python benches/bars_cli.py --rows 200000    # a smoke run: targets are judged at 2M only

Part 1 writes a CSV of 1-minute bars (t as ISO-8601 "...Z", and a second file with epoch
seconds), then times, in interleaved rounds so that load on this shared machine falls on all
alike: the whole command `python -m harness bars --timeframe 5m,15m,1h` in a fresh process
(interpreter start, imports, read, aggregate, write three files); pandas `read_csv` with the
time column parsed, both in this process (its import already paid) and in a fresh process
(interpreter start and `import pandas` counted, like the command); pyarrow's `read_csv` alone;
and the start-up alone (python with numpy and pyarrow imported). Target (issue 12): the whole
command costs at most 2x pandas' read and parse; judged against both pandas figures.

Part 2 times `aggregate(frame, "5m")` on the same bars with `t` as int64 ns, naive
datetime64[ns], pandas `datetime64[us, UTC]` (what `read_csv(parse_dates=...)` gives) and epoch
seconds. Writes benches/reports/bars_cli.md, quoted in docs/bars.md.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pa_csv
from bars import futures_minutes
from machine import describe

from harness.bars import aggregate

REPORT = Path(__file__).parent / "reports" / "bars_cli.md"
TARGET_ROWS = 2_000_000
TIMEFRAMES = "5m,15m,1h"


def write_csv(bars: dict[str, np.ndarray], path: Path, epoch: bool) -> None:
    """The bars as a CSV a user would have: t as ISO-8601 with Z, or as epoch seconds."""
    if epoch:
        t = pd.Series(bars["t"] // 10**9)
    else:
        t = pd.Series(np.datetime_as_string(bars["t"].view("datetime64[ns]"), "s", "UTC"))
    frame = pd.DataFrame({"t": t, **{k: bars[k] for k in "ohlcv"}})
    frame.to_csv(path, index=False)


# pandas reading the file and parsing t, as a script: run in this process (imports already
# paid) and in a fresh one (interpreter start and `import pandas` counted, like the command).
PANDAS_ISO = """
import sys, warnings
import pandas as pd
warnings.simplefilter("ignore", UserWarning)  # "could not infer format": the default path
fmt = None if sys.argv[2] == "default" else sys.argv[2]
pd.read_csv(sys.argv[1], parse_dates=["t"], date_format=fmt)
"""
PANDAS_EPOCH = """
import sys
import pandas as pd
frame = pd.read_csv(sys.argv[1])
frame.assign(t=pd.to_datetime(frame["t"], unit="s", utc=True))
"""


def in_process(script: str, *argv: str) -> Callable[[], object]:
    code = compile(script, "<pandas>", "exec")

    def run() -> None:
        saved = sys.argv
        sys.argv = ["-", *argv]
        try:
            exec(code, {})
        finally:
            sys.argv = saved

    return run


def fresh_process(script: str, *argv: str) -> Callable[[], object]:
    return lambda: subprocess.run([sys.executable, "-c", script, *argv], check=True)


def command(path: Path, out: Path, impl: str) -> Callable[[], object]:
    argv = [sys.executable, "-m", "harness", "bars", "--input", str(path)]
    argv += ["--timeframe", TIMEFRAMES, "--output", str(out), "--impl", impl, "--no-progress"]
    return lambda: subprocess.run(argv, check=True, capture_output=True)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def interleaved(
    methods: dict[str, Callable[[], object]], rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Best wall time and best CPU time of each method over `rounds` rounds, every method once
    per round. CPU time counts every thread and child process; on a loaded machine it moves
    far less than wall time, which also counts the waits for a free core."""
    wall = dict.fromkeys(methods, float("inf"))
    cpu = dict.fromkeys(methods, float("inf"))
    for _ in range(rounds):
        for name, fn in methods.items():
            start, start_cpu = time.perf_counter(), cpu_seconds()
            fn()
            wall[name] = min(wall[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], cpu_seconds() - start_cpu)
    return wall, cpu


def part_one(rows: int, rounds: int, impls: list[str], work: Path) -> tuple[list[str], list]:
    bars = futures_minutes(rows)
    lines: list[str] = []
    verdicts: list[tuple[str, bool | None, str]] = []
    for label, epoch in (("ISO-8601 t", False), ("epoch-seconds t", True)):
        path = work / ("epoch.csv" if epoch else "iso.csv")
        write_csv(bars, path, epoch)
        size = path.stat().st_size / 2**20
        methods: dict[str, Callable[[], object]] = {}
        for impl in impls:
            name = f"harness bars --impl {impl} (whole command, fresh process)"
            methods[name] = command(path, work / impl, impl)
        pandas: dict[str, tuple[str, list[str]]] = (
            {"pandas read_csv + to_datetime(unit='s')": (PANDAS_EPOCH, [str(path)])}
            if epoch
            else {
                "pandas read_csv(parse_dates=['t'])": (PANDAS_ISO, [str(path), "default"]),
                "pandas read_csv(parse_dates=['t'], date_format='ISO8601')": (
                    PANDAS_ISO,
                    [str(path), "ISO8601"],
                ),
            }
        )
        for name, (script, argv) in pandas.items():
            methods[f"{name}, this process"] = in_process(script, *argv)
            methods[f"{name}, fresh process"] = fresh_process(script, *argv)
        methods["pyarrow.csv.read_csv alone, this process"] = lambda p=path: pa_csv.read_csv(p)
        methods["python -c 'import numpy, pyarrow.csv' (start-up only)"] = fresh_process(
            "import numpy, pyarrow.csv"
        )
        for fn in methods.values():
            fn()  # warm-up: page cache, imports
        best, cpu = interleaved(methods, rounds)

        def fastest_pandas(times: dict[str, float], kind: str) -> float:
            return min(v for k, v in times.items() if k.startswith("pandas") and kind in k)

        this, fresh = fastest_pandas(best, "this"), fastest_pandas(best, "fresh")
        cpu_this, cpu_fresh = fastest_pandas(cpu, "this"), fastest_pandas(cpu, "fresh")
        lines += [
            f"**{rows:,} rows, {label}** ({size:.0f} MiB; best of {rounds} interleaved rounds)",
            "",
            "| method | wall s | x pandas, this process | x pandas, fresh process "
            "| CPU s | CPU x pandas, this process | CPU x pandas, fresh process |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, sec in best.items():
            c = cpu[name]
            lines.append(
                f"| {name} | {sec:.2f} | {sec / this:.2f} | {sec / fresh:.2f} "
                f"| {c:.2f} | {c / cpu_this:.2f} | {c / cpu_fresh:.2f} |"
            )
        lines.append("")
        name = "harness bars --impl rust (whole command, fresh process)"
        if name in best:
            judged = rows >= TARGET_ROWS
            for against, measure, base, own in (
                ("fresh process, wall", "wall", fresh, best[name]),
                ("fresh process, CPU", "CPU", cpu_fresh, cpu[name]),
                ("this process, wall", "wall", this, best[name]),
            ):
                verdicts.append(
                    (
                        f"{rows:,} rows, {label}: whole command <= 2x pandas read+parse "
                        f"({against})",
                        (own / base <= 2.0) if judged else None,
                        f"{own / base:.2f}x ({own:.2f} s vs {base:.2f} s {measure})",
                    )
                )
    return lines, verdicts


def part_two(rows: int, rounds: int) -> list[str]:
    bars = futures_minutes(rows)
    prices = {k: bars[k] for k in "ohlcv"}
    aware = pd.Series(pd.to_datetime(bars["t"], utc=True).as_unit("us"))
    frames = {
        "int64 ns": pd.DataFrame({"t": bars["t"], **prices}),
        "datetime64[ns] (naive = UTC)": pd.DataFrame(
            {"t": bars["t"].view("datetime64[ns]"), **prices}
        ),
        "datetime64[us, UTC] (pandas read_csv)": pd.DataFrame({"t": aware, **prices}),
        "datetime64[us, America/Chicago]": pd.DataFrame(
            {"t": aware.dt.tz_convert("America/Chicago"), **prices}
        ),
        "int64 epoch seconds": pd.DataFrame({"t": bars["t"] // 10**9, **prices}),
    }
    want = aggregate(bars, "5m")
    for frame in frames.values():
        assert aggregate(frame, "5m").equals(want)
    calls = {k: (lambda f=f: aggregate(f, "5m")) for k, f in frames.items()}
    best = interleaved(calls, rounds)[0]
    base = best["int64 ns"]
    lines = [
        f"**`aggregate(frame, '5m')` on {rows:,} bars, by type of the t column** "
        f"(best of {rounds} interleaved rounds; the same bars each time)",
        "",
        "| t column | ms | x int64 ns |",
        "| --- | ---: | ---: |",
    ]
    for name, seconds in best.items():
        lines.append(f"| {name} | {seconds * 1e3:.1f} | {seconds / base:.2f} |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    """Run both parts, print and write the report; exit status 1 if a judged target failed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=TARGET_ROWS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--impls", default="rust", help="comma-separated: rust, python (slow at 2M rows)"
    )
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    about = describe(["numpy", "pandas", "pyarrow"])
    print(about, flush=True)
    with tempfile.TemporaryDirectory(prefix="bars_cli_") as work:
        lines, verdicts = part_one(args.rows, args.rounds, args.impls.split(","), Path(work))
    print("\n".join(lines), flush=True)
    conversion = part_two(args.rows, max(args.rounds, 5))
    print("\n".join(conversion), flush=True)
    summary = ["| target | result | measured |", "| --- | --- | --- |"]
    for name, ok, figure in verdicts:
        verdict = "n/a" if ok is None else ("PASS" if ok else "FAIL")
        print(f"{verdict:4}  {name}: {figure}")
        summary.append(f"| {name} | {verdict} | {figure} |")
    shown = argv if argv is not None else sys.argv[1:]
    report = [
        "# `harness bars` benchmark",
        "",
        f"Command: `{' '.join(['python benches/bars_cli.py', *shown])}`",
        "",
        f"Machine: {about}.",
        "",
        "Wall time, best of interleaved rounds (each round runs every method once, so a burst "
        "of load from other processes falls on all of them alike). The whole command runs in a "
        "fresh process (`python -m harness bars --timeframe 5m,15m,1h`: interpreter start, "
        "imports, read, aggregate, three files written). pandas reads and parses the same file "
        "in this process (its import already paid) and in a fresh process (interpreter start "
        "and `import pandas` counted, as they are for the command); the ratio columns divide by "
        "the fastest pandas variant of each kind. CPU time (user + system, every thread and child) "
        "is shown beside wall time: on a loaded machine it moves far less, since wall time also "
        "counts the waits for a free core. The start-up row is a fresh python importing "
        "numpy and pyarrow and doing nothing else: the floor of any command that reads with "
        "pyarrow.",
        "",
        *lines,
        *conversion,
        *summary,
        "",
    ]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(report))
    print(f"\nwrote {args.report}")
    return 0 if all(ok is not False for _, ok, _ in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
