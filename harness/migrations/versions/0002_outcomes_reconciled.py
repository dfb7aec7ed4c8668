"""outcomes.reconciled: a call whose outcome was found by a look-up after an ambiguous attempt.

A placement whose first attempt may have reached the broker (a 5xx or a connection lost after
the request was written) is settled by finding its order by customTag; a modify or cancel by
reading the order. The call then succeeds without a fallback, so nothing else in its row says
it happened: this column does (the fault drills count it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (existing rows read as not reconciled)."""
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reconciled", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_column("reconciled")
