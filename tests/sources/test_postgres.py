"""PostgreSQL source against the real server: discovery, exact types, reads, errors, secrets."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, date, datetime
from datetime import time as clock
from decimal import Decimal

import pyarrow as pa
import pytest
from psycopg import sql

from refresh.sources import build_source
from refresh.sources.base import Column, DiscoveredTable, Source, SourceError
from tests.support.services import Database, PostgresServer
from tests.support.sources import WEIRD_NAMES, by_key, read_rows, types_of

TEXT = "line1\nline2, \"double\" 'single' café 日本"


def source(db: Database, **config: object) -> Source:
    return build_source("postgres", db.config(**config), None, connect_timeout=5)


def test_discovery_skips_system_schemas_partitions_and_honours_filters(
    postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t1 (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("CREATE VIEW v1 AS SELECT id FROM t1")
        conn.execute("CREATE MATERIALIZED VIEW mv AS SELECT name FROM t1")
        conn.execute("CREATE SCHEMA other")
        conn.execute("CREATE TABLE other.t2 (x bigint)")
        conn.execute("CREATE TABLE parted (d date) PARTITION BY RANGE (d)")
        conn.execute(
            "CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') "
            "TO ('2025-01-01')"
        )
        conn.execute("CREATE TEMP TABLE scratch (i int)")  # pg_temp_N: never discovered

    tables = by_key(source(pg_source).discover())

    assert set(tables) == {
        ("public", "t1"),
        ("public", "v1"),
        ("public", "mv"),
        ("public", "parted"),
        ("other", "t2"),
    }
    assert tables["public", "t1"].columns == (
        Column("id", pa.int32(), False, "integer"),
        Column("name", pa.string(), False, "text"),
    )
    assert {t.key for t in source(pg_source, schemas=["other"]).discover()} == {("other", "t2")}
    only = [("public", "t1"), ("other", "t2"), ("public", "gone"), ("public", "parted_2024")]
    described = source(pg_source).discover(only=[*only, ("public", "t1")])
    assert [t.key for t in described] == [("other", "t2"), ("public", "t1")]
    assert described[1].columns == tables["public", "t1"].columns
    assert [t.key for t in source(pg_source, schemas=["other"]).discover(only=only)] == [
        ("other", "t2")
    ]
    assert source(pg_source).discover(only=[]) == []


EXPECTED_TYPES = {
    "i2": pa.int16(),
    "i4": pa.int32(),
    "i8": pa.int64(),
    "money_amount": pa.decimal128(14, 2),
    "wide": pa.decimal256(40, 5),
    "free": pa.decimal128(38, 9),
    "f4": pa.float32(),
    "f8": pa.float64(),
    "tstz": pa.timestamp("us", tz="UTC"),
    "ts": pa.timestamp("us"),
    "d": pa.date32(),
    "t": pa.time64("us"),
    "b": pa.bool_(),
    "raw": pa.binary(),
    "txt": pa.string(),
    "vc": pa.string(),
    "ch": pa.string(),
    "j": pa.string(),
    "jb": pa.string(),
    "u": pa.string(),
    "e": pa.string(),
    "iv": pa.string(),
    "arr": pa.string(),
    "m": pa.string(),
    "ttz": pa.string(),
    "dom_int": pa.int32(),
    "dom_num": pa.decimal128(5, 2),
}


def test_every_type_maps_exactly_and_reads_back_equal(
    postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        # Inserted from a non-UTC session: timestamptz must come back as the same instants.
        conn.execute("SET TimeZone = 'Asia/Tokyo'")
        conn.execute("CREATE TYPE mood AS ENUM ('sad', 'happy')")
        conn.execute("CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)")
        conn.execute("CREATE DOMAIN price AS numeric(5, 2)")
        conn.execute("CREATE DOMAIN price2 AS price")
        conn.execute(
            """CREATE TABLE everything (
                i2 int2, i4 int4, i8 int8, money_amount numeric(14, 2), wide numeric(40, 5),
                free numeric, f4 float4, f8 float8, tstz timestamptz, ts timestamp, d date,
                t time, b bool, raw bytea, txt text, vc varchar(20), ch char(3), j json,
                jb jsonb, u uuid, e mood, iv interval, arr int[], m money, ttz timetz,
                dom_int posint, dom_num price2)"""
        )
        conn.execute(
            """INSERT INTO everything VALUES (
                -32768, 2147483647, -9223372036854775808, 12345678901.23,
                123456789012345678901234567890123.12345, 1.5, 1.5, 0.1,
                '2024-06-01 09:00:00', '2024-02-29 23:59:59.999999', '2024-02-29',
                '23:59:59.999999', true, '\\x00ff10', %s, 'varchar', 'ab', '{"a": 1}',
                '{"b": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
                '1 day 2 hours', '{1,2}', 12.34, '12:00:00+02', 7, 123.45)""",
            (TEXT,),
        )
        conn.execute("INSERT INTO everything DEFAULT VALUES")
        money_text = conn.execute("SELECT '12.34'::money::text").fetchone()[0]

    pg = source(pg_source)
    [table] = pg.discover()
    assert types_of(table) == EXPECTED_TYPES
    assert pg.discover(only=[table.key]) == [table]  # as a refresh describes it

    rows = read_rows(pg, table)

    assert rows[0] == {
        "i2": -32768,
        "i4": 2147483647,
        "i8": -9223372036854775808,
        "money_amount": Decimal("12345678901.23"),
        "wide": Decimal("123456789012345678901234567890123.12345"),
        "free": Decimal("1.500000000"),
        "f4": 1.5,
        "f8": 0.1,
        "tstz": datetime(2024, 6, 1, 0, 0, tzinfo=UTC),
        "ts": datetime(2024, 2, 29, 23, 59, 59, 999999),
        "d": date(2024, 2, 29),
        "t": clock(23, 59, 59, 999999),
        "b": True,
        "raw": b"\x00\xff\x10",
        "txt": TEXT,
        "vc": "varchar",
        "ch": "ab",  # char(n) padding is not data in PostgreSQL
        "j": '{"a": 1}',
        "jb": '{"b": [1, 2]}',
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "e": "happy",
        "iv": "1 day 02:00:00",
        "arr": "{1,2}",
        "m": money_text,
        "ttz": "12:00:00+02",
        "dom_int": 7,
        "dom_num": Decimal("123.45"),
    }
    assert rows[1] == dict.fromkeys(EXPECTED_TYPES)


@pytest.mark.parametrize(
    ("column_type", "value", "problem"),
    [
        ("numeric", "1.0123456789", "data loss"),  # 10 decimals into decimal128(38, 9)
        ("numeric", "340282366920938463463374607431768211455", "does not fit"),  # 2**128 - 1
        ("numeric(12, 2)", "NaN", "NaN"),
        ("timestamptz", "infinity", "out of range"),
        ("date", "-infinity", "out of range"),
    ],
)
def test_value_that_does_not_fit_fails_naming_the_column(
    postgres: PostgresServer, pg_source: Database, column_type: str, value: str, problem: str
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute(f"CREATE TABLE t (id int, amount {column_type})")
        conn.execute("INSERT INTO t VALUES (1, NULL), (2, %s)", (value,))
    pg = source(pg_source)
    [table] = pg.discover()

    with pytest.raises(SourceError, match=f'column "amount": .*{problem}'):
        read_rows(pg, table)


def test_server_error_in_the_middle_of_the_stream_is_a_source_error(
    postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute(
            "CREATE VIEW boom AS SELECT 1 / (g - 150000) AS x FROM generate_series(1, 200000) g"
        )
    pg = source(pg_source)
    [table] = pg.discover()

    with pytest.raises(SourceError, match="division by zero"):
        read_rows(pg, table)


def test_long_decimal_text_that_fits_is_read_exactly(
    postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (amount numeric)")
        conn.execute("INSERT INTO t VALUES (1.5000000000000000000000000000000000000000)")
    pg = source(pg_source)
    [table] = pg.discover()

    assert read_rows(pg, table) == [{"amount": Decimal("1.500000000")}]


def test_hostile_identifiers_are_quoted_everywhere(
    postgres: PostgresServer, pg_source: Database
) -> None:
    schema, table_name = 'we"ird', 'x"; DROP TABLE y; --'
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE y (i int)")
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        columns = sql.SQL(", ").join(
            sql.SQL("{} text").format(sql.Identifier(name)) for name in WEIRD_NAMES
        )
        target = sql.Identifier(schema, table_name)
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, columns))
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES ({})").format(
                target, sql.SQL(", ").join(sql.Placeholder() * len(WEIRD_NAMES))
            ),
            WEIRD_NAMES,
        )
    pg = source(pg_source)

    tables = by_key(pg.discover(only=[(schema, table_name)]))
    [table] = tables.values()

    assert table.key == (schema, table_name)
    assert [c.name for c in table.columns] == WEIRD_NAMES
    assert read_rows(pg, table) == [dict(zip(WEIRD_NAMES, WEIRD_NAMES, strict=True))]
    assert ("public", "y") in by_key(pg.discover())


def test_driver_messages_never_contain_the_password(pg_source: Database) -> None:
    password = f"pw_{secrets.token_hex(8)}"
    # The server trusts 127.0.0.1, so no password is ever refused; a database named after the
    # password makes the real driver message carry it instead (as a connection string would).
    missing = Database(pg_source.host, pg_source.port, pg_source.user, f"db_{password}")
    pg = build_source("postgres", missing.config(), password, connect_timeout=5)
    table = DiscoveredTable("public", "t", (Column("i", pa.int32(), True, "integer"),))

    with pytest.raises(SourceError) as discovering:
        pg.discover()
    with pytest.raises(SourceError) as reading:
        read_rows(pg, table)

    for error in (discovering.value, reading.value):
        assert "does not exist" in str(error)
        assert password not in str(error)
        assert error.__cause__ is None  # the unredacted driver exception is not chained


def test_unreachable_server_is_a_source_error_without_the_password(pg_source: Database) -> None:
    password = "s3cr/et p@ss"
    closed = Database("127.0.0.1", 1, pg_source.user, pg_source.database)
    pg = build_source("postgres", closed.config(), password, connect_timeout=5)
    table = DiscoveredTable("public", "t", (Column("i", pa.int32(), True, "integer"),))

    with pytest.raises(SourceError, match="refused") as error:
        read_rows(pg, table)

    assert "s3cr" not in str(error.value)


def test_connect_timeout_bounds_a_server_that_never_answers(silent_port: int) -> None:
    silent = Database("127.0.0.1", silent_port, "postgres", "postgres")
    pg = build_source("postgres", silent.config(), None, connect_timeout=1)
    table = DiscoveredTable("public", "t", (Column("i", pa.int32(), True, "integer"),))

    for attempt in (pg.discover, lambda: read_rows(pg, table)):
        started = time.monotonic()
        with pytest.raises(SourceError, match="timeout"):
            attempt()
        # libpq (psycopg) waits at least 2 s whatever the setting; generous bound, no benchmark.
        assert time.monotonic() - started < 4
