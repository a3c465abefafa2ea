"""SQLite files, opened read-only; discovery in one query, reading through ADBC's SQLite driver.

SQLite columns have declared types, not types: any column may hold any value. The mapping
(``arrow_type``) follows SQLite's own affinity rules on the declared type, after the names that
applications use for the types SQLite lacks:

- BOOLEAN/BOOL -> bool (0/1), DATE -> date32, DATETIME/TIMESTAMP -> timestamp[us] (naive), TIME
  -> time64[us], all read from ISO-8601 text; DECIMAL(p, s)/NUMERIC(p, s) -> decimal(p, s);
- INTEGER affinity (the name contains INT) -> int64: SQLite stores every integer in 64 bits,
  whatever width the declaration suggests;
- TEXT affinity (CHAR, CLOB, TEXT) -> string; BLOB -> binary; REAL affinity (REAL, FLOA, DOUB)
  -> float64; NUMERIC/DECIMAL without precision -> decimal128(38, 9);
- no declared type (e.g. expression columns of views) and any other name -> string, so that
  whatever the column holds reads as text.

A stored value that does not fit its column (text in an INTEGER column, a date stored as a
number) fails the table's read naming the column.

Discovery uses Python's ``sqlite3`` (one query). Reads use ADBC's SQLite driver, which builds
Arrow batches in C outside the GIL: about four times as fast as ``sqlite3`` rows converted in
Python. The driver infers each column's Arrow type from the values of its first batch, so the
SELECT makes the types certain:

- text-parsed columns (strings, decimals, dates, timestamps, times) are read as ``CAST(... AS
  TEXT)`` and cast strictly by ``convert.cast_array`` (the driver's SQLite prints a REAL as its
  shortest round-trip text, as Python's ``repr`` does); BLOB columns as ``CAST(... AS BLOB)``;
  INTEGER, REAL and BOOLEAN columns as stored;
- a first row of typed constants (``0``, ``0.0``, ``''``, ``x''``) comes before the table's rows
  (``UNION ALL``, dropped from the first batch), so a column that starts with NULLs is not
  inferred as int64;
- a value of another storage class in an INTEGER, REAL or BOOLEAN column makes the driver widen
  the column's type (first batch) or fail with a type mismatch (later batches): both fail the
  column by name.

The driver offers no cancel (ADBC 1.13: not implemented for SQLite), so ``interrupt`` stops the
read at the next batch boundary: immediate on tables and plain views, but a view that computes for
long before producing a batch (a sort, a slow recursive query) runs until its batch is ready.

The change fingerprint is the file's (``file_fingerprint``: the database file and its ``-wal``,
and the header's file change counter, which every committed write transaction outside WAL mode
increments): one for every table of the file. A ``check_sql`` runs through ``sqlite3`` on a
read-only connection, which ``interrupt`` stops with ``sqlite3``'s own ``interrupt()``.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Collection, Iterator
from contextlib import ExitStack, closing, contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar

import adbc_driver_manager
import adbc_driver_sqlite
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.dialects.sqlite.base import SQLiteDialect

from refresh.common.kept import Kept
from refresh.sources import adbc
from refresh.sources.base import (
    BATCH_ROWS,
    Column,
    DiscoveredTable,
    Since,
    Source,
    single_row,
    tables_of,
)
from refresh.sources.config import FileConfigSchema
from refresh.sources.convert import cast_array, column_error
from refresh.sources.driver_errors import source_errors
from refresh.sources.file_fingerprint import file_fingerprint
from refresh.sources.typemap import UNCONSTRAINED_DECIMAL, decimal_type

SCHEMA = "main"

_NAMED_TYPES: dict[str, pa.DataType] = {
    "BOOLEAN": pa.bool_(),
    "BOOL": pa.bool_(),
    "DATE": pa.date32(),
    "DATETIME": pa.timestamp("us"),
    "TIMESTAMP": pa.timestamp("us"),
    "TIME": pa.time64("us"),
}
_DECIMAL = re.compile(r"(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")

# Every column of every table and view but SQLite's own (sqlite_master, sqlite_sequence...).
_DISCOVERY_SQL = """
SELECT m.name, p.name, p.type, p."notnull", nullif(p.pk, 0)
FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p
WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' {only}
ORDER BY m.name, p.cid
"""
_ONLY_FILTER = "AND m.name IN (SELECT value FROM json_each(?))"

_DRIVER_ERRORS = (sqlite3.Error, adbc_driver_manager.Error, pa.ArrowException, OSError)
_STATEMENT_OPTIONS = {"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)}

_quote = SQLiteDialect().identifier_preparer.quote_identifier
# The file change counter: bytes 24-27 of the database header.
_CHANGE_COUNTER = slice(24, 28)

# How each Arrow type is read: the SELECT item around the quoted name, the constant of the first
# row, the Arrow type the driver then produces, and what a misfit value is called in the error.
_READ_AS_STORED = {
    pa.int64(): ("{}", "0", "an integer"),
    pa.bool_(): ("{}", "0", "a boolean (0 or 1)"),
    pa.float64(): ("{}", "0.0", "a number"),
}
_READ_AS_TEXT = ("CAST({} AS TEXT)", "''", "text")
_READ_AS_BLOB = ("CAST({} AS BLOB)", "x''", "bytes")
_DRIVER_TYPES = {"0": pa.int64(), "0.0": pa.float64(), "''": pa.string(), "x''": pa.binary()}
_TYPE_MISMATCH = re.compile(r"Type mismatch in column (\d+): expected \w+ but got (.+)")


def arrow_type(declared: str) -> pa.DataType:
    name = declared.strip().upper()
    if name in _NAMED_TYPES:
        return _NAMED_TYPES[name]
    if match := _DECIMAL.fullmatch(name):
        return decimal_type(int(match[1]), int(match[2] or 0))
    if "INT" in name:
        return pa.int64()
    if any(part in name for part in ("CHAR", "CLOB", "TEXT")):
        return pa.string()
    if "BLOB" in name:
        return pa.binary()
    if any(part in name for part in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    if name in ("NUMERIC", "DECIMAL"):
        return UNCONSTRAINED_DECIMAL
    return pa.string()


def _how_to_read(column: Column) -> tuple[str, str, str]:
    if pa.types.is_binary(column.arrow_type):
        return _READ_AS_BLOB
    return _READ_AS_STORED.get(column.arrow_type, _READ_AS_TEXT)


class SQLiteSource(Source):
    """Keeps a connection for discovery and one for reads between calls (``refresh.common.kept``):
    each connection parses the file's whole schema before its first statement, 25 ms for a file
    of 10,000 tables."""

    source_type: ClassVar[str] = "sqlite"
    config_schema = FileConfigSchema

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queries: Kept[sqlite3.Connection] = Kept(_close_queries)
        self._reads: Kept[adbc.Opened] = Kept(adbc.Opened.close)

    def close(self) -> None:
        self._queries.close()
        self._reads.close()

    def _connect_queries(self) -> sqlite3.Connection:
        # Discovery runs in a thread of its own each time (``refresh.prefetch.call_within``).
        return sqlite3.connect(self._uri(), uri=True, check_same_thread=False)

    def _connect_reads(self) -> adbc.Opened:
        opened = adbc.Opened(adbc.connect(adbc_driver_sqlite.connect(self._uri()), autocommit=True))
        try:
            # A writer's lock is waited for as long as a server's connection would be.
            busy_ms = max(1, math.ceil(self.connect_timeout)) * 1000
            adbc.execute(opened.connection, f"PRAGMA busy_timeout = {busy_ms}")
        except BaseException:
            opened.close()
            raise
        return opened

    @classmethod
    def preload(cls) -> None:
        adbc.preload_driver(adbc_driver_sqlite._driver_path())

    def _uri(self) -> str:
        # mode=ro: the service can never write to the file, whatever SQL it is tricked into.
        return Path(self.config["path"]).as_uri() + "?mode=ro"

    def discover(self, only: Collection[tuple[str, str]] | None = None) -> list[DiscoveredTable]:
        params: tuple[str, ...] = ()
        if only is not None:
            params = (json.dumps([table for schema, table in only if schema == SCHEMA]),)
        sql = _DISCOVERY_SQL.format(only=_ONLY_FILTER if only is not None else "")
        with (
            source_errors([], _DRIVER_ERRORS),
            self._queries.use(self._connect_queries) as connection,
        ):
            rows = connection.execute(sql, params).fetchall()
        return tables_of(
            (SCHEMA, table, Column(name, arrow_type(declared), not not_null, declared), key)
            for table, name, declared, not_null, key in rows
        )

    def fingerprints(
        self, tables: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        path = self.config["path"]
        try:
            with open(path, "rb") as database:
                header = database.read(100)[_CHANGE_COUNTER]
        except OSError:
            return dict.fromkeys(tables)
        return dict.fromkeys(tables, file_fingerprint(path, [f"{path}-wal"], header))

    def run_check(self, sql: str) -> tuple[object, ...]:
        self._stopper.check()
        with (
            source_errors([], _DRIVER_ERRORS),
            closing(sqlite3.connect(self._uri(), uri=True)) as connection,
            self._stopper.on_interrupt(connection.interrupt),
            self._stopper.explaining(),
        ):
            return single_row(connection.execute(sql).fetchmany(2))

    @contextmanager
    def read(
        self, table: DiscoveredTable, since: Since | None = None
    ) -> Iterator[Iterator[pa.RecordBatch]]:
        self._stopper.check()
        ways = [_how_to_read(column) for column in table.columns]
        first = ", ".join(constant for _, constant, _ in ways)
        items = ", ".join(
            item.format(_quote(c.name)) for c, (item, _, _) in zip(table.columns, ways, strict=True)
        )
        sql = (
            f"SELECT {first} UNION ALL "
            f"SELECT {items} FROM {_quote(table.schema_name)}.{_quote(table.table_name)}"
        )
        if since is not None:
            # Timestamps and dates are ISO 8601 text here: the literal compares as text.
            sql += f" WHERE {since.condition(_quote)}"
        with ExitStack() as stack:
            with source_errors([], _DRIVER_ERRORS):
                opened = stack.enter_context(self._reads.use(self._connect_reads))
                reader = stack.enter_context(adbc.query(opened.connection, sql, _STATEMENT_OPTIONS))
            yield self._batches(reader, table, ways)

    def _batches(
        self, reader: pa.RecordBatchReader, table: DiscoveredTable, ways: list[tuple[str, str, str]]
    ) -> Iterator[pa.RecordBatch]:
        schema = table.arrow_schema()
        first = True
        with source_errors([], _DRIVER_ERRORS), self._stopper.explaining():
            while True:
                self._stopper.check()
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except OSError as error:
                    raise _misfit(error, table, ways) from None
                if first:
                    batch, first = batch.slice(1), False  # the row of typed constants
                arrays = [
                    _convert(array, column, way)
                    for array, column, way in zip(batch.columns, table.columns, ways, strict=True)
                ]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def _close_queries(connection: sqlite3.Connection) -> None:
    with suppress(sqlite3.Error):
        connection.close()


def _convert(array: pa.Array, column: Column, way: tuple[str, str, str]) -> pa.Array:
    _, constant, expected = way
    if array.type != _DRIVER_TYPES[constant]:
        # The driver widened the column for a value of another storage class.
        raise column_error(column.name, f"expected {expected}, got a value read as {array.type}")
    target = column.arrow_type
    if pa.types.is_boolean(target):
        bounds = pc.min_max(array)
        if bounds["min"].as_py() not in (None, 0, 1) or bounds["max"].as_py() not in (None, 0, 1):
            raise column_error(column.name, f"expected {expected}, got {bounds['max'].as_py()}")
    if pa.types.is_string(target):
        try:
            array.validate(full=True)
        except pa.ArrowInvalid as error:
            raise column_error(column.name, error) from None
    return cast_array(array, target, column.name)


def _misfit(error: OSError, table: DiscoveredTable, ways: list[tuple[str, str, str]]) -> Exception:
    """The driver's type mismatch in a later batch, told with the column's name."""
    match = _TYPE_MISMATCH.search(str(error))
    if match is None or int(match[1]) >= len(table.columns):
        return error
    index = int(match[1])
    return column_error(table.columns[index].name, f"expected {ways[index][2]}, got {match[2]}")
