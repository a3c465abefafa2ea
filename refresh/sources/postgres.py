"""PostgreSQL: discovery with psycopg in one catalog query, reading with ADBC (binary COPY).

Type mapping (``arrow_type``), on the base type of domains:

- ``int2``/``int4``/``int8`` -> int16/int32/int64, ``float4``/``float8`` -> float32/float64,
  ``bool``, ``bytea`` -> binary, ``date`` -> date32, ``time`` -> time64[us],
  ``timestamp`` -> timestamp[us], ``timestamptz`` -> timestamp[us, tz=UTC];
- ``numeric(p, s)`` -> decimal128(p, s) (decimal256 beyond 38 digits); unconstrained ``numeric``
  -> decimal128(38, 9) (``typemap.UNCONSTRAINED_DECIMAL``): a value with more digits, ``NaN`` or
  ``Infinity`` fails the column instead of being rounded;
- ``text``/``varchar``/``char`` and everything else (json, jsonb, uuid, enums, arrays, interval,
  money, timetz, inet, ranges, ...) -> string, as PostgreSQL's own text output.

Reading is one ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` that ADBC turns into Arrow batches
in C++, outside the GIL, so it is one consistent snapshot and no value passes through Python.
Columns read as strings are cast with ``::text`` in the SELECT, so ADBC returns strings instead
of extension types; so are numerics: PostgreSQL's ``numeric_out`` on the server plus pyarrow's
string-to-decimal cast is about three times faster than ADBC's own numeric decoding (measured on
the benchmark table), and the cast refuses any value that would lose digits.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Collection, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc
import psycopg
import pyarrow as pa
from sqlalchemy.dialects.postgresql.base import PGDialect

from refresh.sources.base import BATCH_ROWS, Column, DiscoveredTable, Source
from refresh.sources.config import PostgresConfigSchema
from refresh.sources.convert import cast_batch, read_as_text
from refresh.sources.errors import source_errors
from refresh.sources.typemap import UNCONSTRAINED_DECIMAL, decimal_type

_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "bytea": pa.binary(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}

# Server settings that make the text output of cast columns independent of the server's
# configuration, and make the session unable to write (guarantee 5, defence in depth).
_SESSION_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO -c default_transaction_read_only=on"

# Identifiers are quoted by PostgreSQL's dialect; a non-pyformat paramstyle keeps ``%`` as is,
# since ADBC sends the text unformatted.
_quote = PGDialect(paramstyle="qmark").identifier_preparer.quote_identifier

# One query for every column of every table, view, materialized view, foreign table and
# partitioned table (not its partitions). Domains, even nested, resolve to their base type and
# the first type modifier met on the way down (the domain's ``numeric(12,2)``).
_DISCOVERY_SQL = """
WITH RECURSIVE domain_base AS (
    SELECT t.oid AS domain_oid, t.typbasetype AS base_oid, t.typtypmod AS base_typmod
    FROM pg_catalog.pg_type t WHERE t.typtype = 'd'
  UNION ALL
    SELECT d.domain_oid, t.typbasetype,
           CASE WHEN d.base_typmod = -1 THEN t.typtypmod ELSE d.base_typmod END
    FROM domain_base d JOIN pg_catalog.pg_type t ON t.oid = d.base_oid AND t.typtype = 'd'
)
SELECT n.nspname, c.relname, a.attname, a.attnotnull,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       coalesce(bt.typname, t.typname),
       CASE WHEN a.atttypmod <> -1 OR db.domain_oid IS NULL THEN a.atttypmod
            ELSE db.base_typmod END
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN domain_base db ON db.domain_oid = t.oid
    AND NOT EXISTS (SELECT FROM pg_catalog.pg_type x WHERE x.oid = db.base_oid AND x.typtype = 'd')
LEFT JOIN pg_catalog.pg_type bt ON bt.oid = db.base_oid
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
  {filters}
ORDER BY n.nspname, c.relname, a.attnum
"""
_SCHEMA_FILTER = "AND n.nspname = ANY(%(schemas)s)"
_ONLY_FILTER = (
    "AND (n.nspname, c.relname) IN "
    "(SELECT * FROM unnest(%(only_schemas)s::text[], %(only_tables)s::text[]))"
)

# By default ADBC loads every type of the database when it connects, each table's row type and
# columns included: 3.4 s per connection with 10,000 tables. The SELECT only produces built-in
# types (everything else is cast to text), so the built-in table is all it needs.
_ADBC_DATABASE_OPTIONS = {"adbc.postgresql.type_resolver_mode": "builtin"}

# ADBC sizes its batches in bytes (16 MiB by default). 4 MiB batches are as fast on the benchmark
# table and take about 20 MB off the peak memory of a refresh (batches are read ahead, see
# refresh.prefetch).
_ADBC_STATEMENT_OPTIONS = {"adbc.postgresql.batch_size_hint_bytes": str(4 * 1024 * 1024)}

# An error of the server in the middle of the COPY reaches Python as the OSError of pyarrow's
# stream reader.
_DRIVER_ERRORS = (psycopg.Error, adbc_driver_manager.Error, pa.ArrowException, OSError)


@functools.cache  # few distinct (type, typmod) pairs among the 100,000 columns of a big source
def arrow_type(type_name: str, typmod: int) -> pa.DataType:
    """The Arrow type of a column whose (base) type is ``type_name`` with modifier ``typmod``."""
    if type_name == "numeric":
        if typmod < 0:
            return UNCONSTRAINED_DECIMAL
        # numeric's typmod: ((precision << 16) | scale) + 4, the scale an 11-bit signed integer.
        precision = ((typmod - 4) >> 16) & 0xFFFF
        scale = (((typmod - 4) & 0x7FF) ^ 1024) - 1024
        return decimal_type(precision, scale)
    return _SIMPLE_TYPES.get(type_name, pa.string())


def _select_item(column: Column) -> str:
    name = _quote(column.name)
    if read_as_text(column):
        return f"{name}::text"
    return name


class PostgresSource(Source):
    source_type: ClassVar[str] = "postgres"
    config_schema = PostgresConfigSchema

    @property
    def _secrets(self) -> list[str | None]:
        return [self.password]

    def _timeout_seconds(self) -> int:
        # libpq takes whole seconds (and psycopg, like libpq, waits at least 2).
        return max(1, math.ceil(self.connect_timeout))

    def discover(self, only: Collection[tuple[str, str]] | None = None) -> list[DiscoveredTable]:
        filters, params = [], {}
        if self.config.get("schemas"):
            filters.append(_SCHEMA_FILTER)
            params["schemas"] = list(self.config["schemas"])
        if only is not None:
            filters.append(_ONLY_FILTER)
            params["only_schemas"] = [schema for schema, _ in only]
            params["only_tables"] = [table for _, table in only]
        sql = _DISCOVERY_SQL.format(filters="\n  ".join(filters))
        with (
            source_errors(self._secrets, _DRIVER_ERRORS),
            psycopg.connect(
                host=self.config["host"],
                port=self.config["port"],
                user=self.config["user"],
                password=self.password,
                dbname=self.config["database"],
                connect_timeout=self._timeout_seconds(),
                options=_SESSION_OPTIONS,
                autocommit=True,
            ) as connection,
        ):
            rows = connection.execute(sql, params).fetchall()
        columns: dict[tuple[str, str], list[Column]] = defaultdict(list)
        for schema, table, name, not_null, native, type_name, typmod in rows:
            columns[schema, table].append(
                Column(name, arrow_type(type_name, typmod), not not_null, native)
            )
        return [
            DiscoveredTable(schema, table, tuple(cols)) for (schema, table), cols in columns.items()
        ]

    def _adbc_uri(self) -> str:
        """A libpq URI with every part in the query string, percent-encoded (no host quirks)."""
        params: dict[str, Any] = {
            "host": self.config["host"],
            "port": self.config["port"],
            "dbname": self.config["database"],
            "user": self.config["user"],
            "connect_timeout": self._timeout_seconds(),
            "options": _SESSION_OPTIONS,
            "application_name": "refresh-service",
        }
        if self.password is not None:
            params["password"] = self.password
        return "postgresql://?" + urlencode(params, quote_via=quote)

    @contextmanager
    def read(self, table: DiscoveredTable) -> Iterator[Iterator[pa.RecordBatch]]:
        columns = ", ".join(_select_item(column) for column in table.columns)
        sql = f"SELECT {columns} FROM {_quote(table.schema_name)}.{_quote(table.table_name)}"
        with ExitStack() as stack:
            with source_errors(self._secrets, _DRIVER_ERRORS):
                connection = stack.enter_context(
                    adbc.connect(self._adbc_uri(), db_kwargs=_ADBC_DATABASE_OPTIONS)
                )
                cursor = stack.enter_context(connection.cursor())
                cursor.adbc_statement.set_options(**_ADBC_STATEMENT_OPTIONS)
                cursor.execute(sql)
                reader = cursor.fetch_record_batch()
            yield self._batches(reader, table.arrow_schema())

    def _batches(self, reader: pa.RecordBatchReader, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        with source_errors(self._secrets, _DRIVER_ERRORS):
            for batch in reader:
                # ADBC sizes batches in bytes; slices (zero-copy) keep at most BATCH_ROWS.
                for offset in range(0, batch.num_rows, BATCH_ROWS):
                    yield cast_batch(batch.slice(offset, BATCH_ROWS), schema)
