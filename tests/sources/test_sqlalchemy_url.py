"""Generic SQLAlchemy URL source: the URL's secret, bulk reflection, streaming reads."""

from __future__ import annotations

import gc
import secrets
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest
from marshmallow import ValidationError
from sqlalchemy.engine import make_url

from refresh.sources import build_source, source_class
from refresh.sources.base import Column, DiscoveredTable, Source, SourceError
from tests.support.services import Database, MariaDBServer, PostgresServer
from tests.support.sources import by_key, read_rows, types_of

SOURCE = source_class("sqlalchemy")


def source(url: str, password: str | None = None, **config: object) -> Source:
    return build_source("sqlalchemy", {"url": url, **config}, password, connect_timeout=5)


def test_split_secret_takes_the_password_out_of_the_url() -> None:
    config = SOURCE.config_schema().load({"url": "postgresql+psycopg://u:p%40ss@db:5433/app"})

    stored, password = SOURCE.split_secret(config)

    assert password == "p@ss"
    assert stored == {"url": "postgresql+psycopg://u@db:5433/app"}
    assert make_url(stored["url"]).password is None


@pytest.mark.parametrize(
    "url", ["not a url", "postgresql://u:hunter2@h:notaport/db", "nosuchdb://u:hunter2@h/db"]
)
def test_invalid_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ValidationError) as error:
        SOURCE.config_schema().load({"url": url})

    assert set(error.value.messages) == {"url"}
    assert "hunter2" not in str(error.value.messages)


def test_postgres_url_discovers_maps_and_reads(
    postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("SET TimeZone = 'Asia/Tokyo'")
        conn.execute("CREATE DOMAIN price AS numeric(5, 2)")
        conn.execute(
            """CREATE TABLE t (i2 int2, i8 int8 NOT NULL, n numeric(14, 2), free numeric,
            f4 real, f8 float8, tstz timestamptz, d date, b bool, raw bytea, j jsonb, p price,
            ttz timetz)"""
        )
        conn.execute(
            """INSERT INTO t VALUES (1, 2, 12345678901.23, 1.5, 1.5, 0.1,
            '2024-06-01 09:00:00', '2024-02-29', true, '\\x00ff', '{"a": [1, 2]}', 1.25,
            '12:00:00+02'), (NULL, 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL)"""
        )
        conn.execute("CREATE VIEW v AS SELECT i8 FROM t")
        conn.execute("CREATE SCHEMA other")
        conn.execute("CREATE TABLE other.o (x int)")
    src = source(postgres.url(pg_source))

    tables = by_key(src.discover())

    assert set(tables) == {("public", "t"), ("public", "v")}
    assert types_of(tables["public", "t"]) == {
        "i2": pa.int16(),
        "i8": pa.int64(),
        "n": pa.decimal128(14, 2),
        "free": pa.decimal128(38, 9),
        "f4": pa.float32(),
        "f8": pa.float64(),
        "tstz": pa.timestamp("us", tz="UTC"),
        "d": pa.date32(),
        "b": pa.bool_(),
        "raw": pa.binary(),
        "j": pa.string(),
        "p": pa.decimal128(38, 9),  # SQLAlchemy reflects domains without their type modifier
        "ttz": pa.string(),
    }
    assert tables["public", "t"].columns[1] == Column("i8", pa.int64(), False, "BIGINT")
    rows = read_rows(src, tables["public", "t"])
    assert rows[0] == {
        "i2": 1,
        "i8": 2,
        "n": Decimal("12345678901.23"),
        "free": Decimal("1.500000000"),
        "f4": 1.5,
        "f8": 0.1,
        "tstz": datetime(2024, 6, 1, 0, 0, tzinfo=UTC),
        "d": date(2024, 2, 29),
        "b": True,
        "raw": b"\x00\xff",
        "j": '{"a": [1, 2]}',
        "p": Decimal("1.250000000"),
        "ttz": "12:00:00+02:00",
    }
    assert rows[1] == {**dict.fromkeys(rows[0]), "i8": 3}
    other = source(postgres.url(pg_source), schemas=["other"])
    assert [t.key for t in other.discover()] == [("other", "o")]
    assert [t.key for t in src.discover(only=[("public", "v"), ("other", "o")])] == [
        ("public", "v")
    ]


def test_wrong_password_is_a_source_error_without_the_password(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    user, password = f"rs_{secrets.token_hex(4)}", f"pw_{secrets.token_hex(8)}"
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
    try:
        url = f"mysql+pymysql://{user}@127.0.0.1:3306/{mysql_source.database}"
        table = DiscoveredTable(mysql_source.database, "t", (Column("i", pa.int32(), True, ""),))
        wrong = password[::-1]

        with pytest.raises(SourceError, match="Access denied") as discovering:
            source(url, wrong).discover()
        with pytest.raises(SourceError, match="Access denied") as reading:
            read_rows(source(url, wrong), table)
    finally:
        with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
            cur.execute("DROP USER %s@'%%'", (user,))

    for error in (discovering.value, reading.value):
        assert wrong not in str(error)
        assert error.__cause__ is None


def test_missing_driver_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="MySQLdb"):
        source("mysql+mysqldb://u@127.0.0.1/db", "pw").discover()


# An open server-side cursor left to the garbage collector warns: "error" makes that a failure.
@pytest.mark.filterwarnings("error")
def test_abandoned_stream_closes_its_server_side_cursor(
    postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 70000) g")
    src = source(postgres.url(pg_source))
    [table] = src.discover()

    with src.read(table) as batches:
        assert next(batches).num_rows == 65_536
    gc.collect()
