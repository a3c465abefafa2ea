"""The catalog on both backends: migrations match the models, and the constraints hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError

from refresh.catalog import Base, Catalog, Connection, Table, TableVersion, VersionStatus
from refresh.catalog.migrations import alembic_config
from refresh.catalog.migrations import upgrade as migrate
from tests.support.markers import both_catalogs

pytestmark = both_catalogs


def _table(session, name: str = "orders") -> Table:
    session.add(Connection(id="c1", source_type="sqlite", config={"path": "/x.db"}))
    table = Table(
        connection_id="c1",
        schema_name="main",
        table_name=name,
        arrow_schema={"columns": []},
        schema_hash="0" * 64,
    )
    session.add(table)
    session.flush()
    return table


def test_migrations_match_models(catalog: Catalog) -> None:
    with catalog.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrations_downgrade_and_upgrade_again(catalog: Catalog) -> None:
    config = alembic_config()
    with catalog.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(catalog.engine).get_table_names()) <= {"alembic_version"}
    migrate(catalog)
    assert {"connections", "tables", "table_versions", "pending_deletions"} <= set(
        inspect(catalog.engine).get_table_names()
    )


def test_timestamps_come_back_timezone_aware_utc(catalog: Catalog) -> None:
    written = datetime(2026, 1, 28, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with catalog.session() as session:
        table = _table(session)
        table.last_sync = written
    with catalog.session() as session:
        read = session.scalar(select(Table.last_sync))
    assert read == written
    assert read.tzinfo is not None
    assert read.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused(catalog: Catalog) -> None:
    with catalog.session() as session:
        table = _table(session)
        table.last_sync = datetime(2026, 1, 1)
        with pytest.raises(StatementError, match="timezone-aware"):
            session.flush()
        session.rollback()


def test_one_writing_version_per_table(catalog: Catalog) -> None:
    now = datetime.now(UTC)
    with catalog.session() as session:
        table_id = _table(session).id
        for status in ("current", "superseded", "failed", "writing"):
            session.add(TableVersion(table_id=table_id, version=status, path=status, status=status))
    with pytest.raises(IntegrityError), catalog.session() as session:
        session.add(
            TableVersion(
                table_id=table_id, version="v2", path="p2", status="writing", started_at=now
            )
        )


def test_version_status_is_constrained(catalog: Catalog) -> None:
    with catalog.session() as session:
        table_id = _table(session).id
    with pytest.raises(IntegrityError), catalog.session() as session:
        session.add(TableVersion(table_id=table_id, version="v", path="p", status="bogus"))


def test_the_migrations_accept_every_version_status(catalog: Catalog) -> None:
    with catalog.session() as session:
        table_id = _table(session).id
        for status in VersionStatus:
            if status is not VersionStatus.WRITING:  # one writer per table; tested above
                session.add(
                    TableVersion(table_id=table_id, version=status, path="p", status=status)
                )
    with catalog.session() as session:
        stored = set(session.scalars(select(TableVersion.status)))
    assert stored == set(VersionStatus) - {VersionStatus.WRITING}


def test_deleting_a_connection_removes_its_tables_and_history(catalog: Catalog) -> None:
    with catalog.session() as session:
        table_id = _table(session).id
        session.add(TableVersion(table_id=table_id, version="v", path="p", status="current"))
    with catalog.session() as session:
        session.delete(session.get(Connection, "c1"))
    with catalog.session() as session:
        assert session.scalar(select(func.count()).select_from(Table)) == 0
        assert session.scalar(select(func.count()).select_from(TableVersion)) == 0
