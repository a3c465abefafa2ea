"""Registered connections: create, list, show and delete them."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from refresh.catalog import Connection, Table, TableVersion
from refresh.common.errors import Conflict
from refresh.lookup import load_connection
from refresh.runtime import Runtime
from refresh.schema_refresh import refresh_connection_schema
from refresh.sources import SourceError, source_class
from refresh.versions.deletions import retire


class DiscoveryStatus(enum.StrEnum):
    """How the discovery of a newly registered connection's tables went."""

    SUCCESS = "success"
    SKIPPED = "skipped"  # ``skip_discovery`` asked for none
    FAILED = "failed"  # the source refused (``discovery_error``); the connection stays registered


@dataclass(frozen=True)
class Registration:
    connection: Connection
    tables_discovered: int
    discovery_status: DiscoveryStatus
    discovery_error: str | None = None


@dataclass(frozen=True)
class ConnectionDetail:
    connection: Connection
    table_count: int
    synced_table_count: int


def register_connection(
    rt: Runtime,
    name: str,
    source_type: str,
    config: Mapping[str, Any],
    skip_discovery: bool = False,
) -> Registration:
    """Store the connection, then discover its tables unless asked not to.

    ``config`` is already validated by the source's ``config_schema``. The connection stays
    registered when discovery fails (``SourceError``), so the user can fix the source and refresh
    later; any other failure removes it again, so a retry is not told that the name is taken.
    """
    stored_config, password = source_class(source_type).split_secret(config)
    row = Connection(
        id=name,
        source_type=source_type,
        config=stored_config,
        secret=rt.secrets.encrypt(password) if password else None,
    )
    try:
        with rt.catalog.session() as session:
            session.add(row)
    except IntegrityError:
        raise Conflict(f"Connection '{name}' already exists") from None
    if skip_discovery:
        return Registration(row, 0, DiscoveryStatus.SKIPPED)
    try:
        result = refresh_connection_schema(rt, name)
    except SourceError as error:
        return Registration(row, 0, DiscoveryStatus.FAILED, str(error))
    except BaseException:
        with rt.catalog.session() as session:
            session.delete(load_connection(session, name))  # its tables go by cascade
        raise
    return Registration(row, result.tables_discovered, DiscoveryStatus.SUCCESS)


def list_connections(rt: Runtime) -> list[Connection]:
    with rt.catalog.session() as session:
        return list(session.scalars(select(Connection).order_by(Connection.id)))


def get_connection(rt: Runtime, connection_id: str) -> ConnectionDetail:
    with rt.catalog.session() as session:
        row = load_connection(session, connection_id)
        present = Table.removed_at.is_(None)
        total, synced = session.execute(
            select(
                func.count(Table.id),
                func.count(Table.current_path),
            ).where(Table.connection_id == connection_id, present)
        ).one()
    return ConnectionDetail(row, total, synced)


def delete_connection(rt: Runtime, connection_id: str) -> None:
    """Drop the connection's catalog rows; its Parquet goes after the usual grace period.

    Readers that resolved a path just before the delete keep a readable copy for the grace period,
    exactly as after a swap.
    """
    with rt.catalog.session() as session:
        row = load_connection(session, connection_id)
        paths = session.scalars(
            select(TableVersion.path)
            .join(Table, Table.id == TableVersion.table_id)
            .where(Table.connection_id == connection_id)
        ).all()
        retire(rt, session, paths)
        session.delete(row)
