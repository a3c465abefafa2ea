"""Connection-wide data refresh (mode 4): which tables it covers, and its summary.

The tables are refreshed one job each (``workers/``), each by ``refresh_table``; this module holds
the two pure ends of that fan-out, so the job layer stays a thin wrapper: the list of tables
before, and the seed's result object after, built from however the tables ended.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from refresh.catalog import Table
from refresh.lookup import load_connection
from refresh.runtime import Runtime


@dataclass(frozen=True)
class TableOutcome:
    """How one table of the refresh ended: ``error`` is None when it was refreshed."""

    schema_name: str
    table_name: str
    rows_synced: int = 0
    error: str | None = None
    warnings: tuple[dict[str, str], ...] = ()


@dataclass
class ConnectionRefreshResult:
    connection_id: str
    tables_refreshed: int = 0
    tables_failed: int = 0
    total_rows: int = 0
    duration_ms: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)


def tables_to_refresh(
    rt: Runtime, connection_id: str, include_uncached: bool
) -> list[tuple[str, str]]:
    """The (schema, table) pairs a connection-wide refresh covers, in a stable order.

    Cached tables only unless ``include_uncached``; tables marked removed at the source are left
    out (skipped, not failed). Raises ``NotFound`` for an unknown connection.
    """
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        query = select(Table.schema_name, Table.table_name).where(
            Table.connection_id == connection_id, Table.removed_at.is_(None)
        )
        if not include_uncached:
            query = query.where(Table.current_path.is_not(None))
        rows = session.execute(query.order_by(Table.schema_name, Table.table_name))
        return [(row.schema_name, row.table_name) for row in rows]


def summarize(
    connection_id: str, outcomes: Iterable[TableOutcome], duration_ms: int
) -> ConnectionRefreshResult:
    """The seed's result object; ``errors`` and ``warnings`` sorted by table for stable output."""
    result = ConnectionRefreshResult(connection_id, duration_ms=duration_ms)
    for outcome in sorted(outcomes, key=lambda o: (o.schema_name, o.table_name)):
        if outcome.error is None:
            result.tables_refreshed += 1
            result.total_rows += outcome.rows_synced
            result.warnings.extend(outcome.warnings)
        else:
            result.tables_failed += 1
            result.errors.append(
                {
                    "schema_name": outcome.schema_name,
                    "table_name": outcome.table_name,
                    "error": outcome.error,
                }
            )
    return result
