"""shadow_comparisons.field widened, runs.build_id: order shadows and evidence per build.

An order shadow names the first difference by its path (`read[2].error_class`,
`request[1].body.startTimestamp`), longer than a bar column's name: `field` grows from 16 to
128 characters (every row kept as it is). `runs.build_id` names the native module the run
loaded (`harness.native.build_id`); older runs have none (NULL).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (every row kept)."""
    with op.batch_alter_table("shadow_comparisons", schema=None) as batch_op:
        batch_op.alter_column(
            "field", existing_type=sa.String(length=16), type_=sa.String(length=128)
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("build_id", sa.String(length=80), nullable=True))


def downgrade() -> None:
    """Revert this revision: longer field paths are cut to 16 characters; build ids go."""
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("build_id")
    op.execute(
        "UPDATE shadow_comparisons SET field = SUBSTR(field, 1, 16) WHERE LENGTH(field) > 16"
    )
    with op.batch_alter_table("shadow_comparisons", schema=None) as batch_op:
        batch_op.alter_column(
            "field", existing_type=sa.String(length=128), type_=sa.String(length=16)
        )
