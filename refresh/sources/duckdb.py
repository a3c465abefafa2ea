"""DuckDB files, opened read-only with the ``duckdb`` module itself.

DuckDB is Arrow-native: its own reader hands out Arrow batches built in C++, which a SQLAlchemy
cursor would turn into Python tuples only for ``convert`` to rebuild Arrow from them. So this
source reads ``con.sql(SELECT).to_arrow_reader(BATCH_ROWS)`` and applies the same strict
Arrow-to-Arrow cast as PostgreSQL's ADBC path.

Type mapping (``arrow_type``): integers keep width and signedness, HUGEINT/UHUGEINT ->
decimal128(38, 0) (a value beyond 38 digits fails the column), DECIMAL(p, s) -> decimal128(p, s),
FLOAT -> float32, DOUBLE -> float64, BOOLEAN, DATE -> date32, TIME -> time64[us], TIMESTAMP (and
_S, _MS) -> timestamp[us], TIMESTAMP_NS -> timestamp[ns] (exact), TIMESTAMP WITH TIME ZONE ->
timestamp[us, tz=UTC], BLOB -> binary, VARCHAR and everything else (UUID, JSON, ENUM, INTERVAL,
LIST, STRUCT, MAP, TIME WITH TIME ZONE, BIT, BIGNUM, ...) -> string, as DuckDB's text output.

Columns read as strings are cast to VARCHAR in the SELECT, and so are decimals: DuckDB exports
HUGEINTs to Arrow without range checks (a UHUGEINT above 2**127 comes out negative), whereas the
string-to-decimal cast refuses what does not fit.

``interrupt`` calls the connection's own ``interrupt()``, which DuckDB makes safe from another
thread: the running query stops and the read raises.

The change fingerprint is the file's (``file_fingerprint``: the database file and its ``.wal``):
one for every table of the file. A ``check_sql`` runs on a read-only connection.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Iterator
from contextlib import closing, contextmanager
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
from sqlalchemy.dialects.postgresql.base import PGDialect

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
from refresh.sources.convert import cast_batch, read_as_text
from refresh.sources.driver_errors import source_errors
from refresh.sources.file_fingerprint import file_fingerprint
from refresh.sources.typemap import decimal_type

_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "TINYINT": pa.int8(),
    "SMALLINT": pa.int16(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "UTINYINT": pa.uint8(),
    "USMALLINT": pa.uint16(),
    "UINTEGER": pa.uint32(),
    "UBIGINT": pa.uint64(),
    "HUGEINT": pa.decimal128(38, 0),
    "UHUGEINT": pa.decimal128(38, 0),
    "FLOAT": pa.float32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIME": pa.time64("us"),
    "TIMESTAMP": pa.timestamp("us"),
    "TIMESTAMP_S": pa.timestamp("us"),
    "TIMESTAMP_MS": pa.timestamp("us"),
    "TIMESTAMP_NS": pa.timestamp("ns"),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    "BLOB": pa.binary(),
    "VARCHAR": pa.string(),
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")

# A DuckDB file is a file source: it must reach no file beyond itself (a view can read
# read_csv('/etc/passwd')), and opening one must never make the service download and load an
# extension (a SQLite file opened as DuckDB asks for sqlite_scanner from the internet).
_CONFINED = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}

# DuckDB quotes identifiers as PostgreSQL does.
_quote = PGDialect(paramstyle="qmark").identifier_preparer.quote_identifier

# Tables and views of the opened file only: not the ``system``/``temp`` catalogs, not DuckDB's
# information_schema and pg_catalog views.
_DISCOVERY_SQL = """
SELECT c.schema_name, c.table_name, c.column_name, c.is_nullable, c.data_type,
       list_position(k.constraint_column_names, c.column_name)
FROM duckdb_columns() c
LEFT JOIN duckdb_constraints() k
  ON k.database_name = c.database_name AND k.schema_name = c.schema_name
  AND k.table_name = c.table_name AND k.constraint_type = 'PRIMARY KEY'
WHERE c.database_name = current_database() AND NOT c.internal
  AND c.schema_name NOT IN ('information_schema', 'pg_catalog') {only}
ORDER BY c.schema_name, c.table_name, c.column_index
"""
_ONLY_FILTER = "AND list_contains($only, {'s': c.schema_name, 't': c.table_name})"

# Describing a few tables (a batch's next ones): each one's pragma_table_info, in one query. The
# two functions above list every column of the file however few tables are asked for: 70 ms for
# a file of 10,000 tables, against 2 ms for 16 tables this way (bench/README.md). The primary
# key's order is asked of duckdb_constraints() (3 ms there) only when a table has one.
_DESCRIBE_AT_MOST = 64
_DESCRIBE_ONE = (
    'SELECT ?::INTEGER AS n, ? AS s, ? AS t, name, "notnull", type, pk, cid '
    "FROM pragma_table_info(?)"
)
_PRIMARY_KEYS = """
SELECT schema_name, table_name, constraint_column_names FROM duckdb_constraints()
WHERE database_name = current_database() AND constraint_type = 'PRIMARY KEY'
  AND list_contains($only, {'s': schema_name, 't': table_name})
"""


def arrow_type(data_type: str) -> pa.DataType:
    if match := _DECIMAL.fullmatch(data_type):
        return decimal_type(int(match[1]), int(match[2]))
    return _SIMPLE_TYPES.get(data_type, pa.string())


def _select_item(column: Column) -> str:
    name = _quote(column.name)
    if read_as_text(column):
        return f"CAST({name} AS VARCHAR)"
    return name


class DuckDBSource(Source):
    """Keeps the file open from its first call to ``close``; each call has a connection of its
    own to it."""

    source_type: ClassVar[str] = "duckdb"
    config_schema = FileConfigSchema

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._file: duckdb.DuckDBPyConnection | None = None
        self._database = ""  # the file's name among DuckDB's databases, once opened
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            opened, self._file = self._file, None
        if opened is not None:
            opened.close()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """A connection for one call, to the file opened once: opening it loads the whole
        file's catalog (50 ms for a file of 1,000 tables, 460 ms for 10,000), which a batch paid
        twice per table (its description, its read); another connection to an open file costs
        a third of a millisecond."""
        with self._lock:
            if self._file is None:
                opened = duckdb.connect(self.config["path"], read_only=True, config=_CONFINED)
                [self._database] = opened.execute("SELECT current_database()").fetchone()
                self._file = opened
            connection = self._file.cursor()
        # Text output of TIMESTAMPTZ values inside cast columns (lists, structs) in UTC.
        connection.execute("SET TimeZone = 'UTC'")
        return connection

    def discover(self, only: Collection[tuple[str, str]] | None = None) -> list[DiscoveredTable]:
        if only is not None and len(only) <= _DESCRIBE_AT_MOST:
            try:
                return self._describe(only)
            except duckdb.Error:
                pass  # a table gone, or a view that no longer binds: the query below says which
        params = {}
        if only is not None:
            params["only"] = [{"s": schema, "t": table} for schema, table in only]
        sql = _DISCOVERY_SQL.format(only=_ONLY_FILTER if only is not None else "")
        with source_errors([], (duckdb.Error,)), closing(self._connect()) as connection:
            rows = connection.execute(sql, params).fetchall()
        return tables_of(
            (schema, table, Column(name, arrow_type(data_type), nullable, data_type), key)
            for schema, table, name, nullable, data_type, key in rows
        )

    def _describe(self, only: Collection[tuple[str, str]]) -> list[DiscoveredTable]:
        names = list(only)
        union = " UNION ALL ".join([_DESCRIBE_ONE] * len(names))
        with closing(self._connect()) as connection:
            params = [p for n, (s, t) in enumerate(names) for p in (n, s, t, self._name(s, t))]
            rows = connection.execute(f"{union} ORDER BY n, cid", params).fetchall()
            keys: dict[tuple[str, str], list[str]] = {}
            if any(pk for *_, pk, _ in rows):
                wanted = [{"s": s, "t": t} for s, t in names]
                found = connection.execute(_PRIMARY_KEYS, {"only": wanted}).fetchall()
                keys = {(s, t): columns for s, t, columns in found}
        return tables_of(
            (
                s,
                t,
                Column(name, arrow_type(data_type), not notnull, data_type),
                _rank(keys, s, t, name),
            )
            for _, s, t, name, notnull, data_type, _, _ in rows
        )

    def fingerprints(
        self, tables: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        path = self.config["path"]
        return dict.fromkeys(tables, file_fingerprint(path, [f"{path}.wal"]))

    def run_check(self, sql: str) -> tuple[object, ...]:
        self._stopper.check()
        with source_errors([], (duckdb.Error,)):
            connection = self._connect()
        with (
            closing(connection),
            self._stopper.on_interrupt(connection.interrupt),
            source_errors([], (duckdb.Error,)),
            self._stopper.explaining(),
        ):
            return single_row(connection.execute(sql).fetchmany(2))

    @contextmanager
    def read(
        self, table: DiscoveredTable, since: Since | None = None
    ) -> Iterator[Iterator[pa.RecordBatch]]:
        columns = ", ".join(_select_item(column) for column in table.columns)
        self._stopper.check()
        with source_errors([], (duckdb.Error,)):
            connection = self._connect()
        with closing(connection), self._stopper.on_interrupt(connection.interrupt):
            sql = f"SELECT {columns} FROM {self._name(*table.key)}"
            if since is not None:
                # The session's time zone is the machine's: an aware timestamp says it is UTC.
                sql += f" WHERE {since.condition(_quote, utc_offset=True)}"
            with source_errors([], (duckdb.Error,)), self._stopper.explaining():
                reader = connection.sql(sql).to_arrow_reader(BATCH_ROWS)
            yield self._batches(reader, table.arrow_schema())

    def _name(self, schema: str, table: str) -> str:
        """The table's name qualified by the file's own: a table dropped from the file must not
        resolve to DuckDB's system view of the same name (``main.duckdb_tables``...)."""
        return f"{_quote(self._database)}.{_quote(schema)}.{_quote(table)}"

    def _batches(self, reader: pa.RecordBatchReader, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        # An error of the query mid-stream reaches Python as the OSError of pyarrow's reader.
        with (
            source_errors([], (duckdb.Error, pa.ArrowException, OSError)),
            self._stopper.explaining(),
        ):
            for batch in reader:
                self._stopper.check()
                yield cast_batch(batch, schema)


def _rank(
    keys: dict[tuple[str, str], list[str]], schema: str, table: str, column: str
) -> int | None:
    """The column's place in its table's primary key (None: not in it)."""
    key = keys.get((schema, table), [])
    return key.index(column) if column in key else None
