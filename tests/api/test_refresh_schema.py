"""Schema refresh through ``POST /refresh`` (modes 1 and 2) against real sources."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from tests.support.api import assert_error, post_connection, register
from tests.support.markers import both_catalogs
from tests.support.services import Database, MariaDBServer, PostgresServer


def tables(client: FlaskClient, connection_id: str) -> dict[str, dict]:
    listed = client.get(f"/connections/{connection_id}/tables").get_json()["tables"]
    return {t["table_name"]: t for t in listed}


def test_all_connections_report_the_broken_one_and_refresh_the_rest(
    client: FlaskClient,
    postgres: PostgresServer,
    pg_source: Database,
    mariadb: MariaDBServer,
    mysql_source: Database,
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE a (id int)")
        conn.execute("CREATE TABLE b (id int)")
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE c (id int)")
    register(client, "pg", "postgres", pg_source.config())
    register(client, "maria", "mysql", mysql_source.config(password=""))
    broken = {"host": "127.0.0.1", "port": 1, "user": "u", "database": "d", "password": "pw"}
    post_connection(client, "broken", "postgres", broken, skip_discovery=True)
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE d (id int)")

    response = client.post("/refresh", json={})
    assert response.status_code == 200
    body = response.get_json()
    errors = body.pop("errors")
    assert body == {
        "connections_refreshed": 2,
        "connections_failed": 1,
        "tables_discovered": 4,
        "tables_added": 1,
        "tables_modified": 0,
    }
    assert [e["connection_id"] for e in errors] == ["broken"]
    assert errors[0]["error"]
    assert "pw" not in errors[0]["error"].split()
    assert set(tables(client, "pg")) == {"a", "b", "d"}


def test_errors_are_omitted_when_nothing_failed(client: FlaskClient) -> None:
    response = client.post("/refresh", json={})
    assert response.get_json() == {
        "connections_refreshed": 0,
        "connections_failed": 0,
        "tables_discovered": 0,
        "tables_added": 0,
        "tables_modified": 0,
    }


@both_catalogs
def test_one_connection_tracks_additions_changes_and_removals(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        for name in ("added", "retyped", "renamed", "dropped_col", "nullable", "gone", "same"):
            conn.execute(f"CREATE TABLE {name} (id int NOT NULL, v int)")
    register(client, "pg", "postgres", pg_source.config())

    def refresh() -> dict:
        response = client.post("/refresh", json={"connection_id": "pg"})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    assert refresh() == {
        "connections_refreshed": 1,
        "connections_failed": 0,
        "tables_discovered": 7,
        "tables_added": 0,
        "tables_modified": 0,
    }
    with postgres.connect(pg_source) as conn:
        conn.execute("ALTER TABLE added ADD COLUMN extra text")
        conn.execute("ALTER TABLE retyped ALTER COLUMN v TYPE bigint")
        conn.execute("ALTER TABLE renamed RENAME COLUMN v TO w")
        conn.execute("ALTER TABLE dropped_col DROP COLUMN v")
        conn.execute("ALTER TABLE nullable ALTER COLUMN id DROP NOT NULL")
        conn.execute("DROP TABLE gone")
        conn.execute("CREATE TABLE fresh (id int)")
    assert refresh() == {
        "connections_refreshed": 1,
        "connections_failed": 0,
        "tables_discovered": 7,
        "tables_added": 1,
        "tables_modified": 5,
    }
    listed = tables(client, "pg")
    assert listed["gone"]["removed"] is True
    assert [t for t, v in listed.items() if v["removed"]] == ["gone"]
    assert [c["data_type"] for c in listed["retyped"]["columns"]] == ["int32", "int64"]
    assert [c["name"] for c in listed["renamed"]["columns"]] == ["id", "w"]
    assert listed["nullable"]["columns"][0]["nullable"] is True
    assert listed["added"]["schema_changed_at"] is not None
    assert listed["same"]["schema_changed_at"] is None

    assert refresh()["tables_modified"] == 0  # nothing changed since
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE gone (id int NOT NULL, v int)")
    assert refresh()["tables_added"] == 0  # it comes back as the same catalog row
    assert tables(client, "pg")["gone"]["removed"] is False


def test_schema_refresh_of_mariadb_sees_changes(
    client: FlaskClient, mariadb: MariaDBServer, mysql_source: Database
) -> None:
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id int NOT NULL, v int)")
    register(client, "maria", "mysql", mysql_source.config(password=""))
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE t MODIFY v bigint")
        cur.execute("CREATE TABLE u (id int)")
    body = client.post("/refresh", json={"connection_id": "maria"}).get_json()
    assert (body["tables_added"], body["tables_modified"], body["tables_discovered"]) == (1, 1, 2)


def test_unreachable_source_is_502_with_the_drivers_message(client: FlaskClient) -> None:
    config = {"host": "127.0.0.1", "port": 1, "user": "u", "database": "d", "password": "pw-9x"}
    post_connection(client, "down", "postgres", config, skip_discovery=True)
    message = assert_error(
        client.post("/refresh", json={"connection_id": "down"}), 502, "SOURCE_UNAVAILABLE"
    )
    assert "pw-9x" not in message
    assert "127.0.0.1" in message


def test_refused_login_is_502(
    client: FlaskClient, mariadb: MariaDBServer, mysql_source: Database
) -> None:
    config = mysql_source.config(password="wrong-password-1")
    post_connection(client, "nologin", "mysql", config, skip_discovery=True)
    message = assert_error(
        client.post("/refresh", json={"connection_id": "nologin"}), 502, "SOURCE_UNAVAILABLE"
    )
    assert "Access denied" in message
    assert "wrong-password-1" not in message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


class TestConnectTimeout:
    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        return {**environ, "SOURCE_CONNECT_TIMEOUT_SECONDS": "1"}

    @pytest.mark.parametrize("source_type", ["postgres", "mysql"])
    def test_a_silent_host_fails_fast(
        self, client: FlaskClient, silent_server: int, source_type: str
    ) -> None:
        config = {"host": "127.0.0.1", "port": silent_server, "user": "u", "database": "d"}
        post_connection(client, "mute", source_type, config, skip_discovery=True)
        started = time.monotonic()
        response = client.post("/refresh", json={"connection_id": "mute"})
        assert_error(response, 502, "SOURCE_UNAVAILABLE")
        assert time.monotonic() - started < 5  # 1 s configured; hanging would take minutes
