"""rollout_state.gate_*: the gate settings the current stage is judged by, stored when it starts.

A stage is judged by the settings of the command that started it (`harness run gate=quick`
creating the state, `harness promote gate=quick`, a rollback, the automatic rollback), so that
`harness status`, `harness gate`, the dashboard and the automatic rollback, whatever their own
config, judge it as the promotion that started it did. `gate_name` is what people read
(`quick`, `default gate.min_soak_s=60`), `gate_fingerprint` the first 16 hex digits of the
SHA-256 of the settings' canonical JSON, `gate_settings` that JSON (alpha, min_soak_s, the
criteria of every operation). Existing rows keep everything and read NULL: their stage is judged
by each command's own settings, as before, until the next stage change stores them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (the existing state row keeps its values; its gate reads NULL)."""
    with op.batch_alter_table("rollout_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gate_name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("gate_fingerprint", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("gate_settings", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("rollout_state", schema=None) as batch_op:
        batch_op.drop_column("gate_settings")
        batch_op.drop_column("gate_fingerprint")
        batch_op.drop_column("gate_name")
