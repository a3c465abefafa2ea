"""Catalog lookups every refresh service starts with, raising ``NotFound`` in the API's words."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TypeVar

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.orm import Session, selectinload

from refresh.catalog import Connection, Table, TableSettings
from refresh.common.errors import NotFound
from refresh.runtime import Runtime
from refresh.sources import Source, build_source

REMOVED_AT_SOURCE = "it was removed at the source"
GONE_AT_SOURCE = "it no longer exists at the source"


def load_connection(session: Session, connection_id: str) -> Connection:
    row = session.get(Connection, connection_id)
    if row is None:
        raise _connection_not_found(connection_id)
    return row


def check_connection(session: Session, connection_id: str) -> None:
    """``load_connection`` for a caller that only needs to know the connection is there: a
    batch describes its tables many times, and loading the row each time cost more than the
    rest of recording a description."""
    if session.scalar(_CONNECTION_ID, {"connection_id": connection_id}) is None:
        raise _connection_not_found(connection_id)


_CONNECTION_ID = select(Connection.id).where(Connection.id == bindparam("connection_id"))


def _connection_not_found(connection_id: str) -> NotFound:
    return NotFound(f"Connection '{connection_id}' not found")


def table_not_found(
    connection_id: str, schema_name: str, table_name: str, why: str = ""
) -> NotFound:
    """The one wording of a table the request names but the catalog or the source lacks."""
    message = f"table not found: {schema_name}.{table_name} (connection {connection_id})"
    return NotFound(f"{message}; {why}" if why else message)


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
        raise table_not_found(connection_id, schema_name, table_name)
    return row


# Names or ids per query of the lookups below. PostgreSQL parses a list of (schema, table) pairs
# into one nested expression: 10,000 exceed its stack (max_stack_depth), and a batch of a
# connection of tens of thousands of small tables, or ``flask refresh run``, asks for more.
LOOKUP_CHUNK = 1000


def load_tables(
    session: Session, connection_id: str, names: Collection[tuple[str, str]]
) -> dict[tuple[str, str], Table]:
    """The catalog rows of the named tables of a connection that exist, by (schema, table)."""
    found: dict[tuple[str, str], Table] = {}
    for chunk in _chunks(list(names)):
        rows = session.scalars(
            select(Table).where(
                Table.connection_id == connection_id,
                tuple_(Table.schema_name, Table.table_name).in_(chunk),
            )
        )
        found.update({(row.schema_name, row.table_name): row for row in rows})
    return found


def load_settings(session: Session, table_ids: Collection[int]) -> dict[int, TableSettings]:
    """The tables' own settings, by table id (a table without is absent: the defaults)."""
    found: dict[int, TableSettings] = {}
    for chunk in _chunks(list(table_ids)):
        rows = session.scalars(select(TableSettings).where(TableSettings.table_id.in_(chunk)))
        found.update({row.table_id: row for row in rows})
    return found


_T = TypeVar("_T")


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), LOOKUP_CHUNK):
        yield items[start : start + LOOKUP_CHUNK]


def source_opener(rt: Runtime, connection: Connection) -> Callable[[], Source]:
    """Builds sources of the connection, its password decrypted once; the plain password lives
    only in this closure and the sources it builds."""
    password = rt.secrets.decrypt(connection.secret) if connection.secret else None
    source_type, config = connection.source_type, connection.config
    settings = rt.settings

    def open_source() -> Source:
        return build_source(
            source_type,
            config,
            password,
            settings.source_connect_timeout_seconds,
            settings.source_read_streams,
        )

    return open_source


def open_source(rt: Runtime, connection: Connection) -> Source:
    return source_opener(rt, connection)()
