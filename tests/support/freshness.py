"""Set-ups of the freshness tests: a SQLite source with tables, and catalog columns set directly
where the refresh flow does not write them yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import update

from refresh.catalog import Table
from refresh.runtime import Runtime
from tests.support.api import register
from tests.support.file_sources import make_file_source


def sqlite_source(
    client: FlaskClient, path: Path, name: str = "src", tables: tuple[str, ...] = ("t",)
) -> str:
    """A SQLite file (inside FILE_SOURCES_DIR) holding ``tables`` of three rows each, registered
    as connection ``name``."""
    for table in tables:
        make_file_source(
            "sqlite",
            path,
            f'CREATE TABLE "{table}" (id INTEGER)',
            rows=(f'INSERT INTO "{table}" VALUES (?)', [(1,), (2,), (3,)]),
        )
    register(client, name, "sqlite", {"path": str(path)})
    return name


def set_table(rt: Runtime, connection_id: str, table_name: str, **values: Any) -> None:
    """Write catalog columns of table ``main.{table_name}`` as the refresh flow would."""
    with rt.catalog.session() as session:
        session.execute(
            update(Table)
            .where(
                Table.connection_id == connection_id,
                Table.schema_name == "main",
                Table.table_name == table_name,
            )
            .values(**values)
        )
