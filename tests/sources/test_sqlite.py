"""SQLite source on files in tmp_path: discovery, declared-type mapping, strict reads."""

from __future__ import annotations

import threading
from datetime import date, datetime
from datetime import time as clock
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from refresh.sources import build_source
from refresh.sources.base import Source, SourceError
from tests.support.file_sources import make_file_source
from tests.support.sources import by_key, read_rows, types_of

TEXT = "line1\nline2, \"double\" 'single' café 日本"


def make_db(path: Path, *statements: str, rows: tuple[str, list[tuple]] | None = None) -> Path:
    return make_file_source("sqlite", path, *statements, rows=rows)


def source(path: Path) -> Source:
    return build_source("sqlite", {"path": str(path)}, None, connect_timeout=5)


def test_discovery_lists_tables_and_views_not_internal_tables(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "db.sqlite",
        "CREATE TABLE t1 (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)",
        "CREATE TABLE t2 (x REAL)",
        "CREATE VIEW v1 AS SELECT id, id + 1 AS next FROM t1",
        "INSERT INTO t1 (name) VALUES ('a')",  # creates sqlite_sequence
    )

    tables = by_key(source(path).discover())

    assert set(tables) == {("main", "t1"), ("main", "t2"), ("main", "v1")}
    assert types_of(tables["main", "v1"]) == {"id": pa.int64(), "next": pa.string()}
    assert [c.nullable for c in tables["main", "t1"].columns] == [True, False]
    only = [("main", "t1"), ("main", "gone"), ("other", "t2")]
    assert {t.key for t in source(path).discover(only=only)} == {("main", "t1")}


def test_declared_types_map_and_read_back_equal(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "db.sqlite",
        """CREATE TABLE everything (
            i INTEGER, small SMALLINT, r REAL, f FLOAT, amount DECIMAL(14, 2), n NUMERIC,
            b BOOLEAN, d DATE, dt DATETIME, ts TIMESTAMP, t TIME, txt TEXT, vc VARCHAR(10),
            raw BLOB, anything, odd STRING)""",
        rows=(
            "INSERT INTO everything VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    -(2**63),
                    2**40,
                    0.1,
                    1.5,
                    12345678901.23,
                    "3.25",
                    1,
                    "2024-02-29",
                    "2024-02-29 23:59:59.999999",
                    "2024-02-29T12:00:00",
                    "23:59:59.5",
                    TEXT,
                    "vc",
                    b"\x00\xff",
                    42,
                    "str",
                ),
                (None,) * 16,
            ],
        ),
    )
    src = source(path)
    [table] = src.discover()

    assert types_of(table) == {
        "i": pa.int64(),
        "small": pa.int64(),
        "r": pa.float64(),
        "f": pa.float64(),
        "amount": pa.decimal128(14, 2),
        "n": pa.decimal128(38, 9),
        "b": pa.bool_(),
        "d": pa.date32(),
        "dt": pa.timestamp("us"),
        "ts": pa.timestamp("us"),
        "t": pa.time64("us"),
        "txt": pa.string(),
        "vc": pa.string(),
        "raw": pa.binary(),
        "anything": pa.string(),
        "odd": pa.string(),
    }
    rows = read_rows(src, table)
    assert rows[0] == {
        "i": -(2**63),
        "small": 2**40,
        "r": 0.1,
        "f": 1.5,
        "amount": Decimal("12345678901.23"),
        "n": Decimal("3.250000000"),
        "b": True,
        "d": date(2024, 2, 29),
        "dt": datetime(2024, 2, 29, 23, 59, 59, 999999),
        "ts": datetime(2024, 2, 29, 12, 0),
        "t": clock(23, 59, 59, 500000),
        "txt": TEXT,
        "vc": "vc",
        "raw": b"\x00\xff",
        "anything": "42",
        "odd": "str",
    }
    assert rows[1] == dict.fromkeys(rows[0])


@pytest.mark.parametrize(
    ("declared", "value", "problem"),
    [
        ("INTEGER", "twelve", "expected an integer"),
        ("DECIMAL(12, 2)", 1.234, "data loss"),
        ("DATE", "2024-02-30", "Failed to parse string: '2024-02-30'"),
        ("DATETIME", "2024-01-01 12:00:00.1234567", "Failed to parse string"),
        ("DATETIME", "2024-01-01T12:00:00+02:00", "expected no zone offset"),
        ("TIME", "25:00:00", "expected a time of day"),
        ("BOOLEAN", 2, "expected a boolean"),
        ("REAL", "abc", "expected a number"),
        ("TEXT", b"\xff", "Invalid UTF8"),
    ],
)
def test_value_that_does_not_fit_fails_naming_the_column(
    tmp_path: Path, declared: str, value: object, problem: str
) -> None:
    path = make_db(
        tmp_path / "db.sqlite",
        f"CREATE TABLE t (id INTEGER, v {declared})",
        rows=("INSERT INTO t VALUES (?, ?)", [(1, None), (2, value)]),
    )
    src = source(path)
    [table] = src.discover()

    with pytest.raises(SourceError, match=f'column "v": .*{problem}'):
        read_rows(src, table)


def test_value_of_another_storage_class_in_a_later_batch_fails_naming_the_column(
    tmp_path: Path,
) -> None:
    path = make_db(
        tmp_path / "db.sqlite",
        "CREATE TABLE t (id INTEGER, v INTEGER)",
        rows=("INSERT INTO t VALUES (?, ?)", [(i, i) for i in range(70_000)] + [(0, "twelve")]),
    )
    src = source(path)
    [table] = src.discover()

    with pytest.raises(SourceError, match='column "v": expected an integer'):
        read_rows(src, table)


def test_columns_starting_with_nulls_keep_their_types(tmp_path: Path) -> None:
    """The driver infers types from values: a first batch of NULLs must not make them int64."""
    path = make_db(
        tmp_path / "db.sqlite",
        "CREATE TABLE t (s TEXT, r REAL, b BLOB, d DATE)",
        rows=(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            [(None, None, None, None)] * 70_000 + [("x", 0.5, b"\x01", "2024-01-01")],
        ),
    )
    src = source(path)
    [table] = src.discover()

    rows = read_rows(src, table)

    assert rows[-1] == {"s": "x", "r": 0.5, "b": b"\x01", "d": date(2024, 1, 1)}
    assert rows[0] == dict.fromkeys(rows[0])


def test_missing_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite"

    with pytest.raises(SourceError, match="unable to open"):
        source(missing).discover()

    assert not missing.exists()


def test_interrupt_stops_the_read_at_the_next_batch(tmp_path: Path) -> None:
    """ADBC's SQLite driver cannot cancel a running step: the read stops between batches."""
    path = make_db(
        tmp_path / "db.sqlite",
        "CREATE TABLE big (id INTEGER)",
        "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 200000) "
        "INSERT INTO big SELECT n FROM s",
    )
    src = source(path)
    [table] = src.discover()

    with src.read(table) as batches:
        next(batches)
        interrupting = threading.Thread(target=src.interrupt)
        interrupting.start()
        interrupting.join()
        with pytest.raises(SourceError, match="interrupted"):
            next(batches)
