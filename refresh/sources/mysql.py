"""MySQL and MariaDB: discovery from information_schema in one query, reading through SQLAlchemy.

Type mapping (``arrow_type``): integers keep width and signedness (tinyint -> int8, unsigned ->
uint*, ``tinyint(1)``/BOOL included, since it can hold -128..127), mediumint -> int32, year ->
int16, ``decimal(p, s)`` -> decimal128(p, s) (decimal256 beyond 38 digits), float -> float32,
double -> float64, date -> date32, datetime -> timestamp[us], timestamp -> timestamp[us, tz=UTC]
(the session runs with time_zone '+00:00', so the server hands out UTC), time -> time64[us]
(MySQL's TIME is a duration: values outside 00:00..24:00 fail the column), binary types, blobs,
bit(n) and spatial types (WKB) -> binary, everything else (text types, enum, set, json, uuid,
inet) -> string. Zero dates ('0000-00-00') fail the column: they are not dates.

Discovery uses PyMySQL (one query). Reads use connectorx (Rust) in a child process, see
``cx_process``: one SELECT, so one consistent snapshot, streamed as Arrow batches with no value
passing through Python, about ten times as fast as PyMySQL's rows. Columns connectorx would
convert lossily or panic on are read as text and cast strictly by ``convert.cast_array``: decimals
(connectorx rounds to 10 fractional digits and panics beyond 28 digits), dates, datetimes and
timestamps (zero dates panic), times (values outside a day panic) and every string-mapped type
(enum, set, json, uuid, inet...), as MySQL's own text output in the UTC session.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from typing import Any, ClassVar
from urllib.parse import quote

import pyarrow as pa
import pymysql
from sqlalchemy.dialects.mysql.base import MySQLDialect

from refresh.sources.base import BATCH_ROWS, Column, DiscoveredTable, Source
from refresh.sources.config import MySQLConfigSchema
from refresh.sources.convert import cast_batch
from refresh.sources.cx_process import ChildRead
from refresh.sources.errors import source_errors
from refresh.sources.interrupt import ReadStopper
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

_DRIVER_ERRORS = (pymysql.MySQLError,)

# Backtick quoting with doubled backticks; ``%`` is kept as is (nothing formats the SELECT).
_quote = MySQLDialect(paramstyle="qmark").identifier_preparer.quote_identifier


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

    def __init__(
        self, config: Mapping[str, Any], password: str | None, connect_timeout: float
    ) -> None:
        super().__init__(config, password, connect_timeout)
        self._stopper = ReadStopper()

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

    def _session_setup(self) -> list[str]:
        return [
            "SET time_zone = '+00:00'",
            f"SET SESSION net_write_timeout = {_NET_WRITE_TIMEOUT_SECONDS}",
            "SET SESSION TRANSACTION READ ONLY",
        ]

    def _connectorx_url(self) -> str:
        """connectorx's URL; ``prefer_socket=false`` keeps it on the configured host and port.

        (The Rust driver otherwise asks the server for its Unix socket and reconnects through it,
        bypassing whatever sits on the configured address.)
        """
        host = self.config["host"]
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        user = quote(self.config["user"], safe="")
        password = quote(self.password or "", safe="")
        database = quote(self.config["database"], safe="")
        timeout_ms = max(1, math.ceil(self.connect_timeout)) * 1000
        return (
            f"mysql://{user}:{password}@{host}:{self.config['port']}/{database}"
            f"?prefer_socket=false&tcp_connect_timeout_ms={timeout_ms}"
        )

    @contextmanager
    def read(self, table: DiscoveredTable) -> Iterator[Iterator[pa.RecordBatch]]:
        self._stopper.check()
        # Names the statement in the server's process list, for KILL QUERY from another session.
        marker = f"refresh-service read {uuid.uuid4().hex}"
        columns = ", ".join(_select_item(column) for column in table.columns)
        sql = (
            f"SELECT /* {marker} */ {columns} "
            f"FROM {_quote(table.schema_name)}.{_quote(table.table_name)}"
        )
        # connectorx's pool retries a refused login or a silent server for 30 s, whatever the
        # connect timeout: one PyMySQL handshake first fails those fast and in the driver's words.
        with source_errors(self._secrets, _DRIVER_ERRORS):
            self.connect().close()
        child = ChildRead(
            self._connectorx_url(), sql, self._session_setup(), BATCH_ROWS, self._secrets
        )
        finished = False
        try:

            def stop() -> None:
                child.stop()
                self._kill_query(marker)

            with self._stopper.on_interrupt(stop):
                yield self._batches(child, table.arrow_schema())
            finished = True
        finally:
            child.close()
            if not finished and not self._stopper.requested:
                # Abandoned: the server would otherwise finish a long query for nobody.
                self._kill_query(marker)

    def _batches(self, child: ChildRead, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        with self._stopper.explaining():
            for batch in child.batches():
                self._stopper.check()
                yield cast_batch(batch, schema)

    def interrupt(self) -> None:
        """Kill the reading child process, then the query on the server.

        Killing the child ends the blocked read at once, even when the host is frozen. ``KILL
        QUERY`` goes through a second session whose connect and handshake are bounded by the
        connect timeout, so a frozen host costs at most that long.
        """
        self._stopper.interrupt()

    def _kill_query(self, marker: str) -> None:
        """``KILL QUERY`` for the statement carrying ``marker``; best effort, errors dropped."""
        with suppress(pymysql.MySQLError, OSError), closing(self.connect()) as killer:
            killer._read_timeout = killer._write_timeout = max(1, math.ceil(self.connect_timeout))
            with killer.cursor() as cursor:
                cursor.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST "
                    "WHERE ID <> CONNECTION_ID() AND INFO LIKE %s",
                    (f"%{marker}%",),
                )
                for (thread_id,) in cursor.fetchall():
                    with suppress(pymysql.MySQLError):
                        cursor.execute("KILL QUERY %s", (thread_id,))


def _select_item(column: Column) -> str:
    name = _quote(column.name)
    kind = column.arrow_type
    if pa.types.is_string(kind) or pa.types.is_decimal(kind) or pa.types.is_temporal(kind):
        return f"CAST({name} AS CHAR)"
    return name
