"""`harness report` (the decision report: one self-contained HTML or Markdown file) and
`harness export outcomes` (every recorded call as Parquet or CSV).

Both read the configured database read-only and write their file whole or not at all (a
temporary file renamed over the target). `--out`'s suffix decides the format; any other is
refused (exit 2) naming `--out` and the value. matplotlib and pyarrow are imported only here,
inside the commands.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING

from harness.config import HarnessConfig, redact_url
from harness.errors import InvalidInputError
from harness.output import printable
from harness.store import queries
from harness.store.db import open_store

if TYPE_CHECKING:
    from harness.report.content import Section

__all__ = ["Export", "Report"]

REPORT_SUFFIXES = (".html", ".md")
EXPORT_SUFFIXES = (".parquet", ".csv")
EXPORT_KINDS = ("outcomes",)


def _window_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", help="a duration back from now (1h, 30m, 7d) or an ISO-8601 time"
    )
    parser.add_argument("--until", help="the same forms as --since (default: now)")


def _instants(args: argparse.Namespace) -> tuple[int | None, int | None]:
    since = None if args.since is None else queries.parse_instant(args.since, "since")
    until = None if args.until is None else queries.parse_instant(args.until, "until")
    if since is not None and until is not None and since >= until:
        raise InvalidInputError("since", args.since, f"must be before --until {args.until}")
    return since, until


def _out(text: str, suffixes: tuple[str, ...]) -> Path:
    """`--out` as a path: not empty, its suffix one of `suffixes`, its folder existing and
    writable (a probe file created and removed there, so that a folder such as /proc is refused
    before the database is read). `InvalidInputError` naming `--out` otherwise."""
    if not text.strip():
        raise InvalidInputError("--out", text, f"empty: give a file name ending {suffixes[0]}")
    path = Path(text)
    if path.suffix.lower() not in suffixes:
        reason = f"the suffix decides the format: one of {', '.join(suffixes)}"
        raise InvalidInputError("--out", text, reason)
    if not path.parent.is_dir():
        raise InvalidInputError("--out", text, f"no such folder {str(path.parent)!r}")
    if path.is_dir():
        raise InvalidInputError("--out", text, "is a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        reason = f"cannot write in {str(path.parent)!r}: {exc.strerror or exc}"
        raise InvalidInputError("--out", text, reason) from None
    os.close(fd)
    os.unlink(probe)
    return path


def _unwritable(text: str, exc: OSError) -> InvalidInputError:
    """A write that failed after `_out`'s probe (a full disk, a folder made read-only), as the
    one-line `--out` error; the file was not written (`harness.report.files`)."""
    return InvalidInputError("--out", text, f"cannot write: {exc.strerror or exc}")


class Report:
    """`harness report [--migration NAME] [--stage S] [--since ...] [--until ...] [--out FILE]`."""

    help = (
        "the decision report: gate, figures, pictures, mismatches, events in one HTML or "
        "Markdown file"
    )

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness report`."""
        parser.add_argument(
            "--migration", help="one migration (default: one section per migration)"
        )
        parser.add_argument(
            "--stage",
            help="the latest time this stage was current (default: the current stage, since "
            "it began)",
        )
        _window_args(parser)
        parser.add_argument(
            "--out",
            help="FILE.html (self-contained) or FILE.md (pictures in FILE-pictures/ beside "
            "it); default harness-report-<migration>-<UTC time>.html",
        )

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Write the report; print its path."""
        from harness.report.content import sections

        since, until = _instants(args)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        default = f"harness-report-{args.migration or 'all'}-{stamp}.html"
        out = _out(default if args.out is None else args.out, REPORT_SUFFIXES)
        if args.stage is not None:
            queries.Filters(stage=args.stage)  # 1 to 255 printable characters
        engine = open_store(cfg.db.url, read_only=True)
        try:
            found = sections(
                engine, cfg, args.migration, stage=args.stage, since_ns=since, until_ns=until
            )
        finally:
            engine.dispose()
        head = {
            "generated": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "database": redact_url(cfg.db.url),
            "version": _version(),
        }
        try:
            if out.suffix.lower() == ".html":
                _write_html(out, found, head)
            else:
                _write_markdown(out, found, head)
        except OSError as exc:
            raise _unwritable(str(out), exc) from None
        covered = ", ".join(s.window.migration for s in found) or "nothing"
        print(f"{printable(str(out))}: report of {covered}")
        return 0


def _version() -> str:
    from harness import __version__

    return str(__version__)


def _put(stream: IO[bytes], data: bytes) -> None:
    stream.write(data)


def _write_html(out: Path, found: list[Section], head: dict[str, str]) -> None:
    from harness.report import as_html
    from harness.report.charts import pictures
    from harness.report.files import write_atomically

    text = as_html.render(found, [pictures(s) for s in found], **head)
    write_atomically(out, partial(_put, data=text.encode("utf-8")))


def _write_markdown(out: Path, found: list[Section], head: dict[str, str]) -> None:
    """The Markdown file and its pictures in `<stem>-pictures/` beside it: the pictures first
    (each written atomically), the file last, so that a file never links a missing picture.
    On an error the pictures written here (and the folder, if made here) are removed."""
    from harness.report import as_markdown
    from harness.report.charts import pictures
    from harness.report.files import write_atomically

    folder = out.with_name(f"{out.stem}-pictures")
    made = not folder.exists()
    written: list[Path] = []
    try:
        linked = []
        for s in found:
            drawn = pictures(s)
            if drawn:
                folder.mkdir(exist_ok=True)
            paths = []
            for p in drawn:
                name = f"{s.window.migration}-{p.name}.png"
                write_atomically(folder / name, partial(_put, data=p.png))
                written.append(folder / name)
                paths.append((p, f"{folder.name}/{name}"))
            linked.append(paths)
        text = as_markdown.render(found, linked, **head)
        write_atomically(out, partial(_put, data=text.encode("utf-8")))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        if made and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


class Export:
    """`harness export outcomes --out FILE.parquet|FILE.csv [filters]`."""

    help = "every recorded call as Parquet or CSV, for pandas and notebooks"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Options of `harness export`."""
        parser.add_argument("kind", choices=EXPORT_KINDS, help="what to export")
        parser.add_argument("--out", required=True, help="FILE.parquet or FILE.csv")
        _window_args(parser)
        parser.add_argument("--op", help="one operation's calls")
        parser.add_argument("--migration", help="one migration's calls")
        parser.add_argument("--run", help="one run's calls (its id)")

    @staticmethod
    def run(args: argparse.Namespace, cfg: HarnessConfig) -> int:
        """Write the file; print its path, the rows and the time taken."""
        from harness.report.export import export
        from harness.store.cli import check_names

        out = _out(args.out, EXPORT_SUFFIXES)
        since, until = _instants(args)
        filters = queries.Filters(
            op=args.op, migration=args.migration, run=args.run, since_ns=since, until_ns=until
        )
        began = time.monotonic()
        engine = open_store(cfg.db.url, read_only=True)
        try:
            check_names(args, engine, cfg)  # as `harness query`: before the file is touched
            rows = export(engine, filters, out)
        except OSError as exc:
            raise _unwritable(str(out), exc) from None
        finally:
            engine.dispose()
        print(f"{printable(str(out))}: {rows:,} outcomes in {time.monotonic() - began:.1f} s")
        return 0
