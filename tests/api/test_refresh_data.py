"""Single-table data refresh (mode 3) end to end: real sources, both storages, both catalogs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from flask.testing import FlaskClient
from sqlalchemy import select

from refresh.catalog import PendingDeletion, Table
from refresh.runtime import Runtime
from tests.support.api import assert_error, refresh, register, table_info
from tests.support.backends import Backend
from tests.support.file_sources import FILE_SOURCE_TYPES, make_file_source
from tests.support.markers import both_catalogs, both_storages
from tests.support.services import Database, MariaDBServer, PostgresServer

UTC = dt.UTC
TEXTS = ["plain", "quote \" and 'single'", "comma, and\nnewline", "Café 中文 ✓", ""]


def fill_postgres(postgres: PostgresServer, db: Database) -> None:
    with postgres.connect(db) as conn:
        conn.execute("SET TIME ZONE 'America/New_York'")
        conn.execute(
            """
            CREATE TYPE mood AS ENUM ('ok', 'sad');
            CREATE TABLE everything (
                id bigint PRIMARY KEY, small smallint, regular integer, big bigint,
                price numeric(14,2), ratio numeric, real4 real, real8 double precision,
                at_tz timestamptz, at_naive timestamp, day date, clock time, yes boolean,
                raw bytea, body text, label varchar(20), doc jsonb, uid uuid, feeling mood
            )
            """
        )
        conn.execute(
            """
            INSERT INTO everything VALUES
            (1, -32768, -2147483648, -9223372036854775808, 123456789012.34, 0.000000001,
             1.5, 2.25, '2024-03-10 01:59:59.123456-05', '2024-03-10 02:30:00', '0001-01-01',
             '23:59:59.999999', true, '\\x00ff', %s, 'x', '{"a": [1, 2]}',
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'sad'),
            (2, 32767, 2147483647, 9223372036854775807, -0.01, -12345678901234567890.123456789,
             -0.0, 1e308, '1970-01-01 00:00:00+00', '9999-12-31 23:59:59', '9999-12-31',
             '00:00:00', false, '', %s, '', 'null', NULL, 'ok'),
            (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
             NULL, NULL, NULL, NULL, NULL, NULL)
            """,
            (TEXTS[2], TEXTS[3]),
        )


@both_catalogs
@both_storages
def test_postgres_table_is_copied_exactly(
    client: FlaskClient, cache: Backend, postgres: PostgresServer, pg_source: Database
) -> None:
    fill_postgres(postgres, pg_source)
    register(client, "pg", "postgres", pg_source.config())

    body = refresh(client, "pg", "public", "everything")
    assert body["rows_synced"] == 3
    assert set(body) == {
        "connection_id",
        "schema_name",
        "table_name",
        "refresh_mode",
        "rows_synced",
        "duration_ms",
    }
    assert body["refresh_mode"] == "full"

    info = table_info(client, "pg", "public", "everything")
    assert info["synced"] is True
    assert info["row_count"] == 3
    assert info["size_bytes"] > 0
    assert not info["current_path"].endswith(".parquet")
    assert [v["status"] for v in info["versions"]] == ["current"]
    copy = cache.read(info["current_path"]).sort_by("id")
    assert copy.schema.field("price").type == pa.decimal128(14, 2)
    assert copy.schema.field("ratio").type == pa.decimal128(38, 9)
    assert copy.schema.field("at_tz").type == pa.timestamp("us", tz="UTC")
    assert copy.schema.field("at_naive").type == pa.timestamp("us")
    rows = copy.to_pylist()
    assert rows[0]["price"] == Decimal("123456789012.34")
    assert rows[0]["ratio"] == Decimal("0.000000001")
    assert rows[1]["ratio"] == Decimal("-12345678901234567890.123456789")
    assert rows[0]["at_tz"] == dt.datetime(2024, 3, 10, 6, 59, 59, 123456, tzinfo=UTC)
    assert rows[0]["at_naive"] == dt.datetime(2024, 3, 10, 2, 30)
    assert rows[0]["day"] == dt.date(1, 1, 1)
    assert rows[0]["clock"] == dt.time(23, 59, 59, 999999)
    assert rows[0]["raw"] == b"\x00\xff"
    assert rows[0]["body"] == TEXTS[2]
    assert rows[1]["body"] == TEXTS[3]
    assert rows[0]["doc"] == '{"a": [1, 2]}'
    assert rows[0]["uid"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert rows[0]["feeling"] == "sad"
    assert rows[1]["big"] == 9223372036854775807
    assert rows[1]["label"] == ""
    assert all(value is None for key, value in rows[2].items() if key != "id")


@both_storages
def test_mariadb_table_is_copied_exactly(
    client: FlaskClient, cache: Backend, mariadb: MariaDBServer, mysql_source: Database
) -> None:
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+02:00'")
        cur.execute(
            """CREATE TABLE t (id int PRIMARY KEY, tiny tinyint, u bigint unsigned,
               price decimal(12,2), at timestamp(6) NULL, naive datetime(6), day date,
               body text, raw blob, doc json)"""
        )
        cur.execute(
            "INSERT INTO t VALUES (1, -128, 18446744073709551615, 1234567890.12,"
            " '2024-01-01 12:00:00.5', '2024-01-01 12:00:00', '2024-02-29', %s, x'00ff',"
            " '{\"k\": 1}'), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            (TEXTS[3],),
        )
    register(client, "maria", "mysql", mysql_source.config(password=""))
    assert refresh(client, "maria", mysql_source.database, "t")["rows_synced"] == 2
    info = table_info(client, "maria", mysql_source.database, "t")
    rows = cache.read(info["current_path"]).sort_by("id").to_pylist()
    assert rows[0]["tiny"] == -128
    assert rows[0]["u"] == 18446744073709551615
    assert rows[0]["price"] == Decimal("1234567890.12")
    assert rows[0]["at"] == dt.datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=UTC)
    assert rows[0]["naive"] == dt.datetime(2024, 1, 1, 12, 0)
    assert rows[0]["body"] == TEXTS[3]
    assert rows[0]["raw"] == b"\x00\xff"
    assert all(value is None for key, value in rows[1].items() if key != "id")


@both_storages
def test_sqlite_and_duckdb_tables_are_copied(
    client: FlaskClient, cache: Backend, tmp_path: Path
) -> None:
    for source_type in FILE_SOURCE_TYPES:
        path = make_file_source(
            source_type,
            tmp_path / f"src.{source_type}",
            "CREATE TABLE t (id INTEGER, price DECIMAL(8,2), body TEXT, day DATE)",
            rows=(
                "INSERT INTO t VALUES (?, ?, ?, ?)",
                [(1, 12.34, TEXTS[1], "2024-02-29"), (2, None, None, None)],
            ),
        )
        register(client, source_type, source_type, {"path": str(path)})
        assert refresh(client, source_type, "main", "t")["rows_synced"] == 2
        current = table_info(client, source_type, "main", "t")["current_path"]
        rows = cache.read(current).to_pylist()
        assert sorted(rows, key=lambda r: r["id"]) == [
            {"id": 1, "price": Decimal("12.34"), "body": TEXTS[1], "day": dt.date(2024, 2, 29)},
            {"id": 2, "price": None, "body": None, "day": None},
        ]


@both_storages
def test_tables_with_names_longer_than_a_file_name_refresh(
    client: FlaskClient, cache: Backend, tmp_path: Path
) -> None:
    names = ["x" * 300, "é" * 100]  # 300 and 600 bytes once percent-encoded
    lite = make_file_source(
        "sqlite",
        tmp_path / "long.sqlite",
        *(f'CREATE TABLE "{name}" (id INTEGER)' for name in names),
        *(f'INSERT INTO "{name}" VALUES ({number})' for number, name in enumerate(names)),
    )
    register(client, "lite", "sqlite", {"path": str(lite)})

    for number, name in enumerate(names):
        assert refresh(client, "lite", "main", name)["rows_synced"] == 1
        path = table_info(client, "lite", "main", name)["current_path"]
        assert cache.read(path).to_pylist() == [{"id": number}]
    assert len(cache.versions()) == 2


@both_storages
def test_second_refresh_replaces_rows_and_keeps_the_old_version_for_its_grace(
    client: FlaskClient, cache: Backend, rt: Runtime, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int, v text)")
        conn.execute("INSERT INTO t SELECT g, 'old' FROM generate_series(1, 5) g")
    register(client, "pg", "postgres", pg_source.config())
    refresh(client, "pg", "public", "t")
    first = table_info(client, "pg", "public", "t")["current_path"]
    with postgres.connect(pg_source) as conn:
        conn.execute("DELETE FROM t WHERE id > 3")
        conn.execute("UPDATE t SET v = 'new'")
        conn.execute("INSERT INTO t VALUES (10, 'added')")

    before = dt.datetime.now(UTC)
    assert refresh(client, "pg", "public", "t")["rows_synced"] == 4
    info = table_info(client, "pg", "public", "t")
    second = info["current_path"]
    assert second != first
    assert sorted(cache.read(second).to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "v": "new"},
        {"id": 2, "v": "new"},
        {"id": 3, "v": "new"},
        {"id": 10, "v": "added"},
    ]
    assert len(cache.read(first)) == 5  # still readable during the grace period
    assert [v["status"] for v in info["versions"]] == ["current", "superseded"]
    with rt.catalog.session() as session:
        pending = session.scalars(select(PendingDeletion)).all()
    assert [p.path for p in pending] == [first]
    grace = dt.timedelta(seconds=rt.settings.deletion_grace_seconds)
    assert before + grace <= pending[0].delete_after <= dt.datetime.now(UTC) + grace


def test_a_changed_source_schema_is_picked_up_by_the_data_refresh(
    client: FlaskClient, cache: Backend, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int, gone text)")
        conn.execute("INSERT INTO t VALUES (1, 'x')")
    register(client, "pg", "postgres", pg_source.config())
    with postgres.connect(pg_source) as conn:
        conn.execute("ALTER TABLE t DROP COLUMN gone, ADD COLUMN fresh bigint DEFAULT 7")
    refresh(client, "pg", "public", "t")
    info = table_info(client, "pg", "public", "t")
    assert cache.read(info["current_path"]).to_pylist() == [{"id": 1, "fresh": 7}]
    assert [c["name"] for c in info["columns"]] == ["id", "fresh"]
    assert info["schema_changed_at"] is not None


def test_a_table_dropped_at_the_source_is_404_and_marked_removed(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int)")
    register(client, "pg", "postgres", pg_source.config())
    with postgres.connect(pg_source) as conn:
        conn.execute("DROP TABLE t")
    body = {"connection_id": "pg", "schema_name": "public", "table_name": "t", "data": True}
    message = assert_error(client.post("/refresh", json=body), 404, "NOT_FOUND")
    assert message.startswith("table not found: public.t (connection pg)")
    assert table_info(client, "pg", "public", "t")["removed"] is True


def test_empty_table_gives_a_readable_empty_version(
    client: FlaskClient, cache: Backend, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int, v numeric(5,1))")
    register(client, "pg", "postgres", pg_source.config())
    assert refresh(client, "pg", "public", "t")["rows_synced"] == 0
    copy = cache.read(table_info(client, "pg", "public", "t")["current_path"])
    assert copy.num_rows == 0
    assert copy.schema.field("v").type == pa.decimal128(5, 1)


HOSTILE = ['x"; DROP TABLE victim; --', "a/b", "a%2Fb", "..", ".", "../x", "ta ble", "é中"]


@both_storages
def test_hostile_identifiers_stay_inside_the_cache_root(
    client: FlaskClient, cache: Backend, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE victim (id int)")
        conn.execute('CREATE SCHEMA "../up"')
        for name in HOSTILE:
            quoted = name.replace('"', '""')
            conn.execute(f'CREATE TABLE "../up"."{quoted}" ("{quoted}" int)')
            conn.execute(f'INSERT INTO "../up"."{quoted}" VALUES (1)')
    register(client, "pg", "postgres", pg_source.config())
    paths = set()
    for name in HOSTILE:
        body = {"connection_id": "pg", "schema_name": "../up", "table_name": name, "data": True}
        response = client.post("/refresh", json=body)
        assert response.status_code == 200, (name, response.get_json())
        listed = client.get("/connections/pg/tables").get_json()["tables"]
        (info,) = [t for t in listed if t["table_name"] == name]
        assert cache.read(info["current_path"]).to_pylist() == [{name: 1}]
        paths.add(info["current_path"])
    assert len(paths) == len(HOSTILE)
    outside = {f for f in cache.everything() if not f.startswith(("cache/", "catalog/"))}
    assert outside == set()
    assert len(cache.versions()) == len(HOSTILE)
    assert all(f.startswith("pg/%2E%2E%2Fup/") for f in cache.files()), cache.files()
    with postgres.connect(pg_source) as conn:
        assert conn.execute("SELECT count(*) FROM victim").fetchone() == (0,)


def test_table_endpoints_show_the_catalog(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, v text)")
    register(client, "pg", "postgres", pg_source.config())
    (listed,) = client.get("/connections/pg/tables").get_json()["tables"]
    assert listed == {
        "schema_name": "public",
        "table_name": "t",
        "synced": False,
        "last_sync": None,
        "row_count": None,
        "size_bytes": None,
        "current_path": None,
        "current_version": None,
        "removed": False,
        "schema_changed_at": None,
        "primary_key": ["id"],
        "last_success_at": None,
        "last_checked_at": None,
        "consecutive_failures": 0,
        "stale": None,
        "watermark": None,
        "columns": [
            {"name": "id", "data_type": "int64", "nullable": False, "native_type": "bigint"},
            {"name": "v", "data_type": "string", "nullable": True, "native_type": "text"},
        ],
    }
    assert table_info(client, "pg", "public", "t")["versions"] == []
    assert_error(
        client.get("/connections/pg/tables/public/nope"),
        404,
        "NOT_FOUND",
        "table not found: public.nope (connection pg)",
    )


def test_a_schema_refresh_records_a_primary_key_added_at_the_source(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int NOT NULL, v text)")
    register(client, "pg", "postgres", pg_source.config())
    assert table_info(client, "pg", "public", "t")["primary_key"] == []
    with postgres.connect(pg_source) as conn:
        conn.execute("ALTER TABLE t ADD PRIMARY KEY (id)")

    assert client.post("/refresh", json={"connection_id": "pg"}).status_code == 200

    info = table_info(client, "pg", "public", "t")
    assert info["primary_key"] == ["id"]
    assert info["schema_changed_at"] is None  # what a reader sees has not changed


def test_drop_table_cache_uncaches_and_queues_its_directories(
    client: FlaskClient, rt: Runtime, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int)")
    register(client, "pg", "postgres", pg_source.config())
    refresh(client, "pg", "public", "t")
    refresh(client, "pg", "public", "t")
    paths = {v["path"] for v in table_info(client, "pg", "public", "t")["versions"]}
    assert client.delete("/connections/pg/tables/public/t/cache").status_code == 204
    info = table_info(client, "pg", "public", "t")
    assert (info["synced"], info["current_path"]) == (False, None)
    with rt.catalog.session() as session:
        assert set(session.scalars(select(PendingDeletion.path))) == paths
        assert session.scalar(select(Table.current_version)) is None
