"""Incremental refresh: a table's refresh mode, cursor, primary key, overlap and full-refresh
interval; each version's mode and watermark; the primary key discovery found at the source.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 20:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("table_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("refresh_mode", sa.String(length=8), server_default="full", nullable=False)
        )
        batch_op.add_column(sa.Column("cursor_column", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("primary_key", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("cursor_overlap", sa.Float(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("full_refresh_every_seconds", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            "refresh_mode", "refresh_mode IN ('full', 'append', 'merge')"
        )
        batch_op.create_check_constraint("cursor_overlap", "cursor_overlap >= 0")
        batch_op.create_check_constraint(
            "full_refresh_every_seconds",
            "full_refresh_every_seconds IS NULL OR full_refresh_every_seconds >= 1",
        )

    with op.batch_alter_table("table_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mode", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("watermark", sa.Text(), nullable=True))

    with op.batch_alter_table("tables", schema=None) as batch_op:
        batch_op.add_column(sa.Column("primary_key", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema: every table back to full refreshes."""
    with op.batch_alter_table("tables", schema=None) as batch_op:
        batch_op.drop_column("primary_key")

    with op.batch_alter_table("table_versions", schema=None) as batch_op:
        batch_op.drop_column("watermark")
        batch_op.drop_column("mode")

    with op.batch_alter_table("table_settings", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_table_settings_full_refresh_every_seconds"), "check")
        batch_op.drop_constraint(op.f("ck_table_settings_cursor_overlap"), "check")
        batch_op.drop_constraint(op.f("ck_table_settings_refresh_mode"), "check")
        batch_op.drop_column("full_refresh_every_seconds")
        batch_op.drop_column("cursor_overlap")
        batch_op.drop_column("primary_key")
        batch_op.drop_column("cursor_column")
        batch_op.drop_column("refresh_mode")
