"""One interface over the sources whose reads share behaviour, for the parametrized read suite.

Each kind makes tables in a fresh database of its engine (PostgreSQL or MariaDB database,
SQLite or DuckDB file) and builds the source reading them; tests written against
``SourceKind`` run once per source instead of in near-identical copies.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

import pytest

from refresh.sources import Source, build_source
from tests.support.file_sources import make_file_source, read_file_source
from tests.support.services import Database, MariaDBServer, PostgresServer

CONNECT_TIMEOUT = 5
_POLL_SECONDS = 0.01


def wait_until_reading(source: Source, timeout: float = 10) -> None:
    """Poll until ``source`` has a read registered for interrupts (it is in the driver)."""
    deadline = time.monotonic() + timeout
    # The sources of this suite keep their interrupt state in ``_stopper`` (a ReadStopper).
    while not source._stopper.reading:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the read never started"
        time.sleep(_POLL_SECONDS)


class SourceKind(ABC):
    schema: str
    # Empties a table (formatted with its quoted name): SQLite has no TRUNCATE.
    truncate = "TRUNCATE TABLE {}"
    # A timestamp without time zone, to microseconds (MariaDB's TIMESTAMP updates itself).
    timestamp_type = "timestamp"

    @abstractmethod
    def quote(self, name: str) -> str: ...

    @abstractmethod
    def execute(self, *statements: str, rows: tuple[str, list[tuple]] | None = None) -> None:
        """Run DDL, then insert ``rows`` (statement with ``?`` placeholders, parameter tuples)."""

    @abstractmethod
    def fetch(self, sql: str) -> list[tuple]:
        """The rows of a query, as the engine's driver gives them."""

    @abstractmethod
    def source(self) -> Source: ...

    @abstractmethod
    def registration(self) -> tuple[str, dict[str, object]]:
        """The ``source_type`` and ``config`` that register this source through the API."""

    @abstractmethod
    def integers(self, table: str, count: int) -> None:
        """Create ``table`` with one integer column ``id`` holding 1..count."""

    @abstractmethod
    def slow_view(self, view: str) -> None:
        """Create ``view``, whose first batch takes hours to compute (until interrupted)."""


class MySQLKind(SourceKind):
    timestamp_type = "datetime(6)"

    def __init__(self, mariadb: MariaDBServer, db: Database) -> None:
        self.mariadb, self.db, self.schema = mariadb, db, db.database

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def execute(self, *statements: str, rows: tuple[str, list[tuple]] | None = None) -> None:
        with self.mariadb.connect(self.db) as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            if rows:
                cur.executemany(rows[0].replace("?", "%s"), rows[1])

    def fetch(self, sql: str) -> list[tuple]:
        with self.mariadb.connect(self.db) as conn, conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def source(self) -> Source:
        return build_source("mysql", self.db.config(), None, CONNECT_TIMEOUT)

    def registration(self) -> tuple[str, dict[str, object]]:
        return "mysql", self.db.config(password="")

    def integers(self, table: str, count: int) -> None:
        self.execute(f"CREATE TABLE {self.quote(table)} AS SELECT seq AS id FROM seq_1_to_{count}")

    def slow_view(self, view: str) -> None:
        self.execute(
            f"CREATE VIEW {self.quote(view)} AS SELECT seq, SLEEP(0.1) AS s FROM seq_1_to_1000000"
        )


class PostgresKind(SourceKind):
    """Read by parallel streams where a table is large enough (see test_postgres_streams.py)."""

    schema = "public"

    def __init__(self, postgres: PostgresServer, db: Database) -> None:
        self.postgres, self.db = postgres, db

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def execute(self, *statements: str, rows: tuple[str, list[tuple]] | None = None) -> None:
        with self.postgres.connect(self.db) as conn:
            for statement in statements:
                conn.execute(statement)
            if rows:
                conn.cursor().executemany(rows[0].replace("?", "%s"), rows[1])

    def fetch(self, sql: str) -> list[tuple]:
        with self.postgres.connect(self.db) as conn:
            return list(conn.execute(sql).fetchall())

    def source(self) -> Source:
        return build_source("postgres", self.db.config(), None, CONNECT_TIMEOUT, read_streams=4)

    def registration(self) -> tuple[str, dict[str, object]]:
        return "postgres", self.db.config()

    def integers(self, table: str, count: int) -> None:
        self.execute(
            f"CREATE TABLE {self.quote(table)} AS SELECT g AS id FROM generate_series(1, {count}) g"
        )

    def slow_view(self, view: str) -> None:
        self.execute(f"CREATE VIEW {self.quote(view)} AS SELECT 1 AS x FROM pg_sleep(36000)")


class FileKind(SourceKind):
    """A source reading a database file (``source_type`` names its engine)."""

    schema = "main"
    source_type: str

    def __init__(self, path: Path) -> None:
        self.path = path

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def execute(self, *statements: str, rows: tuple[str, list[tuple]] | None = None) -> None:
        make_file_source(self.source_type, self.path, *statements, rows=rows)

    def fetch(self, sql: str) -> list[tuple]:
        return read_file_source(self.source_type, self.path, sql)

    def source(self) -> Source:
        return build_source(*self.registration(), None, CONNECT_TIMEOUT)

    def registration(self) -> tuple[str, dict[str, object]]:
        return self.source_type, {"path": str(self.path)}


class SQLiteKind(FileKind):
    source_type = "sqlite"
    truncate = "DELETE FROM {}"

    def integers(self, table: str, count: int) -> None:
        self.execute(
            f"CREATE TABLE {self.quote(table)} (id INTEGER)",
            f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count}) "
            f"INSERT INTO {self.quote(table)} SELECT n FROM s",
        )

    def slow_view(self, view: str) -> None:
        self.execute(
            f"CREATE VIEW {self.quote(view)} AS WITH RECURSIVE s(n) AS "
            "(SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 100000000000) "
            "SELECT n FROM s WHERE n < 0"
        )


class SQLAlchemySQLiteKind(SQLiteKind):
    """The generic source on a SQLite URL: the same file, read through SQLAlchemy."""

    def source(self) -> Source:
        return build_source("sqlalchemy", {"url": f"sqlite:///{self.path}"}, None, CONNECT_TIMEOUT)

    def registration(self) -> tuple[str, dict[str, object]]:
        return "sqlalchemy", {"url": f"sqlite:///{self.path}"}


class DuckDBKind(FileKind):
    source_type = "duckdb"

    def integers(self, table: str, count: int) -> None:
        self.execute(
            f"CREATE TABLE {self.quote(table)} AS SELECT range + 1 AS id FROM range({count})"
        )

    def slow_view(self, view: str) -> None:
        self.execute(
            f"CREATE VIEW {self.quote(view)} AS "
            "SELECT range AS n FROM range(1000000000000) WHERE hash(range) = 0"
        )


KINDS = ("postgres", "mysql", "sqlite", "duckdb", "sqlalchemy")


def make_kind(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> SourceKind:
    if name == "postgres":
        return PostgresKind(
            request.getfixturevalue("postgres"), request.getfixturevalue("pg_source")
        )
    if name == "mysql":
        return MySQLKind(
            request.getfixturevalue("mariadb"), request.getfixturevalue("mysql_source")
        )
    if name == "duckdb":
        return DuckDBKind(tmp_path / "db.duckdb")
    if name == "sqlalchemy":
        return SQLAlchemySQLiteKind(tmp_path / "db.sqlite")
    return SQLiteKind(tmp_path / "db.sqlite")
