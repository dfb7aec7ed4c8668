"""`harness report` as a person runs it: a real process on a seeded store (SQLite and
PostgreSQL), the HTML rendered by headless Chromium with its pictures, the Markdown form, the
windows (`--stage`, `--since`/`--until`), stored text escaped, bad `--out` refused."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from storekit import NOW_NS, seed_history

from report.kit import MARK, NOW_ISO, harness, png_pixels, png_size, seed

pytestmark = pytest.mark.timeout(300)

WINDOW = (1200, 2400)
SECRET = "pw-MARKER-4c2d"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is needed: apt-get install -y chromium (.ci/run installs it)"
    return found


def test_the_html_report_renders_headless_with_its_pictures(sqlite_url, tmp_path):
    seed(sqlite_url, tmp_path)
    out = tmp_path / "report.html"
    done = harness("report", "--until", NOW_ISO, "--out", str(out), f"db.url={sqlite_url}",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    page = out.read_text()
    # Self-contained: nothing fetched from anywhere.
    assert not re.search(r"https?://", page)
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)
    # Stored text is shown, never run.
    assert MARK not in page
    assert page.count("&lt;script&gt;alert(&quot;MARKER-7e1&quot;)&lt;/script&gt;") >= 2
    assert "<script" not in page
    # One section per migration, each with its gate table, figures, mismatches and events.
    for text in ("Migration orders", "Migration bars", "error_rate", "place_order",
                 "aggregate_bars", "3 of 12 comparisons", "21034.25", "halt "):  # fmt: skip
        assert text in page, text
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 6  # orders: 3 operations and rates; bars: 1 and rates
    for data in images:
        width, height = png_size(base64.b64decode(data))
        assert width > 400 and height > 200

    shot = tmp_path / "shot.png"
    browser = [_chromium(), "--headless", "--disable-gpu", "--no-sandbox",
               "--user-data-dir=" + str(tmp_path / "chromium")]  # fmt: skip
    rendered = subprocess.run(
        [
            *browser,
            f"--screenshot={shot}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            out.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    data = shot.read_bytes()
    assert png_size(data) == WINDOW
    pixels = png_pixels(data)
    assert len(set(pixels)) > 50  # text, tables and pictures, not a blank page
    dom = subprocess.run(
        [*browser, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Rollout decision report" in dom.stdout and "error_rate" in dom.stdout
    assert "&lt;script&gt;alert" in dom.stdout and "<script" not in dom.stdout
    assert len(re.findall(r'<img src="data:image/png;base64,', dom.stdout)) == len(images)
    docs = Path(__file__).parents[2] / "docs" / "images" / "report.png"
    if docs.parent.is_dir() and "HARNESS_WRITE_DOCS" in __import__("os").environ:
        shutil.copyfile(shot, docs)


def test_markdown_stage_windows_and_bad_input(store_url, tmp_path):
    seed(store_url, tmp_path)
    db = f"db.url={store_url}"
    out = tmp_path / "shadow.md"
    done = harness("report", "--migration", "orders", "--stage", "shadow", "--out", str(out), db,
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    # The latest time `shadow` was current: 40 to 20 minutes before the pinned now.
    assert "2026-11-30T23:20:00Z to 2026-11-30T23:40:00Z" in text
    assert "the latest time it was current" in text and "Migration bars" not in text
    assert "| criterion | op | figure | bound |" in text
    pictures = re.findall(r"!\[[^\]]*\]\((shadow-pictures/[^)]+\.png)\)", text)
    assert pictures, text[:2000]
    for path in pictures:
        png_size((tmp_path / path).read_bytes())
    # The current stage, cut by --until: the marked error and reason escaped as text; a
    # password in the database's URL (the test server trusts loopback: any password works)
    # never shown.
    now = tmp_path / "now.md"
    with_pw = db.replace("harness@", f"harness:{SECRET}@") if "postgresql" in db else db
    assert "postgresql" not in db or SECRET in with_pw
    done = harness("report", "--until", NOW_ISO, "--out", str(now), with_pw, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = now.read_text()
    assert MARK not in text and "&lt;script&gt;" in text
    assert "stage canary, current since it began" in text
    assert SECRET not in text + done.stdout + done.stderr
    # Without --out: harness-report-<migration>-<UTC time>.html in the working folder.
    done = harness("report", "--until", NOW_ISO, with_pw, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (default,) = tmp_path.glob("harness-report-all-*.html")
    assert re.fullmatch(r"harness-report-all-\d{8}T\d{6}Z\.html", default.name)
    assert SECRET not in default.read_text() and "Migration orders" in default.read_text()
    # Bad input: one line naming the field and the value, exit 2, nothing written.
    for args, field in (
        (("--out", str(tmp_path / "r.pdf")), "--out"),
        (("--stage", "nowhere", "--migration", "orders", "--out", str(tmp_path / "x.html")),
         "stage"),
        (("--migration", "nope", "--out", str(tmp_path / "y.html")), "migration"),
        (("--since", "tomorrow", "--out", str(tmp_path / "z.html")), "since"),
        (("--until", "2020-01-01", "--out", str(tmp_path / "x.html")), "until"),
    ):  # fmt: skip
        refused = harness("report", *args, db, cwd=tmp_path)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and f"invalid {field}=" in lines[0], refused.stderr
    assert not list(tmp_path.glob("r.pdf")) and not list(tmp_path.glob("[xyz].html"))
    assert not list(tmp_path.glob(".*.part"))


def test_an_unwritable_or_empty_out_is_refused_and_nothing_written(sqlite_url, tmp_path):
    seed(sqlite_url, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for out in ("/proc/x.html", "/proc/x.md", ""):
        refused = harness("report", "--until", NOW_ISO, "--out", out, f"db.url={sqlite_url}",
                          cwd=tmp_path)  # fmt: skip
        assert refused.returncode == 2, (out, refused.stderr)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and f"invalid --out={out!r}" in lines[0], refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no default-named file either
    # A Markdown report's pictures folder that cannot be made: the one line, nothing left.
    (tmp_path / "r-pictures").write_text("a file where the folder goes\n")
    refused = harness("report", "--until", NOW_ISO, "--out", str(tmp_path / "r.md"),
                      f"db.url={sqlite_url}", cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid --out=" in lines[0], refused.stderr
    assert not (tmp_path / "r.md").exists() and not list(tmp_path.glob(".*.part"))


def test_stage_reached_by_automatic_promotion_has_a_window(store_url, tmp_path):
    # `shadow` entered by the monitor's `auto_promote`, left by a manual promote: --stage finds
    # it as it finds a stage a person promoted to.
    history = (("start", "off", 60), ("auto_promote", "shadow", 40), ("promote", "canary", 20))
    seed_history(store_url, tmp_path, NOW_NS, history)
    out = tmp_path / "auto.md"
    done = harness("report", "--migration", "orders", "--stage", "shadow", "--out", str(out),
                   f"db.url={store_url}", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "2026-11-30T23:20:00Z to 2026-11-30T23:40:00Z" in text
    assert "the latest time it was current" in text


def test_the_help_names_both_formats(tmp_path):
    for args in (("report", "--help"), ("--help",)):
        done = harness(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "in one HTML or Markdown file" in " ".join(done.stdout.split()), args
