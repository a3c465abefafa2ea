"""The benchmark's reference tables, created small, and what PostgreSQL itself says they hold.

The tests read the very tables the benchmark measures (``bench/orders.sql``, ``bench/wide.sql``),
so every column type the benchmark covers is also checked value by value.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pyarrow as pa
from psycopg import sql

from refresh.sources.base import DiscoveredTable
from tests.support.paths import ROOT
from tests.support.services import Database, PostgresServer

REFERENCE_TABLES = ("orders", "wide")


def create_reference_table(db: Database, name: str, rows: int) -> None:
    """Run ``bench/{name}.sql`` with ``rows`` rows into ``db`` (by psql: the files use \\if)."""
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"rows={rows}", "-h", db.host,
         "-p", str(db.port), "-U", db.user, "-d", db.database, "-f",
         str(ROOT / "bench" / f"{name}.sql")],
        check=True,
        capture_output=True,
    )  # fmt: skip


def expected_rows(
    postgres: PostgresServer, db: Database, table: DiscoveredTable
) -> list[dict[str, Any]]:
    """The table's rows by PostgreSQL's own conversions, ordered by the first column.

    Columns mapped to strings are PostgreSQL's text output; the others come through psycopg's
    binary protocol, so a ``real`` is the exact float32 value and a decimal keeps its digits.
    """
    items = [
        sql.SQL("{}::text" if pa.types.is_string(column.arrow_type) else "{}").format(
            sql.Identifier(column.name)
        )
        for column in table.columns
    ]
    query = sql.SQL("SELECT {} FROM {} ORDER BY 1").format(
        sql.SQL(", ").join(items), sql.Identifier(table.schema_name, table.table_name)
    )
    names = [column.name for column in table.columns]
    with postgres.connect(db) as conn, conn.cursor(binary=True) as cursor:
        cursor.execute(query)
        return [dict(zip(names, row, strict=True)) for row in cursor]
