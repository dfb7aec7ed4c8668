"""`harness export outcomes` as a notebook user runs it: real processes on a seeded store
(SQLite and PostgreSQL), the files read back with pandas, their counts equal to
`harness query rates`, filters, stable columns, bad `--out` refused with nothing written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.report.export import COLUMNS
from report.kit import MARK, NOW_ISO, harness, seed

pytestmark = pytest.mark.timeout(300)


def _rates_calls(db: str, tmp_path, *extra: str) -> dict[str, int]:
    done = harness("query", "rates", "--json", "--until", NOW_ISO, *extra, db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    calls: dict[str, int] = {}
    for row in json.loads(done.stdout):
        calls[row["op"]] = calls.get(row["op"], 0) + row["calls"]
    return calls


def test_exports_read_back_with_pandas_and_agree_with_query_rates(store_url, tmp_path):
    seed(store_url, tmp_path)
    db = f"db.url={store_url}"
    parquet, csv = tmp_path / "all.parquet", tmp_path / "all.csv"
    for out in (parquet, csv):
        done = harness("export", "outcomes", "--until", NOW_ISO, "--out", str(out), db,
                       cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"{out}: " in done.stdout
    frame = pd.read_parquet(parquet)
    text = pd.read_csv(csv)
    assert list(frame.columns) == list(COLUMNS) == list(text.columns)
    expected = _rates_calls(db, tmp_path)
    assert frame.groupby("op").size().to_dict() == expected
    assert text.groupby("op").size().to_dict() == expected
    assert str(frame["time_ns"].dtype) == "int64" and str(frame["ok"].dtype) == "bool"
    assert frame["time_ns"].is_monotonic_increasing
    first = frame.iloc[0]
    stamp = pd.Timestamp(first["time"])
    assert stamp.tz is not None and stamp.value // 1000 == first["time_ns"] // 1000
    assert (frame["time"] == text["time"]).all()
    assert (frame["latency_us"] > 0).all()
    assert set(frame["served"]) == {"python", "rust"}
    assert frame["error_message"].str.contains(MARK, regex=False).sum() == 20

    one = tmp_path / "place.csv"
    done = harness("export", "outcomes", "--op", "place_order", "--migration", "orders",
                   "--since", "2026-11-30T23:40:00Z", "--until", NOW_ISO, "--out", str(one), db,
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    some = pd.read_csv(one)
    since = _rates_calls(db, tmp_path, "--op", "place_order", "--since", "2026-11-30T23:40:00Z")
    assert len(some) == since["place_order"] and set(some["stage"]) == {"canary"}


def test_a_bad_out_or_filter_is_refused_and_nothing_is_written(sqlite_url, tmp_path):
    db = f"db.url={sqlite_url}"
    kept = tmp_path / "kept.csv"
    kept.write_text("before\n")
    for args, field in (
        (("--out", str(tmp_path / "out.xlsx")), "--out"),
        (("--out", str(tmp_path / "missing" / "out.csv")), "--out"),
        (("--out", str(kept), "--since", "soon"), "since"),
    ):
        refused = harness("export", "outcomes", *args, db, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and f"invalid {field}=" in lines[0], refused.stderr
    assert kept.read_text() == "before\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".db") == ["kept.csv"]


def test_an_unwritable_or_empty_out_and_unknown_names_are_refused(sqlite_url, tmp_path):
    seed(sqlite_url, tmp_path)
    db = f"db.url={sqlite_url}"
    kept = tmp_path / "kept.csv"
    kept.write_text("before\n")
    for args, field, value in (
        (("--out", "/proc/x.csv"), "--out", "'/proc/x.csv'"),  # a folder no file can be made in
        (("--out", "/proc/x.parquet"), "--out", "'/proc/x.parquet'"),
        (("--out", ""), "--out", "''"),
        (("--out", str(kept), "--op", "nosuch"), "op", "'nosuch'"),
        (("--out", str(kept), "--migration", "nosuch"), "migration", "'nosuch'"),
    ):
        refused = harness("export", "outcomes", *args, db, cwd=tmp_path)
        assert refused.returncode == 2, (args, refused.stderr)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and f"invalid {field}={value}" in lines[0], refused.stderr
        assert "known: " in lines[0] or field == "--out"
    assert kept.read_text() == "before\n"
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.part"))


def test_a_written_path_is_printed_escaped(sqlite_url, tmp_path):
    seed(sqlite_url, tmp_path)
    name = "o\x1b[2J.csv"
    done = harness("export", "outcomes", "--until", NOW_ISO, "--out", name,
                   f"db.url={sqlite_url}", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "o\\x1b[2J.csv: " in done.stdout
    assert (tmp_path / name).is_file()


def test_the_documented_columns_are_the_exported_ones():
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "report.md").read_text()
    table = page.split("The columns, in this order")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    documented = [row.split("|")[1].strip() for row in rows[2:]]  # after the header and ---
    assert documented == list(COLUMNS)
