"""Deferred deletion of version directories that are no longer current.

Readers may still hold an old ``current_path`` after a swap, so a directory is only queued here
and removed once its grace period has passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from refresh.catalog import PendingDeletion, utcnow

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def schedule_deletions(session: Session, paths: Iterable[str], delete_after: datetime) -> None:
    """Queue each path once: a path already queued keeps its row and its retry count."""
    now = utcnow()
    rows = [
        {"path": path, "delete_after": delete_after, "retry_count": 0, "created_at": now}
        for path in dict.fromkeys(paths)
    ]
    if not rows:
        return
    insert = _INSERT[session.get_bind().dialect.name]
    session.execute(
        insert(PendingDeletion).on_conflict_do_nothing(index_elements=["path"]),
        rows,
    )
