"""MySQL and MariaDB: discovery from information_schema in one query, reads through connectorx.

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
passing through Python, about ten times as fast as PyMySQL's rows. What connectorx converts
exactly is read as it is: integers, floats, binary types, the plain text types (char, varchar,
the text types, enum, set, whatever their character set), dates, datetimes and timestamps. Those
panic on zero dates ('0000-00-00', and dates with a zero or impossible month or day), which ends
the read; one more query (``_invalid_date``) then finds the column and value, so such a value
still fails the column by name, at no cost to the reads without one. The rest is selected as
MySQL's own text (``CAST(... AS CHAR)``) and cast strictly by ``convert.cast_array``: decimals
(connectorx rounds to 10 fractional digits and panics beyond 28 digits; exact ones read natively
measured no faster), times (values outside a day panic) and the other string-mapped types (json,
uuid, inet...: their text is what MySQL prints). Text costs the server a conversion per value:
reading dates and text natively took a third off the server's CPU time on the benchmark table.

The change fingerprint (``fingerprints``) is built from information_schema in three queries for
any number of tables: the engine, ``CREATE_TIME`` and ``UPDATE_TIME`` of each table, InnoDB's
``TABLE_ID`` (a ``TRUNCATE`` makes a new one, and leaves ``UPDATE_TIME`` as it was), and the
columns. ``UPDATE_TIME`` is what changes with rows: InnoDB sets it when a transaction that
modified the table commits (to that transaction's start time, in whole seconds, in memory only),
Aria and MyISAM to the data file's modification time. So a table gets no fingerprint (None,
"changed") when its ``UPDATE_TIME`` is unknown (NULL after a restart, or after InnoDB evicted
the table from its cache, until the next write), within ``SETTLE_SECONDS`` of now, or, for
InnoDB, while a transaction is open that started in the second of ``UPDATE_TIME`` (committing
later, it would set that same second again; one started at another second sets another).
Other engines, views, and InnoDB names with characters beyond letters, digits and ``_`` (InnoDB
stores those encoded) get none either; so do all InnoDB tables when the user may not read
``INNODB_TRX`` (PROCESS privilege). That view is a cache which MariaDB refreshes only when it
has not been read for 0.1 s: a tool polling it faster than that keeps it stale (and may hide a
transaction begun meanwhile).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import ssl
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from contextlib import closing, contextmanager, suppress
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import pyarrow as pa
import pymysql
from sqlalchemy.dialects.mysql.base import MySQLDialect

from refresh.sources.base import (
    Column,
    DiscoveredTable,
    Since,
    Source,
    SourceError,
    single_row,
    tables_of,
)
from refresh.sources.config import MySQLConfigSchema
from refresh.sources.convert import cast_batch, column_error
from refresh.sources.cx_process import ChildRead, prepare
from refresh.sources.driver_errors import source_errors
from refresh.sources.typemap import decimal_type

_SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")

# Once connected, the longest a query may wait for the server in silence. The handshake waits
# ``connect_timeout`` at most; a query (a view's first row, a slow sort) may legitimately take
# much longer, and a refresh job has its own overall timeout above this.
QUERY_IO_TIMEOUT_SECONDS = 600
# Rows per batch: a quarter of BATCH_ROWS, as two processes hold batches here (the child the one
# connectorx is building and those it has ready, the parent its read-ahead); that lowers the peak
# of both together at no cost in time (bench/README.md, "Figures behind the code").
READ_BATCH_ROWS = 16_384
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

# Discovery is two queries, columns and primary keys, matched here: joined in one query,
# information_schema.STATISTICS is read for every table of every database of the server (a block
# nested loop), which made describing one table for a read cost as much as the server's size
# (bench/README.md, "Describing a table costs what the table costs").
_DISCOVERY_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE,
       NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA IN %(schemas)s AND TABLE_SCHEMA NOT IN %(system)s {only}
ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION
"""
_PRIMARY_KEYS_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, SEQ_IN_INDEX
FROM information_schema.STATISTICS
WHERE INDEX_NAME = 'PRIMARY' AND TABLE_SCHEMA IN %(schemas)s AND TABLE_SCHEMA NOT IN %(system)s
  {only}
"""
_ONLY_FILTER = "AND (TABLE_SCHEMA, TABLE_NAME) IN %(only)s"

_DRIVER_ERRORS = (pymysql.MySQLError,)

# Backtick quoting with doubled backticks; ``%`` is kept as is (nothing formats the SELECT).
_quote = MySQLDialect(paramstyle="qmark").identifier_preparer.quote_identifier

# String-mapped types whose values connectorx reads as they are (others are selected as text).
_NATIVE_TEXT = frozenset(
    ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set")
)
# How connectorx's child reports a value its Rust type cannot hold (mysql_common's words).
_UNCONVERTIBLE = "Couldn't convert the value"

# UPDATE_TIME has whole seconds: a table written this recently gives no fingerprint.
SETTLE_SECONDS = 2
_FINGERPRINTED_ENGINES = ("InnoDB", "Aria", "MyISAM")
# Names InnoDB stores as they are in its own dictionary (others are encoded).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]+")
_TABLES_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE, CREATE_TIME, UPDATE_TIME
FROM information_schema.TABLES WHERE (TABLE_SCHEMA, TABLE_NAME) IN %(only)s
"""
# InnoDB's figure is its clustered index (the rows) from its persistent statistics; MySQL 8
# may serve it from a cache (information_schema_stats_expiry): an estimate either way.
_SIZES_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, DATA_LENGTH
FROM information_schema.TABLES
WHERE (TABLE_SCHEMA, TABLE_NAME) IN %(only)s AND TABLE_TYPE = 'BASE TABLE'
"""
_COLUMNS_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE
FROM information_schema.COLUMNS WHERE (TABLE_SCHEMA, TABLE_NAME) IN %(only)s
ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION
"""
# MariaDB's dictionary view, then MySQL 8's.
_INNODB_TABLES = ("INNODB_SYS_TABLES", "INNODB_TABLES")
_INNODB_SQL = """
SELECT NOW(),
       (SELECT JSON_ARRAYAGG(DISTINCT CAST(trx_started AS CHAR))
        FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID()),
       (SELECT JSON_ARRAYAGG(JSON_ARRAY(NAME, TABLE_ID)) FROM information_schema.{view}
        WHERE NAME IN %(names)s)
"""


def _discovered(
    cursor: pymysql.cursors.Cursor, schemas: list[str], only: set[tuple[str, str]] | None
) -> list[DiscoveredTable]:
    """The tables of ``schemas`` (those of ``only`` among them), with their primary keys."""
    params: dict[str, object] = {"schemas": schemas, "system": _SYSTEM_SCHEMAS}
    only_filter = ""
    if only is not None:
        params["only"], only_filter = list(only), _ONLY_FILTER
    cursor.execute(_DISCOVERY_SQL.format(only=only_filter), params)
    rows = cursor.fetchall()
    cursor.execute(_PRIMARY_KEYS_SQL.format(only=only_filter), params)
    ranks = {(schema, table, name): rank for schema, table, name, rank in cursor}
    # information_schema compares names case-insensitively; identifiers are not.
    return tables_of(
        (
            schema,
            table,
            Column(
                name,
                arrow_type(data_type, column_type, precision, scale),
                nullable == "YES",
                column_type,
            ),
            ranks.get((schema, table, name)),
        )
        for schema, table, name, data_type, column_type, precision, scale, nullable in rows
        if schema in schemas and (only is None or (schema, table) in only)
    )


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


class _Connection(pymysql.Connection):
    """PyMySQL's connection, with its preferred-TLS context built once per process.

    PyMySQL builds an ``ssl.create_default_context()`` for every connection, loading the system's
    CA certificates: many times the CPU of the rest of a local handshake, paid by every data
    refresh (describe, handshake check) although that unverified context uses none of them.
    """

    _preferred_tls: ClassVar[ssl.SSLContext | None] = None

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if sslp != {}:  # explicit TLS options (none are configurable today): PyMySQL's own
            return super()._create_ssl_ctx(sslp)
        if _Connection._preferred_tls is None:
            _Connection._preferred_tls = super()._create_ssl_ctx(sslp)
        return _Connection._preferred_tls


class MySQLSource(Source):
    source_type: ClassVar[str] = "mysql"
    config_schema = MySQLConfigSchema

    @property
    def _secrets(self) -> list[str | None]:
        return [self.password]

    @classmethod
    def preload(cls) -> None:
        prepare()  # the reader zygote, for the work horses to share

    def connect(self) -> pymysql.Connection:
        """A UTC, read-only session whose handshake cannot outlast ``connect_timeout``.

        PyMySQL bounds only the TCP connect by ``connect_timeout``; the handshake that follows
        waits ``read_timeout``, so that is set to the connect timeout too, then widened for
        queries (PyMySQL has no public setter; the attributes are what its socket reads use).
        """
        timeout = max(1, math.ceil(self.connect_timeout))
        connection = _Connection(
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
        if only is not None and not only:
            return []
        with (
            source_errors(self._secrets, _DRIVER_ERRORS),
            closing(self.connect()) as connection,
            connection.cursor() as cursor,
        ):
            if only is None:
                return _discovered(cursor, schemas, None)
            wanted = set(only)
            tables = _discovered(cursor, schemas, wanted)
            # information_schema looks names up without case (and accents): of two tables whose
            # names differ only so, asked together, it finds one. The others are asked alone.
            if tables:  # a name can only have been shadowed by one that was found
                for name in sorted(wanted.difference(t.key for t in tables)):
                    tables += _discovered(cursor, schemas, {name})
            return tables

    def fingerprints(
        self, tables: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        result: dict[tuple[str, str], str | None] = dict.fromkeys(tables)
        if not tables:
            return result
        only = [tuple(pair) for pair in tables]
        with (
            source_errors(self._secrets, _DRIVER_ERRORS),
            closing(self.connect()) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(_TABLES_SQL, {"only": only})
            found = {(row[0], row[1]): row for row in cursor.fetchall()}
            cursor.execute(_COLUMNS_SQL, {"only": only})
            columns: dict[tuple[str, str], list[list[object]]] = defaultdict(list)
            for schema, table, *column in cursor.fetchall():
                columns[schema, table].append(list(column))
            names = [f"{schema}/{table}" for schema, table in found] or [""]
            innodb = self._innodb(cursor, names)
        now, open_since, table_ids = innodb
        for key, (_, _, table_type, engine, created, updated) in found.items():
            if key not in result or table_type != "BASE TABLE":
                continue  # information_schema compares names case-insensitively
            if engine not in _FINGERPRINTED_ENGINES or updated is None or now is None:
                continue
            if (now - updated).total_seconds() < SETTLE_SECONDS:
                continue
            table_id = None
            if engine == "InnoDB":
                table_id = table_ids.get(f"{key[0]}/{key[1]}")
                if not all(_PLAIN_NAME.fullmatch(name) for name in key) or table_id is None:
                    continue
                if str(updated) in open_since:
                    continue
            parts = [engine, str(created), str(updated), table_id, columns[key]]
            digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
            result[key] = f"my1:{digest}"
        return result

    def _table_sizes(self, tables: list[tuple[str, str]]) -> Iterable[tuple[str, str, Any]]:
        with (
            source_errors(self._secrets, _DRIVER_ERRORS),
            closing(self.connect()) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute(_SIZES_SQL, {"only": tables})
            return cursor.fetchall()

    def _innodb(
        self, cursor: pymysql.cursors.Cursor, names: list[str]
    ) -> tuple[datetime | None, set[str], dict[str, int]]:
        """The server's time, the start times (whole seconds, as text) of its open transactions
        but ours, and the InnoDB ids of the tables ``names`` (``schema/table``); no time at all
        (no fingerprints) when the user may not read InnoDB's views."""
        for view in _INNODB_TABLES:
            try:
                cursor.execute(_INNODB_SQL.format(view=view), {"names": names})
            except pymysql.MySQLError:
                continue
            now, started, ids = cursor.fetchone()
            table_ids = {name: table_id for name, table_id in json.loads(ids or "[]")}
            return now, set(json.loads(started or "[]")), table_ids
        return None, set(), {}

    def run_check(self, sql: str) -> tuple[object, ...]:
        self._stopper.check()
        marker = f"refresh-service check {uuid.uuid4().hex}"
        with (
            source_errors(self._secrets, _DRIVER_ERRORS),
            closing(self.connect()) as connection,
            connection.cursor() as cursor,
            self._stopper.on_interrupt(lambda: self._kill_query(marker)),
            self._stopper.explaining(),
        ):
            cursor.execute("START TRANSACTION READ ONLY")
            # The marker names the statement for KILL QUERY; nothing formats the SQL.
            cursor.execute(f"/* {marker} */ {sql}", None)
            rows = cursor.fetchmany(2)
            connection.rollback()
        return single_row(rows)

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
    def read(
        self, table: DiscoveredTable, since: Since | None = None
    ) -> Iterator[Iterator[pa.RecordBatch]]:
        self._stopper.check()
        # Names the statement in the server's process list, for KILL QUERY from another session.
        marker = f"refresh-service read {uuid.uuid4().hex}"
        columns = ", ".join(_select_item(column) for column in table.columns)
        sql = f"SELECT /* {marker} */ {columns} FROM {_table_name(table)}"
        if since is not None:
            sql += f" WHERE {since.condition(_quote)}"
        # The reader, forked now, sets itself up while the handshake below runs.
        child = ChildRead(self._secrets)
        sent = finished = False
        try:
            # connectorx's pool retries a refused login or a silent server for 30 s, whatever the
            # connect timeout: one PyMySQL handshake first fails those fast and in the driver's
            # words.
            with source_errors(self._secrets, _DRIVER_ERRORS):
                self.connect().close()
            child.start(self._connectorx_url(), sql, self._session_setup(), READ_BATCH_ROWS)
            sent = True

            def stop() -> None:
                # Killing the reader ends the blocked read at once, even from a frozen host;
                # KILL QUERY then goes through a session bounded by the connect timeout.
                child.stop()
                self._kill_query(marker)

            with self._stopper.on_interrupt(stop):
                yield self._batches(child, table, marker)
            finished = True
        finally:
            child.close()
            if sent and not finished and not self._stopper.requested:
                # Abandoned: the server would otherwise finish a long query for nobody.
                self._kill_query(marker)

    def _batches(
        self, child: ChildRead, table: DiscoveredTable, marker: str
    ) -> Iterator[pa.RecordBatch]:
        schema = table.arrow_schema()
        with self._stopper.explaining():
            try:
                for batch in child.batches():
                    self._stopper.check()
                    yield cast_batch(batch, schema)
            except SourceError as error:
                if _UNCONVERTIBLE not in str(error) or self._stopper.requested:
                    raise
                raise self._invalid_date(table, marker) or error from None

    def _invalid_date(self, table: DiscoveredTable, marker: str) -> SourceError | None:
        """The error naming the first natively read column holding a zero or impossible date.

        None when no such value is there any more (changed since) or the query fails: the
        child's own message then stands, which shows the value but not the column.
        """
        dates = [column for column in table.columns if _native_temporal(column)]
        if not dates:
            return None
        invalid = [_invalid_date_sql(_quote(column.name)) for column in dates]
        values = ", ".join(f"CAST({_quote(column.name)} AS CHAR)" for column in dates)
        sql = (
            f"SELECT /* {marker} */ {', '.join(invalid)}, {values} FROM {_table_name(table)} "
            f"WHERE {' OR '.join(invalid)} LIMIT 1"
        )
        try:
            with (
                source_errors(self._secrets, _DRIVER_ERRORS),
                closing(self.connect()) as connection,
                connection.cursor() as cursor,
            ):
                cursor.execute(sql)
                row = cursor.fetchone()
        except SourceError:
            return None
        if row is None:
            return None
        flags, texts = row[: len(dates)], row[len(dates) :]
        column, text = next((c, t) for c, f, t in zip(dates, flags, texts, strict=True) if f)
        return column_error(column.name, f"{text!r} is not a valid date")

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


def _table_name(table: DiscoveredTable) -> str:
    return f"{_quote(table.schema_name)}.{_quote(table.table_name)}"


def _select_item(column: Column) -> str:
    """The column as connectorx reads it exactly: as it is, or as MySQL's text."""
    name = _quote(column.name)
    kind = column.arrow_type
    if pa.types.is_string(kind):
        data_type = column.native_type.split("(", 1)[0].split(" ", 1)[0].lower()
        native = data_type in _NATIVE_TEXT
    else:
        native = not (pa.types.is_decimal(kind) or pa.types.is_time(kind))
    return name if native else f"CAST({name} AS CHAR)"


def _native_temporal(column: Column) -> bool:
    return pa.types.is_date(column.arrow_type) or pa.types.is_timestamp(column.arrow_type)


def _invalid_date_sql(name: str) -> str:
    """True for the dates connectorx cannot hold: zero month or day, or a day past the month's."""
    return (
        f"(MONTH({name}) = 0 OR DAYOFMONTH({name}) = 0 "
        f"OR DAYOFMONTH({name}) > DAYOFMONTH(LAST_DAY({name})))"
    )
