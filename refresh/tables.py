"""A connection's tables as the catalog knows them, their refresh history, and dropping caches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from refresh.catalog import Table, TableSettings, TableVersion, VersionStatus, utcnow
from refresh.lookup import load_connection, load_table
from refresh.runtime import Runtime
from refresh.staleness import is_stale
from refresh.versions.deletions import schedule_deletions


def list_tables(rt: Runtime, connection_id: str, stale: bool | None = None) -> list[Table]:
    """The connection's tables with their settings loaded; only those whose ``is_stale`` is
    ``stale`` when it is given."""
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        rows = list(
            session.scalars(
                select(Table)
                .options(selectinload(Table.settings))
                .where(Table.connection_id == connection_id)
                .order_by(Table.schema_name, Table.table_name)
            )
        )
    if stale is None:
        return rows
    now = utcnow()
    return [row for row in rows if is_stale(row, now) is stale]


def get_table(rt: Runtime, connection_id: str, schema_name: str, table_name: str) -> Table:
    """The table with its refresh history (``Table.versions``) and settings loaded."""
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        table = load_table(session, connection_id, schema_name, table_name, with_versions=True)
        set_committed_value(table, "settings", session.get(TableSettings, table.id))
        return table


def drop_table_cache(rt: Runtime, connection_id: str, schema_name: str, table_name: str) -> None:
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        table = load_table(session, connection_id, schema_name, table_name)
        _drop_cache(rt, session, [table.id])


def drop_connection_cache(rt: Runtime, connection_id: str) -> None:
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        ids = session.scalars(select(Table.id).where(Table.connection_id == connection_id)).all()
        _drop_cache(rt, session, ids)


def _drop_cache(rt: Runtime, session: Session, table_ids: Sequence[int]) -> None:
    """Uncache the tables; their directories go after the grace period, like after a swap."""
    if not table_ids:
        return
    paths = session.scalars(
        select(TableVersion.path).where(
            TableVersion.table_id.in_(table_ids),
            # A refresh still writing owns its directory: it publishes or removes it itself.
            TableVersion.status.not_in((VersionStatus.WRITING, VersionStatus.DELETED)),
        )
    ).all()
    session.execute(
        update(Table)
        .where(Table.id.in_(table_ids))
        .values(current_version=None, current_path=None, row_count=None, size_bytes=None)
    )
    session.execute(
        update(TableVersion)
        .where(TableVersion.table_id.in_(table_ids), TableVersion.status == VersionStatus.CURRENT)
        .values(status=VersionStatus.SUPERSEDED)
    )
    grace = timedelta(seconds=rt.settings.deletion_grace_seconds)
    schedule_deletions(session, paths, delete_after=utcnow() + grace)
