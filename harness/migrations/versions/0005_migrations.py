"""Migrations: one live state per migration, a global kill, and the migration on every row.

A migration (`orders`, `bars`, or one a bot registers) climbs its own ladder, so the single
state row becomes one `migration_state` row per migration; `rollout_state` keeps the global kill
flag and the version every reader polls. Outcomes, rollups and shadow comparisons say which
migration they belong to; outcomes and rollups also whether the stage's targets let the call go
to Rust at all (`targeted`); events say which migration they acted on.

Every existing row and event is kept: the old state row becomes one row per shipped migration
(`orders`, `bars`) with the same stage, since, kill flag, kill reason and gate settings (the
global kill is then clear); existing outcomes, rollups and comparisons get their operation's
shipped migration (`place_order`, `modify_order`, `cancel_order` -> orders; `aggregate_bars`
-> bars) and `targeted` true (no stage targeted before); existing events keep NULL (`all`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SHIPPED = (
    ("place_order", "orders"),
    ("modify_order", "orders"),
    ("cancel_order", "orders"),
    ("aggregate_bars", "bars"),
)
_MIGRATION_OF_OP = (
    "CASE op "
    + " ".join(f"WHEN '{name}' THEN '{migration}'" for name, migration in _SHIPPED)
    + " ELSE op END"
)
_ROLLUP_GROUP = ("period_ns", "bucket_ns", "run_id", "op", "stage", "routed", "served")


def upgrade() -> None:
    """Apply this revision (every row and event kept; see the module docstring)."""
    op.create_table(
        "migration_state",
        sa.Column("migration", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("stage_since_ns", sa.BigInteger(), nullable=False),
        sa.Column("kill", sa.Boolean(), nullable=False),
        sa.Column("kill_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.Column("gate_name", sa.String(length=255), nullable=True),
        sa.Column("gate_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("gate_settings", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("migration", name=op.f("pk_migration_state")),
    )
    for migration in ("orders", "bars"):
        op.execute(
            "INSERT INTO migration_state (migration, stage, stage_since_ns, kill, kill_reason, "
            "version, updated_ns, gate_name, gate_fingerprint, gate_settings) "
            f"SELECT '{migration}', stage, stage_since_ns, kill, kill_reason, version, "
            "updated_ns, gate_name, gate_fingerprint, gate_settings FROM rollout_state "
            "WHERE id = 1"
        )
    op.execute("UPDATE rollout_state SET kill = false, kill_reason = NULL, version = version + 1")
    with op.batch_alter_table("rollout_state", schema=None) as batch_op:
        batch_op.drop_column("gate_settings")
        batch_op.drop_column("gate_fingerprint")
        batch_op.drop_column("gate_name")
        batch_op.drop_column("stage_since_ns")
        batch_op.drop_column("stage")

    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("migration", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("targeted", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.execute(f"UPDATE outcomes SET migration = {_MIGRATION_OF_OP}")
    with op.batch_alter_table("shadow_comparisons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("migration", sa.String(length=32), nullable=True))
    op.execute(f"UPDATE shadow_comparisons SET migration = {_MIGRATION_OF_OP}")
    with op.batch_alter_table("rollout_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("migration", sa.String(length=32), nullable=True))

    # The rollups gain two columns of their primary key: the table is made anew and its rows
    # copied (derived data, but copied all the same: no recompute needed after the upgrade).
    with op.batch_alter_table("outcome_rollups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outcome_rollups_period_ns_stage_bucket_ns"))
    op.rename_table("outcome_rollups", "outcome_rollups_0003")
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE outcome_rollups_0003 RENAME CONSTRAINT pk_outcome_rollups "
            "TO pk_outcome_rollups_0003"
        )
    op.create_table(
        "outcome_rollups",
        sa.Column("period_ns", sa.BigInteger(), nullable=False),
        sa.Column("bucket_ns", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("op", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("routed", sa.String(length=8), nullable=False),
        sa.Column("served", sa.String(length=8), nullable=False),
        sa.Column("fell_back", sa.Boolean(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("migration", sa.String(length=32), nullable=False),
        sa.Column("targeted", sa.Boolean(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("latency_sum_us", sa.Float(), nullable=False),
        sa.Column("latency_max_us", sa.Float(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint(
            *_ROLLUP_GROUP,
            "fell_back",
            "ok",
            "migration",
            "targeted",
            name=op.f("pk_outcome_rollups"),
        ),
    )
    copied = ", ".join((*_ROLLUP_GROUP, "fell_back", "ok"))
    op.execute(
        f"INSERT INTO outcome_rollups ({copied}, migration, targeted, n, latency_sum_us, "
        f"latency_max_us, sketch) SELECT {copied}, {_MIGRATION_OF_OP}, true, n, "
        "latency_sum_us, latency_max_us, sketch FROM outcome_rollups_0003"
    )
    op.drop_table("outcome_rollups_0003")
    with op.batch_alter_table("outcome_rollups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outcome_rollups_period_ns_stage_bucket_ns"),
            ["period_ns", "stage", "bucket_ns"],
            unique=False,
        )


def downgrade() -> None:
    """Revert this revision: the stage of `orders` (else any migration) becomes the single
    state row's; the migrations' own kill flags fold into the one flag."""
    with op.batch_alter_table("rollout_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("stage_since_ns", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("gate_name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("gate_fingerprint", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("gate_settings", sa.Text(), nullable=True))
    pick = (
        "(SELECT {col} FROM migration_state ORDER BY CASE migration WHEN 'orders' THEN 0 "
        "ELSE 1 END, migration LIMIT 1)"
    )
    sets = ", ".join(
        f"{col} = {pick.format(col=col)}"
        for col in ("stage", "stage_since_ns", "gate_name", "gate_fingerprint", "gate_settings")
    )
    op.execute(f"UPDATE rollout_state SET {sets}")
    op.execute(
        "UPDATE rollout_state SET kill = true WHERE EXISTS "
        "(SELECT 1 FROM migration_state WHERE kill = true)"
    )
    with op.batch_alter_table("rollout_state", schema=None) as batch_op:
        batch_op.alter_column("stage", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("stage_since_ns", existing_type=sa.BigInteger(), nullable=False)
    op.drop_table("migration_state")
    with op.batch_alter_table("outcome_rollups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outcome_rollups_period_ns_stage_bucket_ns"))
    op.drop_table("outcome_rollups")
    op.create_table(
        "outcome_rollups",
        sa.Column("period_ns", sa.BigInteger(), nullable=False),
        sa.Column("bucket_ns", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("op", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("routed", sa.String(length=8), nullable=False),
        sa.Column("served", sa.String(length=8), nullable=False),
        sa.Column("fell_back", sa.Boolean(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("latency_sum_us", sa.Float(), nullable=False),
        sa.Column("latency_max_us", sa.Float(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint(*_ROLLUP_GROUP, "fell_back", "ok", name=op.f("pk_outcome_rollups")),
    )
    with op.batch_alter_table("outcome_rollups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outcome_rollups_period_ns_stage_bucket_ns"),
            ["period_ns", "stage", "bucket_ns"],
            unique=False,
        )
    # Derived data: every bucket is recomputed from the raw outcomes by the next compaction.
    for period in (60_000_000_000, 3_600_000_000_000):
        op.execute(
            f"INSERT INTO dirty_buckets (period_ns, bucket_ns, gen) SELECT DISTINCT {period}, "
            f"ts_ns - ts_ns % {period}, 1 FROM outcomes WHERE NOT EXISTS (SELECT 1 FROM "
            f"dirty_buckets d WHERE d.period_ns = {period} AND d.bucket_ns = "
            f"outcomes.ts_ns - outcomes.ts_ns % {period})"
        )
    for table in ("rollout_events", "shadow_comparisons"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("migration")
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_column("targeted")
        batch_op.drop_column("migration")
