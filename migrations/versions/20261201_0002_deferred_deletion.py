"""Deferred deletion: claims on pending deletions, when a version was deleted, deletion_failed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 14:30:19.599865

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("writing", "current", "superseded", "failed", "deleted")
STATUSES_WITH_DELETION_FAILED = (*STATUSES, "deletion_failed")


def _status_check(statuses: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{status}'" for status in statuses) + ")"


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("pending_deletions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_pending_deletions_delete_after"), ["delete_after"], unique=False
        )

    with op.batch_alter_table("table_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_table_versions_path", ["path"], unique=False, postgresql_using="hash"
        )
        batch_op.drop_constraint(op.f("ck_table_versions_status"), type_="check")
        batch_op.create_check_constraint("status", _status_check(STATUSES_WITH_DELETION_FAILED))


def downgrade() -> None:
    """Downgrade schema: a version whose deletion was given up is superseded again."""
    op.execute("UPDATE table_versions SET status = 'superseded' WHERE status = 'deletion_failed'")
    with op.batch_alter_table("table_versions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_table_versions_status"), type_="check")
        batch_op.create_check_constraint("status", _status_check(STATUSES))
        batch_op.drop_index("ix_table_versions_path", postgresql_using="hash")
        batch_op.drop_column("deleted_at")

    with op.batch_alter_table("pending_deletions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_deletions_delete_after"))
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claim_token")
