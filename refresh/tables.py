"""A connection's tables as the catalog knows them, their refresh history, and dropping caches."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from refresh.catalog import Table, TableSettings, utcnow
from refresh.lookup import load_connection, load_table
from refresh.runtime import Runtime
from refresh.staleness import is_stale
from refresh.versions.outcomes import uncache


def list_tables(rt: Runtime, connection_id: str, stale: bool | None = None) -> list[Table]:
    """The connection's tables with their settings and current versions loaded; only those whose
    ``is_stale`` is ``stale`` when it is given."""
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        rows = list(
            session.scalars(
                select(Table)
                .options(selectinload(Table.settings), selectinload(Table.current))
                .where(Table.connection_id == connection_id)
                .order_by(Table.schema_name, Table.table_name)
            )
        )
    if stale is None:
        return rows
    now = utcnow()
    return [row for row in rows if is_stale(row, now) is stale]


def get_table(rt: Runtime, connection_id: str, schema_name: str, table_name: str) -> Table:
    """The table with its refresh history (``Table.versions``), settings and current version
    loaded."""
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        table = load_table(session, connection_id, schema_name, table_name, with_versions=True)
        set_committed_value(table, "settings", session.get(TableSettings, table.id))
        current = next((v for v in table.versions if v.version == table.current_version), None)
        set_committed_value(table, "current", current)
        return table


def version_histories(
    rt: Runtime,
    connection_id: str,
    schema_name: str | None = None,
    table_name: str | None = None,
) -> list[Table]:
    """The connection's tables (those of ``schema_name``, those named ``table_name``) with their
    refresh history (``Table.versions``, newest first)."""
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        query = select(Table).where(Table.connection_id == connection_id)
        if schema_name is not None:
            query = query.where(Table.schema_name == schema_name)
        if table_name is not None:
            query = query.where(Table.table_name == table_name)
        query = query.options(selectinload(Table.versions))
        return list(session.scalars(query.order_by(Table.schema_name, Table.table_name)))


def drop_table_cache(rt: Runtime, connection_id: str, schema_name: str, table_name: str) -> None:
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        table = load_table(session, connection_id, schema_name, table_name)
        uncache(rt, session, [table.id])


def drop_connection_cache(rt: Runtime, connection_id: str) -> None:
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        ids = session.scalars(select(Table.id).where(Table.connection_id == connection_id)).all()
        uncache(rt, session, ids)
