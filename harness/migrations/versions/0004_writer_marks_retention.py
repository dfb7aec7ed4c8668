"""dirty_buckets.writer and retention: rollup marks per writer, and how far raw rows were pruned.

Several processes on one PostgreSQL all marked the current minute and hour dirty by updating the
same `dirty_buckets` row (`INSERT ... ON CONFLICT DO UPDATE gen = gen + 1`), so their batches
took turns on its row lock. Each writer now marks its own row: `writer` joins the primary key
(marks already there keep their bucket and gen, writer ''). `retention` holds the instant before
which raw outcomes were pruned by `harness db prune` (no row: never).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (every mark kept, as writer '')."""
    with op.batch_alter_table("dirty_buckets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("writer", sa.String(length=32), server_default="", nullable=False)
        )
        batch_op.drop_constraint("pk_dirty_buckets", type_="primary")
        batch_op.create_primary_key("pk_dirty_buckets", ["period_ns", "bucket_ns", "writer"])
    op.create_table(
        "retention",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("raw_before_ns", sa.BigInteger(), nullable=False),
        sa.Column("pruned_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention")),
    )


def downgrade() -> None:
    """Revert this revision: a bucket's marks become one (the highest gen); the prune mark goes
    (raw rows already pruned stay pruned)."""
    op.drop_table("retention")
    op.execute(
        "DELETE FROM dirty_buckets WHERE EXISTS (SELECT 1 FROM dirty_buckets AS d "
        "WHERE d.period_ns = dirty_buckets.period_ns AND d.bucket_ns = dirty_buckets.bucket_ns "
        "AND (d.gen > dirty_buckets.gen OR (d.gen = dirty_buckets.gen "
        "AND d.writer > dirty_buckets.writer)))"
    )
    with op.batch_alter_table("dirty_buckets", schema=None) as batch_op:
        batch_op.drop_constraint("pk_dirty_buckets", type_="primary")
        batch_op.create_primary_key("pk_dirty_buckets", ["period_ns", "bucket_ns"])
        batch_op.drop_column("writer")
