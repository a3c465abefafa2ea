"""The real services the integration tests use, each run in databases of its own.

Every test run creates its own PostgreSQL and MariaDB databases (named after the run) and drops
them at the end, so two runs on one machine never see each other's tables.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pymysql
import pytest

RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
MYSQL_HOST, MYSQL_PORT, MYSQL_USER = "127.0.0.1", 3306, "root"

HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "MariaDB": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
}


def unavailable(service: str, error: Exception) -> None:
    pytest.fail(
        f"{service} is not reachable on 127.0.0.1 ({error}); start it with: "
        f"{HOW_TO_START[service]}  (bash .ci/run starts every service the tests need)",
        pytrace=False,
    )


@dataclass(frozen=True)
class Database:
    """A database created for this test run, with what a connection config needs."""

    host: str
    port: int
    user: str
    database: str

    def config(self, **extra: object) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "database": self.database,
            **extra,
        }


class PostgresServer:
    def __init__(self) -> None:
        try:
            self.admin(dbname="postgres").close()
        except psycopg.OperationalError as error:
            unavailable("PostgreSQL", error)
        self.created: list[str] = []

    def admin(self, dbname: str) -> psycopg.Connection:
        return psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True
        )

    def create_database(self, purpose: str) -> Database:
        name = f"rs_{RUN_ID}_{purpose}"
        with self.admin("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return Database(PG_HOST, PG_PORT, PG_USER, name)

    def url(self, db: Database, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{db.user}@{db.host}:{db.port}/{db.database}"

    @contextmanager
    def connect(self, db: Database) -> Iterator[psycopg.Connection]:
        with self.admin(db.database) as conn:
            yield conn

    def drop_all(self) -> None:
        with self.admin("postgres") as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class MariaDBServer:
    def __init__(self) -> None:
        try:
            self.admin().close()
        except pymysql.MySQLError as error:
            unavailable("MariaDB", error)
        self.created: list[str] = []

    def admin(self, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user=MYSQL_USER,
            password="",
            database=database,
            autocommit=True,
            charset="utf8mb4",
        )

    def create_database(self, purpose: str) -> Database:
        name = f"rs_{RUN_ID}_{purpose}"
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        self.created.append(name)
        return Database(MYSQL_HOST, MYSQL_PORT, MYSQL_USER, name)

    @contextmanager
    def connect(self, db: Database) -> Iterator[pymysql.Connection]:
        conn = self.admin(db.database)
        try:
            yield conn
        finally:
            conn.close()

    def drop_all(self) -> None:
        with self.admin() as conn, conn.cursor() as cur:
            for name in self.created:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
