"""Schema refresh: bring the catalog's tables and columns in line with what a source has now."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from refresh.catalog import Connection, Table, utcnow
from refresh.common.errors import NotFound, RefreshError
from refresh.lookup import check_connection, load_connection, open_source
from refresh.prefetch import call_within
from refresh.runtime import Runtime
from refresh.sources import DiscoveredTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogChanges:
    tables_discovered: int
    tables_added: int
    tables_modified: int


@dataclass
class SchemaRefreshResult:
    connections_refreshed: int = 0
    connections_failed: int = 0
    tables_discovered: int = 0
    tables_added: int = 0
    tables_modified: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def add(self, changes: CatalogChanges) -> None:
        self.connections_refreshed += 1
        self.tables_discovered += changes.tables_discovered
        self.tables_added += changes.tables_added
        self.tables_modified += changes.tables_modified


def refresh_connection_schema(rt: Runtime, connection_id: str) -> SchemaRefreshResult:
    """Mode 2 of ``POST /refresh``. Raises ``NotFound``, ``SourceError`` and ``Misconfigured``."""
    result = SchemaRefreshResult()
    result.add(_refresh_one(rt, connection_id))
    return result


def refresh_all_schemas(rt: Runtime) -> SchemaRefreshResult:
    """Mode 1: every connection in turn; one that fails is reported and the rest go on."""
    with rt.catalog.session() as session:
        connection_ids = session.scalars(select(Connection.id).order_by(Connection.id)).all()
    result = SchemaRefreshResult()
    for connection_id in connection_ids:
        try:
            result.add(_refresh_one(rt, connection_id))
        except NotFound:
            continue  # deleted while we were busy with the others
        except RefreshError as error:
            result.connections_failed += 1
            result.errors.append({"connection_id": connection_id, "error": str(error)})
    return result


def _refresh_one(rt: Runtime, connection_id: str) -> CatalogChanges:
    with rt.catalog.session() as session:
        source = open_source(rt, load_connection(session, connection_id))
    with source:
        discovered = call_within(
            source.discover, rt.settings.source_stall_timeout_seconds, source.interrupt
        )
    return record_discovery(rt, connection_id, discovered)


def record_discovery(
    rt: Runtime,
    connection_id: str,
    discovered: Sequence[DiscoveredTable],
    scope: Collection[tuple[str, str]] | None = None,
) -> CatalogChanges:
    """Apply a discovery to the catalog in one transaction.

    ``scope`` limits which catalog tables the discovery speaks for (a single-table refresh
    re-describes one table); a table in scope but absent from ``discovered`` is marked removed.
    Two refreshes racing to add the same new table collide on the unique key; the loser simply
    runs again and finds the table already there.
    """
    try:
        return _record(rt, connection_id, discovered, scope)
    except IntegrityError:
        return _record(rt, connection_id, discovered, scope)


def _record(
    rt: Runtime,
    connection_id: str,
    discovered: Sequence[DiscoveredTable],
    scope: Collection[tuple[str, str]] | None,
) -> CatalogChanges:
    with rt.catalog.session() as session:
        check_connection(session, connection_id)
        return _apply(session, connection_id, discovered, scope, utcnow())


def _apply(
    session: Session,
    connection_id: str,
    discovered: Sequence[DiscoveredTable],
    scope: Collection[tuple[str, str]] | None,
    now: datetime,
) -> CatalogChanges:
    query = select(
        Table.id,
        Table.schema_name,
        Table.table_name,
        Table.schema_hash,
        Table.primary_key,
        Table.removed_at,
    ).where(Table.connection_id == connection_id)
    if scope is not None:
        # A single-table refresh must not read every table of a connection with thousands.
        query = query.where(tuple_(Table.schema_name, Table.table_name).in_(list(scope)))
    rows = session.execute(query)
    existing = {(row.schema_name, row.table_name): row for row in rows}
    added: list[dict[str, object]] = []
    changed: list[dict[str, object]] = []
    modified = 0
    for table in discovered:
        schema_hash = table.schema_hash()
        row = existing.get(table.key)
        if row is None:
            added.append(
                {
                    "connection_id": connection_id,
                    "schema_name": table.schema_name,
                    "table_name": table.table_name,
                    "arrow_schema": {"columns": table.columns_json()},
                    "schema_hash": schema_hash,
                    "primary_key": list(table.primary_key),
                    "discovered_at": now,
                }
            )
            continue
        values: dict[str, object] = {}
        if list(row.primary_key or ()) != list(table.primary_key):
            values["primary_key"] = list(table.primary_key)
        if row.schema_hash != schema_hash:
            modified += 1
            values |= {
                "arrow_schema": {"columns": table.columns_json()},
                "schema_hash": schema_hash,
                "schema_changed_at": now,
            }
        if row.removed_at is not None:
            values["removed_at"] = None
        if values:
            changed.append({"id": row.id, **values})

    present = {t.key for t in discovered}
    gone = [
        {"id": existing[key].id, "removed_at": now}
        for key in existing.keys() - present
        if existing[key].removed_at is None
    ]
    if added:
        session.execute(Table.__table__.insert(), added)
    # Bulk UPDATE by primary key; each group shares its set of columns, as executemany needs.
    for group in _by_columns(changed + gone):
        session.execute(update(Table), group)
    return CatalogChanges(len(discovered), len(added), modified)


def _by_columns(rows: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())
