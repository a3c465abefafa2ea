"""MySQL and MariaDB: discovery from information_schema in one query, reading through SQLAlchemy.

Type mapping (``arrow_type``): integers keep width and signedness (tinyint -> int8, unsigned ->
uint*, ``tinyint(1)``/BOOL included, since it can hold -128..127), mediumint -> int32, year ->
int16, ``decimal(p, s)`` -> decimal128(p, s) (decimal256 beyond 38 digits), float -> float32,
double -> float64, date -> date32, datetime -> timestamp[us], timestamp -> timestamp[us, tz=UTC]
(the session runs with time_zone '+00:00', so the server hands out UTC), time -> time64[us]
(MySQL's TIME is a duration: values outside 00:00..24:00 fail the column), binary types, blobs,
bit(n) and spatial types (WKB) -> binary, everything else (text types, enum, set, json, uuid,
inet) -> string. Zero dates ('0000-00-00') fail the column: they are not dates.

Both discovery and reads use PyMySQL connections made by ``connect``; reads go through a
SQLAlchemy ``mysql+pymysql`` engine with a streaming (SSCursor) SELECT, see ``sql_stream``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, closing, suppress
from typing import ClassVar

import pyarrow as pa
import pymysql
import pymysql.cursors
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from refresh.sources.base import Column, DiscoveredTable, Source
from refresh.sources.config import MySQLConfigSchema
from refresh.sources.errors import source_errors
from refresh.sources.sql_stream import stream_table
from refresh.sources.typemap import decimal_type

_SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")

# Once connected, the longest a query may wait for the server in silence. The handshake waits
# ``connect_timeout`` at most; a query (a view's first row, a slow sort) may legitimately take
# much longer, and a refresh job has its own overall timeout above this.
QUERY_IO_TIMEOUT_SECONDS = 600
# The server drops a streaming client that has not read for this long; the consumer may pause
# between batches (writing a Parquet row group, uploading a part), so allow it generously.
_NET_WRITE_TIMEOUT_SECONDS = 3600

_INTEGERS: dict[str, tuple[pa.DataType, pa.DataType]] = {
    "tinyint": (pa.int8(), pa.uint8()),
    "smallint": (pa.int16(), pa.uint16()),
    "mediumint": (pa.int32(), pa.uint32()),
    "int": (pa.int32(), pa.uint32()),
    "bigint": (pa.int64(), pa.uint64()),
}
_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "year": pa.int16(),
    "float": pa.float32(),
    "double": pa.float64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "time": pa.time64("us"),
    **dict.fromkeys(
        (
            "binary",
            "varbinary",
            "tinyblob",
            "blob",
            "mediumblob",
            "longblob",
            "bit",
            "geometry",
            "point",
            "linestring",
            "polygon",
            "multipoint",
            "multilinestring",
            "multipolygon",
            "geometrycollection",
        ),
        pa.binary(),
    ),
}

_DISCOVERY_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE,
       NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA IN %(schemas)s AND TABLE_SCHEMA NOT IN %(system)s {only}
ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION
"""
_ONLY_FILTER = "AND (TABLE_SCHEMA, TABLE_NAME) IN %(only)s"

_DRIVER_ERRORS = (pymysql.MySQLError, SQLAlchemyError)


def arrow_type(
    data_type: str, column_type: str, precision: int | None, scale: int | None
) -> pa.DataType:
    data_type = data_type.lower()
    if data_type in _INTEGERS:
        signed, unsigned = _INTEGERS[data_type]
        return unsigned if "unsigned" in column_type.lower() else signed
    if data_type == "decimal" and precision is not None:
        return decimal_type(precision, scale or 0)
    return _SIMPLE_TYPES.get(data_type, pa.string())


class MySQLSource(Source):
    source_type: ClassVar[str] = "mysql"
    config_schema = MySQLConfigSchema

    @property
    def _secrets(self) -> list[str | None]:
        return [self.password]

    def connect(self) -> pymysql.Connection:
        """A UTC, read-only session whose handshake cannot outlast ``connect_timeout``.

        PyMySQL bounds only the TCP connect by ``connect_timeout``; the handshake that follows
        waits ``read_timeout``, so that is set to the connect timeout too, then widened for
        queries (PyMySQL has no public setter; the attributes are what its socket reads use).
        """
        timeout = max(1, math.ceil(self.connect_timeout))
        connection = pymysql.connect(
            host=self.config["host"],
            port=self.config["port"],
            user=self.config["user"],
            password=self.password or "",
            database=self.config["database"],
            charset="utf8mb4",
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
        )
        connection._read_timeout = connection._write_timeout = QUERY_IO_TIMEOUT_SECONDS
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SET SESSION time_zone = '+00:00', SESSION net_write_timeout = %s",
                    (_NET_WRITE_TIMEOUT_SECONDS,),
                )
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
        except BaseException:
            connection.close()
            raise
        return connection

    def discover(self, only: Collection[tuple[str, str]] | None = None) -> list[DiscoveredTable]:
        schemas = list(self.config.get("schemas") or [self.config["database"]])
        params: dict[str, object] = {"schemas": schemas, "system": _SYSTEM_SCHEMAS}
        if only is not None:
            if not only:
                return []
            params["only"] = [tuple(pair) for pair in only]
        sql = _DISCOVERY_SQL.format(only=_ONLY_FILTER if only is not None else "")
        with (
            source_errors(self._secrets, _DRIVER_ERRORS),
            closing(self.connect()) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        # information_schema compares names case-insensitively; identifiers are not.
        wanted = set(only) if only is not None else None
        columns: dict[tuple[str, str], list[Column]] = defaultdict(list)
        for schema, table, name, data_type, column_type, precision, scale, nullable in rows:
            if schema not in schemas or (wanted is not None and (schema, table) not in wanted):
                continue
            columns[schema, table].append(
                Column(
                    name,
                    arrow_type(data_type, column_type, precision, scale),
                    nullable == "YES",
                    column_type,
                )
            )
        return [DiscoveredTable(s, t, tuple(cols)) for (s, t), cols in columns.items()]

    def read(self, table: DiscoveredTable) -> AbstractContextManager[Iterator[pa.RecordBatch]]:
        engine = create_engine("mysql+pymysql://", creator=self.connect, poolclass=NullPool)
        return stream_table(engine, table, self._secrets, _DRIVER_ERRORS, self._interrupt)

    def _interrupt(self, cursor: pymysql.cursors.SSCursor | None) -> None:
        """Stop an abandoned SELECT: PyMySQL would otherwise read every remaining row on close.

        ``KILL QUERY`` from a second session makes the server end the stream with an error
        packet, which the cursor's close consumes (and raises). A statement that already ended
        is not affected, and its connection is discarded right after either way.
        """
        if cursor is None or cursor.connection is None:
            return
        if not cursor.connection.open:
            # The driver dropped the socket after an error (a killed connection): nothing to
            # stop, and the unfinished result must not try to drain that socket when collected.
            if cursor._result is not None:
                cursor._result.unbuffered_active = False
            cursor.connection = None
            return
        with closing(self.connect()) as killer, killer.cursor() as statement:
            statement.execute("KILL QUERY %s", (cursor.connection.thread_id(),))
        with suppress(pymysql.OperationalError):  # 1317: Query execution was interrupted
            cursor.close()
