"""`harness export outcomes`: every recorded call in a window as Parquet or CSV, for pandas and
notebooks, streamed from the database in chunks (memory bounded by the chunk, not the rows).

Columns: `COLUMNS`, in that order (stable; a new one is only ever added at the end), their
types `parquet_schema()`'s; what each holds is documented in docs/report.md (a test checks that
table against `COLUMNS`). Times are ISO-8601 UTC to the microsecond (`time`) and ns since the
epoch (`time_ns`); `latency_us` is the caller's wait in microseconds.

Rows are ordered by time. Filters: `since_ns`/`until_ns` (`[since, until)` on the start time),
`op`, `migration`, `run`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from sqlalchemy import Engine, select

from harness.store.models import Outcome
from harness.store.queries import Filters
from harness.store.queries.plan import same, span

COLUMNS: Final = (
    "time",
    "time_ns",
    "op",
    "migration",
    "stage",
    "routed",
    "served",
    "targeted",
    "fell_back",
    "fallback_reason",
    "ok",
    "error_class",
    "error_message",
    "latency_us",
    "attempts",
    "http_status",
    "reconciled",
    "run_id",
    "order_id",
    "custom_tag",
)
CHUNK_ROWS: Final = 50_000
"""Rows fetched, converted and written at a time: what bounds the memory an export takes."""

_SELECTED: Final = (
    Outcome.ts_ns,
    Outcome.op,
    Outcome.migration,
    Outcome.stage,
    Outcome.routed,
    Outcome.served,
    Outcome.targeted,
    Outcome.fell_back,
    Outcome.fallback_reason,
    Outcome.ok,
    Outcome.error_class,
    Outcome.error_message,
    Outcome.latency_us,
    Outcome.attempts,
    Outcome.http_status,
    Outcome.reconciled,
    Outcome.run_id,
    Outcome.order_id,
    Outcome.custom_tag,
)


def iso_us(ns: int) -> str:
    """ns since the epoch as ISO-8601 UTC to the microsecond, `Z` suffixed."""
    stamp = datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{(ns % 1_000_000_000) // 1000:06d}Z"


def chunks(
    engine: Engine, filters: Filters, size: int = CHUNK_ROWS
) -> Iterator[list[tuple[Any, ...]]]:
    """The outcomes the filters keep, oldest first, `size` rows at a time (a server-side cursor
    on PostgreSQL; SQLite's cursor reads as it goes), each row in `COLUMNS` order."""
    o = Outcome
    query = (
        select(*_SELECTED)
        .where(span(o.ts_ns, filters.since_ns, filters.until_ns), *same(o, filters))
        .order_by(o.ts_ns, o.id)
    )
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=size).execute(query)
        for part in result.partitions(size):
            yield [
                (
                    iso_us(int(r[0])),
                    int(r[0]),
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    bool(r[6]),
                    bool(r[7]),
                    r[8],
                    bool(r[9]),
                    r[10],
                    r[11],
                    float(r[12]),
                    r[13],
                    r[14],
                    bool(r[15]),
                    r[16],
                    r[17],
                    r[18],
                )
                for r in part
            ]


def write_csv(engine: Engine, filters: Filters, stream: IO[bytes]) -> int:
    """CSV (UTF-8, a header line, empty cells for null, True/False for bools); the rows written."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    n = 0
    for part in chunks(engine, filters):
        writer.writerows(part)
        n += len(part)
    text.flush()
    text.detach()  # the caller owns the stream
    return n


def parquet_schema() -> Any:
    """The Parquet file's arrow schema (types as the module docstring's table)."""
    import pyarrow as pa

    types = {
        "time_ns": pa.int64(),
        "latency_us": pa.float64(),
        "attempts": pa.int64(),
        "http_status": pa.int64(),
        "order_id": pa.int64(),
        **{c: pa.bool_() for c in ("targeted", "fell_back", "ok", "reconciled")},
    }
    return pa.schema([pa.field(c, types.get(c, pa.string())) for c in COLUMNS])


def write_parquet(engine: Engine, filters: Filters, stream: IO[bytes]) -> int:
    """Parquet (zstd), one row group per chunk; the rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    n = 0
    with pq.ParquetWriter(stream, schema, compression="zstd") as writer:
        for part in chunks(engine, filters):
            columns = list(zip(*part, strict=True))
            writer.write_batch(
                pa.record_batch(
                    [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
                    schema=schema,
                )
            )
            n += len(part)
    return n


def export(engine: Engine, filters: Filters, out: Path) -> int:
    """Write the outcomes the filters keep to `out` (`.parquet` or `.csv`, by its suffix),
    whole or not at all (`harness.report.files`); the rows written. `ValueError` for another
    suffix (the CLI checks it first)."""
    from harness.report.files import write_atomically

    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"unknown export format {suffix!r}")
    writer = write_parquet if suffix == ".parquet" else write_csv
    written: list[int] = []
    write_atomically(out, lambda stream: written.append(writer(engine, filters, stream)))
    return written[0]
