"""Whether a table's cache is stale: older than the table's ``max_staleness_seconds`` allows.

Fresh means confirmed fresh: a version published, or the source found unchanged, both recorded
as ``tables.last_success_at``. A table with a bound that was never confirmed fresh is stale; a
table without a bound is neither (``None``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from refresh.catalog import Table


def is_stale(table: Table, now: datetime) -> bool | None:
    """``table.settings`` must be loaded (``selectinload(Table.settings)``)."""
    settings = table.settings
    if settings is None or settings.max_staleness_seconds is None:
        return None
    if table.last_success_at is None:
        return True
    return now - table.last_success_at > timedelta(seconds=settings.max_staleness_seconds)
