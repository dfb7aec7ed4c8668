"""captures and replays: a sample of routed calls kept for `harness replay`, and its results.

`captures` holds the sampled calls' inputs and answers (zlib of JSON, secrets scrubbed);
`replays` one row per operation of each `harness replay`, which the gate's `replay` criterion
reads (`gate.replay_required`). Two new tables: every existing row is kept as it is.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (every row kept)."""
    op.create_table(
        "captures",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("migration", sa.String(length=32), nullable=False),
        sa.Column("op", sa.String(length=32), nullable=False),
        sa.Column("served", sa.String(length=8), nullable=False),
        sa.Column("build_id", sa.String(length=80), nullable=True),
        sa.Column("format", sa.SmallInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_captures_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captures")),
    )
    op.create_index(op.f("ix_captures_ts_ns"), "captures", ["ts_ns"], unique=False)
    op.create_index(
        op.f("ix_captures_migration_ts_ns"), "captures", ["migration", "ts_ns"], unique=False
    )
    op.create_table(
        "replays",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("build_id", sa.String(length=80), nullable=False),
        sa.Column("migration", sa.String(length=32), nullable=False),
        sa.Column("op", sa.String(length=32), nullable=False),
        sa.Column("replayed", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("mismatched", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("first_field", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replays")),
    )
    op.create_index(
        op.f("ix_replays_build_id_migration_ts_ns"),
        "replays",
        ["build_id", "migration", "ts_ns"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision: the captures and the replay results go."""
    op.drop_index(op.f("ix_replays_build_id_migration_ts_ns"), table_name="replays")
    op.drop_table("replays")
    op.drop_index(op.f("ix_captures_migration_ts_ns"), table_name="captures")
    op.drop_index(op.f("ix_captures_ts_ns"), table_name="captures")
    op.drop_table("captures")
