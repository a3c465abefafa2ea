"""DuckDB source on files in tmp_path: discovery, exact types, strict Arrow reads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from datetime import time as clock
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from refresh.sources import build_source
from refresh.sources.base import Source, SourceError
from tests.support.file_sources import make_file_source
from tests.support.sources import by_key, read_batches, read_rows, types_of

TEXT = "line1\nline2, \"double\" 'single' café 日本"


def make_db(path: Path, *statements: str, rows: tuple[str, list[tuple]] | None = None) -> Path:
    return make_file_source("duckdb", path, *statements, rows=rows)


def source(path: Path) -> Source:
    return build_source("duckdb", {"path": str(path)}, None, connect_timeout=5)


def test_discovery_lists_tables_and_views_of_every_schema(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "db.duckdb",
        "CREATE TABLE t1 (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL)",
        "CREATE VIEW v1 AS SELECT id FROM t1",
        "CREATE SCHEMA other",
        "CREATE TABLE other.t2 (x BIGINT)",
    )

    tables = by_key(source(path).discover())

    assert set(tables) == {("main", "t1"), ("main", "v1"), ("other", "t2")}
    assert [c.nullable for c in tables["main", "t1"].columns] == [False, False]
    only = [("main", "t1"), ("other", "t2"), ("main", "gone")]
    assert {t.key for t in source(path).discover(only=only)} == {("main", "t1"), ("other", "t2")}


def test_a_view_that_no_longer_binds_is_described_as_discovery_describes_it(
    tmp_path: Path,
) -> None:
    path = make_db(
        tmp_path / "db.duckdb",
        "CREATE TABLE t (id INTEGER)",
        "CREATE VIEW v AS SELECT id FROM t",
        "CREATE TABLE kept (x BIGINT)",
        "DROP TABLE t",
    )
    src = source(path)

    discovered = by_key(src.discover())
    described = src.discover(only=[("main", "v"), ("main", "kept")])

    assert by_key(described) == {key: discovered[key] for key in [("main", "v"), ("main", "kept")]}
    with pytest.raises(SourceError, match="Table with name t does not exist"):
        read_rows(src, discovered["main", "v"])
    src.close()


def test_a_table_dropped_from_the_file_is_gone_though_duckdb_has_a_view_of_its_name(
    tmp_path: Path,
) -> None:
    path = make_db(tmp_path / "db.duckdb", "CREATE TABLE duckdb_indexes (x INTEGER)")
    src = source(path)
    [table] = src.discover(only=[("main", "duckdb_indexes")])
    src.close()
    make_db(path, "DROP TABLE duckdb_indexes")
    src = source(path)

    assert src.discover(only=[("main", "duckdb_indexes")]) == []
    with pytest.raises(SourceError, match="does not exist"):
        read_rows(src, table)  # not DuckDB's own view of the file's indexes
    src.close()


EXPECTED_TYPES = {
    "i1": pa.int8(),
    "i2": pa.int16(),
    "i4": pa.int32(),
    "i8": pa.int64(),
    "u1": pa.uint8(),
    "u8": pa.uint64(),
    "huge": pa.decimal128(38, 0),
    "amount": pa.decimal128(14, 2),
    "f4": pa.float32(),
    "f8": pa.float64(),
    "b": pa.bool_(),
    "d": pa.date32(),
    "t": pa.time64("us"),
    "ts": pa.timestamp("us"),
    "ts_s": pa.timestamp("us"),
    "ts_ns": pa.timestamp("ns"),
    "tstz": pa.timestamp("us", tz="UTC"),
    "txt": pa.string(),
    "raw": pa.binary(),
    "u": pa.string(),
    "j": pa.string(),
    "e": pa.string(),
    "iv": pa.string(),
    "lst": pa.string(),
    "st": pa.string(),
    "ttz": pa.string(),
}


def test_every_type_maps_exactly_and_reads_back_equal(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "db.duckdb",
        "SET TimeZone = 'Asia/Tokyo'",  # timestamptz must come back as the same instants
        "CREATE TYPE mood AS ENUM ('sad', 'happy')",
        """CREATE TABLE everything (
            i1 TINYINT, i2 SMALLINT, i4 INTEGER, i8 BIGINT, u1 UTINYINT, u8 UBIGINT,
            huge HUGEINT, amount DECIMAL(14, 2), f4 FLOAT, f8 DOUBLE, b BOOLEAN, d DATE, t TIME,
            ts TIMESTAMP, ts_s TIMESTAMP_S, ts_ns TIMESTAMP_NS, tstz TIMESTAMPTZ, txt VARCHAR,
            raw BLOB, u UUID, j JSON, e mood, iv INTERVAL, lst INTEGER[], st STRUCT(a INTEGER),
            ttz TIMETZ)""",
        "INSERT INTO everything (i1) VALUES (NULL)",
        rows=(
            """INSERT INTO everything VALUES (
            -128, -32768, -2147483648, -9223372036854775808, 255, 18446744073709551615,
            99999999999999999999999999999999999999, 12345678901.23, 1.5, 0.1, true,
            '2024-02-29', '23:59:59.999999', '2024-02-29 23:59:59.999999',
            '2024-02-29 12:00:01', '2024-02-29 12:00:00.123456789', '2024-06-01 09:00:00', ?,
            '\\x00\\xFF'::BLOB, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1}', 'happy',
            INTERVAL 1 DAY, [1, 2], {'a': 1}, '12:00:00+02')""",
            [(TEXT,)],
        ),
    )
    src = source(path)
    [table] = src.discover()
    assert types_of(table) == EXPECTED_TYPES

    data = pa.Table.from_batches(read_batches(src, table), schema=table.arrow_schema())
    # Python's datetime stops at microseconds: the nanoseconds are compared as integers.
    assert data["ts_ns"].cast(pa.int64()).to_pylist() == [None, 1709208000123456789]
    rows = data.drop_columns(["ts_ns"]).to_pylist()

    assert rows[0] == dict.fromkeys(set(EXPECTED_TYPES) - {"ts_ns"})
    assert rows[1] == {
        "i1": -128,
        "i2": -32768,
        "i4": -2147483648,
        "i8": -9223372036854775808,
        "u1": 255,
        "u8": 18446744073709551615,
        "huge": Decimal("99999999999999999999999999999999999999"),
        "amount": Decimal("12345678901.23"),
        "f4": 1.5,
        "f8": 0.1,
        "b": True,
        "d": date(2024, 2, 29),
        "t": clock(23, 59, 59, 999999),
        "ts": datetime(2024, 2, 29, 23, 59, 59, 999999),
        "ts_s": datetime(2024, 2, 29, 12, 0, 1),
        "tstz": datetime(2024, 6, 1, 0, 0, tzinfo=UTC),
        "txt": TEXT,
        "raw": b"\x00\xff",
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "j": '{"a": 1}',
        "e": "happy",
        "iv": "1 day",
        "lst": "[1, 2]",
        "st": "{'a': 1}",
        "ttz": "12:00:00+02",
    }


@pytest.mark.parametrize(
    ("column_type", "value", "problem"),
    [
        ("UHUGEINT", "340282366920938463463374607431768211455", "does not fit"),
        ("TIMESTAMP", "'infinity'", "out of range"),
        ("DATE", "'-infinity'", "out of range"),
    ],
)
def test_value_that_does_not_fit_fails_naming_the_column(
    tmp_path: Path, column_type: str, value: str, problem: str
) -> None:
    path = make_db(
        tmp_path / "db.duckdb",
        f"CREATE TABLE t (id INTEGER, v {column_type})",
        f"INSERT INTO t VALUES (1, NULL), (2, {value})",
    )
    src = source(path)
    [table] = src.discover()

    with pytest.raises(SourceError, match=f'column "v": .*{problem}'):
        read_rows(src, table)


def test_query_error_in_the_middle_of_the_stream_is_a_source_error(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "db.duckdb",
        "CREATE VIEW boom AS SELECT range AS g, "
        "CASE WHEN range = 150000 THEN error('boom') ELSE 'x' END AS x FROM range(200000)",
    )
    src = source(path)
    [table] = src.discover()

    with pytest.raises(SourceError, match="boom"):
        read_rows(src, table)


def test_missing_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.duckdb"

    with pytest.raises(SourceError):
        source(missing).discover()

    assert not missing.exists()
