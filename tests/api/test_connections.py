"""``/connections`` against real PostgreSQL, MariaDB, SQLite and DuckDB sources."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.support.api import assert_error, post_connection
from tests.support.file_sources import FILE_SOURCE_TYPES, make_file_source
from tests.support.markers import both_catalogs
from tests.support.services import Database, MariaDBServer, PostgresServer

THREE_TABLES = [
    "CREATE TABLE customers (id integer PRIMARY KEY, name text)",
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer, amount numeric(12,2))",
    "CREATE TABLE notes (id integer, body text)",
]


@both_catalogs
def test_register_postgres_discovers_its_tables(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        for statement in THREE_TABLES:
            conn.execute(statement)
    response = post_connection(client, "my_postgres", "postgres", pg_source.config(password="pw"))
    assert response.status_code == 201, response.get_json()
    assert response.get_json() == {
        "id": "my_postgres",
        "name": "my_postgres",
        "source_type": "postgres",
        "tables_discovered": 3,
        "discovery_status": "success",
    }
    assert response.headers["Location"].endswith("/connections/my_postgres")

    shown = client.get("/connections/my_postgres").get_json()
    assert shown == {
        "id": "my_postgres",
        "name": "my_postgres",
        "source_type": "postgres",
        "config": {**pg_source.config()},
        "table_count": 3,
        "synced_table_count": 0,
    }
    assert client.get("/connections").get_json() == {
        "connections": [{"id": "my_postgres", "name": "my_postgres", "source_type": "postgres"}]
    }
    tables = client.get("/connections/my_postgres/tables").get_json()["tables"]
    assert [(t["schema_name"], t["table_name"]) for t in tables] == [
        ("public", "customers"),
        ("public", "notes"),
        ("public", "orders"),
    ]


def test_register_mariadb(
    client: FlaskClient, mariadb: MariaDBServer, mysql_source: Database
) -> None:
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        for statement in THREE_TABLES:
            cur.execute(statement.replace(" text", " varchar(100)"))
    response = post_connection(client, "maria", "mysql", mysql_source.config(password=""))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["tables_discovered"] == 3


def test_register_sqlite_and_duckdb_files(client: FlaskClient, tmp_path: Path) -> None:
    for source_type in FILE_SOURCE_TYPES:
        path = make_file_source(source_type, tmp_path / f"local.{source_type}", *THREE_TABLES)
        response = post_connection(client, source_type, source_type, {"path": str(path)})
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["tables_discovered"] == 3


def test_skip_discovery_registers_without_touching_the_source(client: FlaskClient) -> None:
    config = {"host": "127.0.0.1", "port": 1, "user": "u", "database": "d", "password": "pw"}
    response = post_connection(client, "later", "postgres", config, skip_discovery=True)
    assert response.status_code == 201
    assert response.get_json()["discovery_status"] == "skipped"
    assert response.get_json()["tables_discovered"] == 0


def test_failed_discovery_still_registers_the_connection(client: FlaskClient) -> None:
    config = {"host": "127.0.0.1", "port": 1, "user": "u", "database": "d", "password": "pw"}
    response = post_connection(client, "broken", "postgres", config)
    assert response.status_code == 201
    body = response.get_json()
    assert body["discovery_status"] == "failed"
    assert body["discovery_error"]
    assert client.get("/connections/broken").status_code == 200


@pytest.mark.parametrize(("source_type", "port"), [("postgres", 5432), ("mysql", 3306)])
def test_a_host_the_driver_cannot_encode_fails_discovery_not_the_request(
    client: FlaskClient, source_type: str, port: int
) -> None:
    host = f"{'a' * 64}.example.com"  # a DNS label is at most 63 characters
    config = {"host": host, "port": port, "user": "u", "database": "d"}

    response = post_connection(client, "long_label", source_type, config)

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["discovery_status"] == "failed"
    assert "label" in response.get_json()["discovery_error"]
    refreshed = client.post("/refresh", json={"connection_id": "long_label"})
    assert "label" in assert_error(refreshed, 502, "SOURCE_UNAVAILABLE")


def test_a_crash_during_discovery_leaves_nothing_registered(
    client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: object) -> None:
        raise RuntimeError("a bug in discovery")

    body = ("crashy", "sqlite", {"path": str(tmp_path / "x.db")})
    with monkeypatch.context() as patched:
        patched.setattr("refresh.connections.refresh_connection_schema", crash)
        assert_error(post_connection(client, *body), 500, "INTERNAL_SERVER_ERROR")

    assert_error(client.get("/connections/crashy"), 404, "NOT_FOUND")
    assert post_connection(client, *body, skip_discovery=True).status_code == 201


def test_duplicate_name_is_409(client: FlaskClient, tmp_path: Path) -> None:
    config = {"path": str(tmp_path / "x.db")}
    assert post_connection(client, "dup", "sqlite", config, skip_discovery=True).status_code == 201
    response = post_connection(client, "dup", "sqlite", config, skip_discovery=True)
    assert_error(response, 409, "CONFLICT", "Connection 'dup' already exists")


PG = {"host": "127.0.0.1", "port": 5432, "user": "u", "database": "d"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source_type": "sqlite", "config": {"path": "/x"}}, "name"),
        ({"name": "bad name!", "source_type": "sqlite", "config": {"path": "/x"}}, "name"),
        ({"name": "_under", "source_type": "sqlite", "config": {"path": "/x"}}, "name"),
        ({"name": "x" * 65, "source_type": "sqlite", "config": {"path": "/x"}}, "name"),
        ({"name": "nl\n", "source_type": "sqlite", "config": {"path": "/x"}}, "name"),
        ({"name": 5, "source_type": "sqlite", "config": {"path": "/x"}}, "name"),
        ({"name": "c", "source_type": "oracle", "config": {}}, "source_type"),
        ({"name": "c", "config": {"path": "/x"}}, "source_type"),
        ({"name": "c", "source_type": "sqlite"}, "config"),
        ({"name": "c", "source_type": "sqlite", "config": []}, "config"),
        ({"name": "c", "source_type": "sqlite", "config": {}}, "config.path"),
        ({"name": "c", "source_type": "sqlite", "config": {"path": 3}}, "config.path"),
        ({"name": "c", "source_type": "postgres", "config": {**PG, "port": "5432"}}, "config.port"),
        ({"name": "c", "source_type": "postgres", "config": {**PG, "port": True}}, "config.port"),
        ({"name": "c", "source_type": "postgres", "config": {**PG, "hots": "x"}}, "config.hots"),
        (
            {"name": "c", "source_type": "postgres", "config": {**PG, "schemas": "public"}},
            "config.schemas",
        ),
        ({"name": "c", "source_type": "sqlalchemy", "config": {"url": "not a url"}}, "config.url"),
        (
            {
                "name": "c",
                "source_type": "sqlite",
                "config": {"path": "/x"},
                "skip_discovery": "no",
            },
            "skip_discovery",
        ),
        ({"name": "c", "source_type": "sqlite", "config": {"path": "/x"}, "extra": 1}, "extra"),
    ],
)
def test_invalid_bodies_name_the_field_and_register_nothing(
    client: FlaskClient, body: dict, field: str
) -> None:
    message = assert_error(client.post("/connections", json=body), 400, "BAD_REQUEST")
    assert message.startswith(f"{field}: ") or f"; {field}: " in message, message
    assert client.get("/connections").get_json() == {"connections": []}


def test_unknown_connection_is_404(client: FlaskClient) -> None:
    for response in (
        client.get("/connections/ghost"),
        client.delete("/connections/ghost"),
        client.get("/connections/ghost/tables"),
    ):
        assert_error(response, 404, "NOT_FOUND", "Connection 'ghost' not found")


@both_catalogs
def test_delete_connection_removes_it_and_its_tables(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute(THREE_TABLES[0])
    assert post_connection(client, "gone", "postgres", pg_source.config()).status_code == 201
    assert client.delete("/connections/gone").status_code == 204
    assert_error(client.get("/connections/gone"), 404, "NOT_FOUND")
    assert post_connection(client, "gone", "postgres", pg_source.config()).status_code == 201


def test_password_never_leaves_the_service(
    client: FlaskClient,
    mariadb: MariaDBServer,
    mysql_source: Database,
    settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = "Pa55-w0rd-unique-7f3k"
    user = f"rs_{mysql_source.database[-12:]}"
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT SELECT ON `{mysql_source.database}`.* TO '{user}'@'%'")
        cur.execute("CREATE TABLE t (id int)")
    try:
        with caplog.at_level(logging.DEBUG):
            good = post_connection(
                client, "ok", "mysql", {**mysql_source.config(password=password), "user": user}
            )
            wrong = post_connection(
                client,
                "bad",
                "mysql",
                {**mysql_source.config(password=password + "x"), "user": user},
            )
            responses = [
                good,
                wrong,
                client.get("/connections/ok"),
                client.get("/connections"),
                client.post("/refresh", json={"connection_id": "bad"}),
                client.post("/refresh", json={}),
                client.get("/connections/ok/tables"),
            ]
    finally:
        with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")
    assert good.get_json()["tables_discovered"] == 1
    assert wrong.get_json()["discovery_status"] == "failed"
    assert "Access denied" in wrong.get_json()["discovery_error"]
    for response in responses:
        assert password not in response.get_data(as_text=True)
    assert password not in caplog.text
    catalog_file = Path(settings.database_url.removeprefix("sqlite:///"))
    for path in catalog_file.parent.glob("catalog.db*"):
        assert password.encode() not in path.read_bytes()
