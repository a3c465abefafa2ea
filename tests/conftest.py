"""Fixtures shared by the whole suite: real services, per-run databases, the app and its client."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from config import Settings, load_settings
from tests.support.backends import Backend, make_backend
from tests.support.seaweedfs import SeaweedFS, run_seaweedfs
from tests.support.services import Database, MariaDBServer, PostgresServer
from tests.support.source_kinds import SourceKind, make_kind
from tests.support.workers import RedisDatabase

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient

    from refresh.runtime import Runtime

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


@pytest.fixture
def kind(request: pytest.FixtureRequest, tmp_path: Path) -> SourceKind:
    """A source and a fresh database of its engine; parametrize with the kind's name."""
    return make_kind(request.param, tmp_path, request)


@pytest.fixture
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The catalog database: SQLite by default; parametrize with "postgres" for PostgreSQL."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        (tmp_path / "catalog").mkdir()
        return f"sqlite:///{tmp_path}/catalog/catalog.db"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.url(server.create_database(f"cat{next(_counter)}"))


@pytest.fixture
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The service's cache storage: a directory by default; parametrize with "s3" for S3."""
    return make_backend(getattr(request, "param", "filesystem"), tmp_path, request)


@pytest.fixture
def environ(catalog_url: str, cache: Backend, tmp_path: Path) -> dict[str, str]:
    """The environment the service under test is configured from; tests may add to it.

    Tests create their SQLite and DuckDB sources in tmp_path, so file sources are confined there.
    """
    return {
        "DATABASE_URL": catalog_url,
        "SECRET_KEY": "test-secret-key",
        "FILE_SOURCES_DIR": str(tmp_path),
        **cache.environ(),
    }


@pytest.fixture
def settings(environ: dict[str, str]) -> Settings:
    return load_settings(environ)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    # Imported here so that suites of single modules (sources, storage) load without the app.
    from app import create_app
    from refresh.api.context import EXTENSION, JOBS
    from refresh.catalog import Catalog
    from refresh.catalog.migrations import upgrade as migrate

    # Migrated first, as bin/run does: the app's scheduler starts its jobs at once.
    catalog = Catalog(settings.database_url)
    migrate(catalog)
    catalog.dispose()
    app = create_app(settings)
    runtime = app.extensions[EXTENSION]
    yield app
    app.extensions[JOBS].close()
    runtime.catalog.dispose()


@pytest.fixture
def rt(app: Flask) -> Runtime:
    from refresh.api.context import EXTENSION

    return app.extensions[EXTENSION]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def redis_database() -> Iterator[RedisDatabase]:
    """A Redis database of this test run's own (see tests/support/workers.py)."""
    database = RedisDatabase()
    yield database
    database.release()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedFS]:
    """SeaweedFS started for this run (S3 on 127.0.0.1:8333), its keys in boto3's environment."""
    with run_seaweedfs() as server:
        yield server
