"""Fixtures shared by the whole suite: real services, per-run databases, the app and its client."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.support.services import Database, MariaDBServer, PostgresServer

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    server = MariaDBServer()
    yield server
    server.drop_all()


@pytest.fixture
def pg_source(postgres: PostgresServer) -> Database:
    """A fresh, empty PostgreSQL database for one test to fill with source tables."""
    return postgres.create_database(f"src{next(_counter)}")


@pytest.fixture
def mysql_source(mariadb: MariaDBServer) -> Database:
    """A fresh, empty MariaDB database for one test to fill with source tables."""
    return mariadb.create_database(f"src{next(_counter)}")
