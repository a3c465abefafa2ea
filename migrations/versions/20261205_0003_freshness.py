"""Freshness: schedules, table settings, freshness and outcome counters of tables, fingerprints of
versions, the version status ``held``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 09:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("writing", "current", "superseded", "failed", "deleted", "deletion_failed")
STATUSES_WITH_HELD = (*STATUSES, "held")
OUTCOME_COUNTERS = (
    "refreshes_published",
    "refreshes_unchanged",
    "refreshes_held",
    "refreshes_failed",
)


def _status_check(statuses: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{status}'" for status in statuses) + ")"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "schedules",
        sa.Column("connection_id", sa.String(length=64), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=True),
        sa.Column("cron", sa.String(length=255), nullable=True),
        sa.Column("include_uncached", sa.Boolean(), nullable=False),
        sa.Column("only_if_changed", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_job_id", sa.String(length=64), nullable=True),
        sa.Column("last_job_settled", sa.Boolean(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(every_seconds IS NULL) <> (cron IS NULL)", name=op.f("ck_schedules_one_timing")
        ),
        sa.CheckConstraint(
            "every_seconds IS NULL OR every_seconds >= 1", name=op.f("ck_schedules_every_seconds")
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_schedules_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_schedules")),
    )
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schedules_next_run_at"), ["next_run_at"], unique=False)

    op.create_table(
        "table_settings",
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("check_sql", sa.Text(), nullable=True),
        sa.Column("hold_below_ratio", sa.Float(), nullable=False),
        sa.Column("max_staleness_seconds", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "hold_below_ratio >= 0 AND hold_below_ratio <= 1",
            name=op.f("ck_table_settings_hold_below_ratio"),
        ),
        sa.CheckConstraint(
            "max_staleness_seconds IS NULL OR max_staleness_seconds >= 1",
            name=op.f("ck_table_settings_max_staleness_seconds"),
        ),
        sa.ForeignKeyConstraint(
            ["table_id"],
            ["tables.id"],
            name=op.f("fk_table_settings_table_id_tables"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("table_id", name=op.f("pk_table_settings")),
    )

    with op.batch_alter_table("tables", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False
            )
        )
        for counter in OUTCOME_COUNTERS:
            batch_op.add_column(
                sa.Column(counter, sa.BigInteger(), server_default=sa.text("0"), nullable=False)
            )

    with op.batch_alter_table("table_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=128), nullable=True))
        batch_op.drop_constraint(op.f("ck_table_versions_status"), type_="check")
        batch_op.create_check_constraint("status", _status_check(STATUSES_WITH_HELD))


def downgrade() -> None:
    """Downgrade schema: a held version becomes failed, its reason kept."""
    op.execute("UPDATE table_versions SET status = 'failed' WHERE status = 'held'")
    with op.batch_alter_table("table_versions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_table_versions_status"), type_="check")
        batch_op.create_check_constraint("status", _status_check(STATUSES))
        batch_op.drop_column("fingerprint")

    with op.batch_alter_table("tables", schema=None) as batch_op:
        for counter in reversed(OUTCOME_COUNTERS):
            batch_op.drop_column(counter)
        batch_op.drop_column("consecutive_failures")
        batch_op.drop_column("last_checked_at")
        batch_op.drop_column("last_success_at")

    op.drop_table("table_settings")
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schedules_next_run_at"))
    op.drop_table("schedules")
