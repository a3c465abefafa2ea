"""SQLite files, opened read-only; discovery in one query, reading through SQLAlchemy.

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
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from refresh.sources.base import Column, DiscoveredTable, Source
from refresh.sources.config import FileConfigSchema
from refresh.sources.errors import source_errors
from refresh.sources.sql_stream import stream_table
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
SELECT m.name, p.name, p.type, p."notnull"
FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p
WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' {only}
ORDER BY m.name, p.cid
"""
_ONLY_FILTER = "AND m.name IN (SELECT value FROM json_each(?))"

_DRIVER_ERRORS = (sqlite3.Error, SQLAlchemyError)


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


class SQLiteSource(Source):
    source_type: ClassVar[str] = "sqlite"
    config_schema = FileConfigSchema

    def _engine(self) -> Engine:
        # mode=ro: the service can never write to the file, whatever SQL it is tricked into.
        # check_same_thread off: the consumer may iterate the batches in another thread.
        uri = Path(self.config["path"]).as_uri() + "?mode=ro"
        return create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
            poolclass=NullPool,
        )

    def discover(self, only: Collection[tuple[str, str]] | None = None) -> list[DiscoveredTable]:
        params: tuple[str, ...] = ()
        if only is not None:
            params = (json.dumps([table for schema, table in only if schema == SCHEMA]),)
        sql = _DISCOVERY_SQL.format(only=_ONLY_FILTER if only is not None else "")
        with source_errors([], _DRIVER_ERRORS), self._engine().connect() as connection:
            rows = connection.exec_driver_sql(sql, params).all()
        columns: dict[str, list[Column]] = defaultdict(list)
        for table, name, declared, not_null in rows:
            columns[table].append(Column(name, arrow_type(declared), not not_null, declared))
        return [DiscoveredTable(SCHEMA, table, tuple(cols)) for table, cols in columns.items()]

    def read(self, table: DiscoveredTable) -> AbstractContextManager[Iterator[pa.RecordBatch]]:
        return stream_table(self._engine(), table, [], _DRIVER_ERRORS)
