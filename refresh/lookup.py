"""Catalog lookups every refresh service starts with, raising ``NotFound`` in the API's words."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from refresh.catalog import Connection, Table
from refresh.common.errors import NotFound
from refresh.runtime import Runtime
from refresh.sources import Source, build_source


def load_connection(session: Session, connection_id: str) -> Connection:
    row = session.get(Connection, connection_id)
    if row is None:
        raise NotFound(f"Connection '{connection_id}' not found")
    return row


def load_table(
    session: Session,
    connection_id: str,
    schema_name: str,
    table_name: str,
    with_versions: bool = False,
) -> Table:
    query = select(Table).where(
        Table.connection_id == connection_id,
        Table.schema_name == schema_name,
        Table.table_name == table_name,
    )
    if with_versions:
        query = query.options(selectinload(Table.versions))
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFound(f"table not found: {schema_name}.{table_name} (connection {connection_id})")
    return row


def open_source(rt: Runtime, connection: Connection) -> Source:
    """The source with its password decrypted; the plain password lives only in this object."""
    password = rt.secrets.decrypt(connection.secret) if connection.secret else None
    return build_source(
        connection.source_type,
        connection.config,
        password,
        rt.settings.source_connect_timeout_seconds,
        rt.settings.source_read_streams,
    )
