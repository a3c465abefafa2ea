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

Reading is ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` that ADBC turns into Arrow batches
in C++, outside the GIL, so no value passes through Python. A table large enough is split into
ranges of pages read by several such streams at once, under one exported snapshot (see
``_TableRead``): the PostgreSQL backends, ADBC's decoding and the Parquet writer then work on
every core instead of waiting for each other.

Columns read as strings are cast with ``::text`` in the SELECT, so ADBC returns strings instead
of extension types; so are numerics: PostgreSQL's ``numeric_out`` on the server plus pyarrow's
string-to-decimal cast is about three times faster than ADBC's own numeric decoding (measured on
the benchmark table), and the cast refuses any value that would lose digits.

The change fingerprint (``fingerprints``, one query for any number of tables, after a wait for
statistics to settle) hashes, per table: its oid and its ``pg_class`` row version (``xmin``: a
new one on most DDL, e.g. ``ADD COLUMN``), its columns, and for the table and every table that
inherits from it (partitions, inheritance children: a SELECT reads them too) the relfilenode (a
new one on ``TRUNCATE``, ``REFRESH MATERIALIZED VIEW``, rewriting DDL) and the cumulative
statistics ``n_tup_ins``, ``n_tup_upd``, ``n_tup_del`` (aborted writes count too); plus what
tells a statistics reset (``pg_stat_database.stats_reset``, set by ``pg_stat_reset()`` and
``pg_stat_reset_single_table_counters()``; ``pg_stat_bgwriter.stats_reset``, set when a crash
recovery discards statistics; the postmaster's start time). Views and foreign tables get none.

The statistics lag (PostgreSQL 15's cumulative statistics, pgstat.c and postgres.c): a session
adds its counts to the shared statistics when it goes idle outside a transaction, at most once a
second (``PGSTAT_MIN_INTERVAL``); counts held back then are flushed by a timer 10 s later
(``PGSTAT_IDLE_INTERVAL``) if the session is still idle, or when it next goes idle; a session
that starts another statement or transaction first keeps them until it is idle again, however
long that takes. So before reading the counters, ``_settle`` waits (up to
``SETTLE_WAIT_SECONDS``) until every other session of the database present at the start has
been idle for ``SETTLED_IDLE_SECONDS`` (its counts flushed) or is gone (a session flushes when
it ends); sessions that start meanwhile only hold later writes. The service's own sessions
(its ``application_name``s) are not waited for: they are read-only
(``default_transaction_read_only``), and a batch's reads would otherwise keep the counts from
ever looking settled. If that does not happen in time
(a session busy or in a transaction all along), or ``track_counts`` is off, every table gets no
fingerprint ("changed"). Reading other users' sessions needs ``pg_read_all_stats``; without it
they cannot be seen settled either. A superuser session that turns ``track_counts`` off for
itself writes unseen: no fingerprint can tell, only a ``check_sql``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import adbc_driver_manager
import adbc_driver_postgresql
import psycopg
import pyarrow as pa
from sqlalchemy.dialects.postgresql.base import PGDialect

from refresh.common.kept import Kept
from refresh.sources import adbc
from refresh.sources.base import (
    BATCH_ROWS,
    Column,
    DiscoveredTable,
    Since,
    Source,
    SourceError,
    single_row,
    tables_of,
)
from refresh.sources.config import PostgresConfigSchema
from refresh.sources.convert import cast_batch, read_as_text
from refresh.sources.driver_errors import source_errors
from refresh.sources.fan_in import FanIn
from refresh.sources.interrupt import INTERRUPTED
from refresh.sources.typemap import UNCONSTRAINED_DECIMAL, decimal_type

log = logging.getLogger(__name__)

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

# How the service's sessions name themselves (pg_stat_activity): its reads, and its catalog
# queries (discovery, read plans, change checks).
READS_APPLICATION_NAME = "refresh-service"
QUERIES_APPLICATION_NAME = "refresh-service/queries"
APPLICATION_NAMES = (READS_APPLICATION_NAME, QUERIES_APPLICATION_NAME)

# Server settings that make the text output of cast columns independent of the server's
# configuration, and make the session unable to write (guarantee 5, defence in depth).
_SESSION_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO -c default_transaction_read_only=on"

# Identifiers are quoted by PostgreSQL's dialect; a non-pyformat paramstyle keeps ``%`` as is,
# since ADBC sends the text unformatted.
_quote = PGDialect(paramstyle="qmark").identifier_preparer.quote_identifier

# One query for every column of every table, view, materialized view, foreign table and
# partitioned table (not its partitions), or of the relations asked for. Domains, even nested,
# resolve to their base type and the first type modifier met on the way down (the domain's
# ``numeric(12,2)``).
_DISCOVERY_SQL = """
WITH RECURSIVE domain_base AS (
    SELECT t.oid AS domain_oid, t.typbasetype AS base_oid, t.typtypmod AS base_typmod
    FROM pg_catalog.pg_type t WHERE t.typtype = 'd' {domains}
  UNION ALL
    SELECT d.domain_oid, t.typbasetype,
           CASE WHEN d.base_typmod = -1 THEN t.typtypmod ELSE d.base_typmod END
    FROM domain_base d JOIN pg_catalog.pg_type t ON t.oid = d.base_oid AND t.typtype = 'd'
)
SELECT n.nspname, c.relname, a.attname, a.attnotnull,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       coalesce(bt.typname, t.typname),
       CASE WHEN a.atttypmod <> -1 OR db.domain_oid IS NULL THEN a.atttypmod
            ELSE db.base_typmod END,
       array_position(pk.indkey::int2[], a.attnum),
       {split_pages}
FROM {relations}
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
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
_ALL_RELATIONS = """pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"""
# The relations asked for, looked up by name (pg_class's index on relname and namespace): a
# filter on the whole catalog's rows would read the columns of every table of the database, a
# cost that grows with the source's size for a read of one table.
_ONLY_RELATIONS = """(
    SELECT DISTINCT * FROM unnest(%(only_schemas)s::text[], %(only_tables)s::text[])
) AS w(schema_name, table_name)
JOIN pg_catalog.pg_namespace n ON n.nspname = w.schema_name
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.table_name"""
# ...and the domains their columns use: finding every domain scans pg_type, two rows a table.
_ONLY_DOMAINS = f"""AND t.oid IN (
        SELECT a.atttypid FROM {_ONLY_RELATIONS}
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid)"""

# By default ADBC loads every type of the database when it connects, each table's row type and
# columns included: seconds per connection on a database of many tables. The SELECT only
# produces built-in types (everything else is cast to text), so the built-in table is all it
# needs.
_ADBC_DATABASE_OPTIONS = {"adbc.postgresql.type_resolver_mode": "builtin"}

# ADBC sizes its batches in bytes (16 MiB by default). Each stream holds a batch or two (one being
# built, one waiting for the writer), so the streams of a read share a budget: 4 MiB batches for
# one or two streams, 2 MiB for four. Smaller batches cost nothing in speed down to that size and
# lower the peak memory of a refresh; below it they slow two streams down (bench/README.md,
# "Figures behind the code").
_BATCH_BYTES_BUDGET = 8 * 1024 * 1024
_BATCH_BYTES_MIN, _BATCH_BYTES_MAX = 2 * 1024 * 1024, 4 * 1024 * 1024

# A table is split into ranges of at least this many pages (8 MiB); one smaller than two such
# ranges is read by one stream, since a connection costs more than it saves there.
MIN_RANGE_PAGES = 1024
# Ranges per stream; handed out as streams finish, so one slow range does not hold up the rest.
_RANGES_PER_STREAM = 4
# Batches each stream may have waiting for the writer (beside the one it holds): the writer has
# read-ahead of its own, and every batch waiting is memory (2 to 4 MiB).
_BATCHES_PER_STREAM = 1
_POLL_SECONDS = 0.1

# Whether the relation has pages to split (tables and materialized views have a ctid; views,
# foreign and partitioned tables do not), and how many. A standby reads one stream: importing a
# snapshot exported during recovery is where PostgreSQL has had bugs.
# The pages a read may split a relation ``c`` into: 0 for what cannot be split by ``ctid`` (a
# view, a foreign or partitioned table) or on a standby (no snapshot to export).
_SPLIT_PAGES_SQL = """CASE WHEN c.relkind IN ('r', 'm') AND NOT pg_catalog.pg_is_in_recovery()
    THEN pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::int
    ELSE 0 END"""
_PLAN_SQL = f"""
SELECT {_SPLIT_PAGES_SQL}
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""
_EXPORT_SQL = "SELECT pg_catalog.pg_export_snapshot()"
_SNAPSHOT_NAME = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")

# Statistics settle (see the module docstring): a session idle this long has flushed its counts
# (PGSTAT_IDLE_INTERVAL is 10 s), and a check waits at most this long for every session to be.
SETTLED_IDLE_SECONDS = 12
SETTLE_WAIT_SECONDS = 15
_SETTLE_POLL_SECONDS = 0.5
# Every other session of this database that may still hold counts of writes it made before
# ``%(since)s``: not idle long enough, and started before. Autovacuum counts no rows written.
_UNSETTLED_SQL = """
SELECT pid, backend_start FROM pg_catalog.pg_stat_activity
WHERE datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND pid <> pg_catalog.pg_backend_pid()
  AND backend_type IS DISTINCT FROM 'autovacuum worker'
  AND backend_start < %(since)s
  AND application_name <> ALL(%(ours)s)
  AND (state IS DISTINCT FROM 'idle'
       OR state_change > statement_timestamp() - make_interval(secs => %(idle)s))
"""
# The relations asked for (``target``) and, for each, itself and every partition or inheritance
# child below it (``tree``): what a read of the table returns rows from.
_TABLE_TREES = """
WITH RECURSIVE target AS (
    SELECT w.schema_name, w.table_name, c.oid, c.relkind, c.xmin::text AS row_version
    FROM unnest(%(schemas)s::text[], %(tables)s::text[]) AS w(schema_name, table_name)
    JOIN pg_catalog.pg_namespace n ON n.nspname = w.schema_name
    JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.table_name
), tree(root, relid) AS (
    SELECT oid, oid FROM target
  UNION
    SELECT tree.root, i.inhrelid FROM tree JOIN pg_catalog.pg_inherits i ON i.inhparent = tree.relid
)
"""
_FINGERPRINT_SQL = (
    _TABLE_TREES
    + """
SELECT t.schema_name, t.table_name, t.oid, t.row_version,
       (SELECT bool_and(m.relkind IN ('r', 'p', 'm'))
        FROM tree JOIN pg_catalog.pg_class m ON m.oid = tree.relid WHERE tree.root = t.oid),
       (SELECT json_agg(json_build_array(a.attnum, a.attname, a.atttypid, a.atttypmod,
                                         a.attnotnull) ORDER BY a.attnum)
        FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped),
       (SELECT json_agg(json_build_array(m.oid, m.relfilenode,
                                         pg_catalog.pg_stat_get_tuples_inserted(m.oid),
                                         pg_catalog.pg_stat_get_tuples_updated(m.oid),
                                         pg_catalog.pg_stat_get_tuples_deleted(m.oid))
                        ORDER BY m.oid)
        FROM tree JOIN pg_catalog.pg_class m ON m.oid = tree.relid WHERE tree.root = t.oid),
       current_setting('track_counts') = 'on',
       json_build_array(
           (SELECT stats_reset FROM pg_catalog.pg_stat_database
            WHERE datname = current_database()),
           (SELECT stats_reset FROM pg_catalog.pg_stat_bgwriter),
           pg_catalog.pg_postmaster_start_time())
FROM target t
"""
)
# Pages as of the last VACUUM or ANALYZE (the table's and its TOAST table's), read from pg_class:
# pg_table_size would wait for the lock of a running ALTER or TRUNCATE. A relation never
# analysed (reltuples -1) or not a table (a view, a foreign table) has no size.
_SIZE_SQL = (
    _TABLE_TREES
    + """
SELECT t.schema_name, t.table_name,
       (SELECT CASE WHEN bool_and(m.relkind = 'p' OR (m.relkind IN ('r', 'm') AND m.reltuples >= 0))
               THEN sum(m.relpages + coalesce(toast.relpages, 0))::bigint
                    * current_setting('block_size')::bigint END
        FROM tree JOIN pg_catalog.pg_class m ON m.oid = tree.relid
        LEFT JOIN pg_catalog.pg_class toast ON toast.oid = m.reltoastrelid
        WHERE tree.root = t.oid)
FROM target t
"""
)

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


def _named(tables: Collection[tuple[str, str]]) -> dict[str, list[str]]:
    """``tables`` as the parameters of ``_TABLE_TREES``."""
    return {"schemas": [schema for schema, _ in tables], "tables": [table for _, table in tables]}


class PostgresSource(Source):
    """Keeps one psycopg connection (discovery, read plans) and one ADBC connection (reads in one
    stream) between calls; reads in several streams open their own."""

    source_type: ClassVar[str] = "postgres"
    config_schema = PostgresConfigSchema

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queries: Kept[psycopg.Connection] = Kept(_close_psycopg)
        self._reads: Kept[adbc.Opened] = Kept(adbc.Opened.close)

    def close(self) -> None:
        self._queries.close()
        self._reads.close()

    def _kept_queries(self) -> AbstractContextManager[psycopg.Connection]:
        """The kept psycopg connection (autocommit): discovery, read plans, fingerprints."""
        return self._queries.use(functools.partial(self._psycopg_connect, autocommit=True))

    def _kept_reads(self) -> AbstractContextManager[adbc.Opened]:
        """The kept ADBC connection (autocommit) for reads in one stream."""
        return self._reads.use(lambda: adbc.Opened(adbc_connect(self._adbc_uri(), autocommit=True)))

    @property
    def _secrets(self) -> list[str | None]:
        return [self.password]

    @classmethod
    def preload(cls) -> None:
        adbc.preload_driver(adbc_driver_postgresql._driver_path())

    def _timeout_seconds(self) -> int:
        # libpq takes whole seconds (and psycopg, like libpq, waits at least 2).
        return max(1, math.ceil(self.connect_timeout))

    def discover(self, only: Collection[tuple[str, str]] | None = None) -> list[DiscoveredTable]:
        filters, params = [], {}
        if self.config.get("schemas"):
            filters.append(_SCHEMA_FILTER)
            params["schemas"] = list(self.config["schemas"])
        relations, domains = _ALL_RELATIONS, ""
        if only is not None:
            relations, domains = _ONLY_RELATIONS, _ONLY_DOMAINS
            params["only_schemas"] = [schema for schema, _ in only]
            params["only_tables"] = [table for _, table in only]
        # Tables described for a read also say how it may split them: one question fewer each.
        split_pages = "NULL" if only is None else _SPLIT_PAGES_SQL
        sql = _DISCOVERY_SQL.format(
            domains=domains,
            relations=relations,
            filters="\n  ".join(filters),
            split_pages=split_pages,
        )
        with source_errors(self._secrets, _DRIVER_ERRORS), self._kept_queries() as connection:
            rows = connection.execute(sql, params).fetchall()
        tables = tables_of(
            (schema, table, Column(name, arrow_type(type_name, typmod), not not_null, native), key)
            for schema, table, name, not_null, native, type_name, typmod, key, _ in rows
        )
        if only is None:
            return tables
        pages = {(row[0], row[1]): row[8] for row in rows}
        return [replace(table, split_pages=pages[table.key]) for table in tables]

    def fingerprints(
        self, tables: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        result: dict[tuple[str, str], str | None] = dict.fromkeys(tables)
        if not tables:
            return result
        with self._asking() as connection:
            if not self._settle(connection):
                return result
            rows = connection.execute(_FINGERPRINT_SQL, _named(tables)).fetchall()
        for schema, table, oid, row_version, usable, columns, members, counting, epoch in rows:
            if (schema, table) in result and usable and counting:
                parts = [oid, row_version, columns, members, epoch]
                digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
                result[schema, table] = f"pg1:{digest}"
        return result

    def _table_sizes(self, tables: list[tuple[str, str]]) -> Iterable[tuple[str, str, Any]]:
        with self._asking() as connection:
            return connection.execute(_SIZE_SQL, _named(tables)).fetchall()

    @contextmanager
    def _asking(self, fresh: bool = False) -> Iterator[psycopg.Connection]:
        """The kept connection (a fresh one if ``fresh``) for a question to the server:
        interruptible, its errors the source's."""
        self._stopper.check()
        with (
            source_errors(self._secrets, _DRIVER_ERRORS),
            self._psycopg_connect() if fresh else self._kept_queries() as connection,
            self._stopper.on_interrupt(
                functools.partial(connection.cancel_safe, timeout=self.connect_timeout)
            ),
            self._stopper.explaining(),
        ):
            yield connection

    def _settle(self, connection: psycopg.Connection) -> bool:
        """Wait until no other session present now may still hold unflushed counts (see the
        module docstring); False when that does not happen within ``SETTLE_WAIT_SECONDS``."""
        [since] = connection.execute("SELECT statement_timestamp()").fetchone()
        waiting: set[tuple[int, object]] | None = None
        deadline = time.monotonic() + SETTLE_WAIT_SECONDS
        while True:
            rows = connection.execute(
                _UNSETTLED_SQL,
                {"since": since, "idle": SETTLED_IDLE_SECONDS, "ours": list(APPLICATION_NAMES)},
            ).fetchall()
            unsettled = {(pid, started) for pid, started in rows}
            waiting = unsettled if waiting is None else waiting & unsettled
            if not waiting:
                return True
            if time.monotonic() >= deadline:
                log.info(
                    "statistics did not settle within %d s: no fingerprints", SETTLE_WAIT_SECONDS
                )
                return False
            time.sleep(_SETTLE_POLL_SECONDS)
            self._stopper.check()

    def run_check(self, sql: str) -> tuple[object, ...]:
        with self._asking(fresh=True) as connection:
            connection.read_only = True
            # No parameters: psycopg sends the SQL as it is (a "%" is no placeholder).
            rows = connection.execute(sql).fetchmany(2)
            connection.rollback()
        return single_row(rows)

    def _psycopg_connect(self, autocommit: bool = False) -> psycopg.Connection:
        return psycopg.connect(
            host=self.config["host"],
            port=self.config["port"],
            user=self.config["user"],
            password=self.password,
            dbname=self.config["database"],
            connect_timeout=self._timeout_seconds(),
            options=_SESSION_OPTIONS,
            autocommit=autocommit,
            application_name=QUERIES_APPLICATION_NAME,
        )

    def _adbc_uri(self) -> str:
        """A libpq URI with every part in the query string, percent-encoded (no host quirks)."""
        params: dict[str, Any] = {
            "host": self.config["host"],
            "port": self.config["port"],
            "dbname": self.config["database"],
            "user": self.config["user"],
            "connect_timeout": self._timeout_seconds(),
            "options": _SESSION_OPTIONS,
            "application_name": READS_APPLICATION_NAME,
        }
        if self.password is not None:
            params["password"] = self.password
        return "postgresql://?" + urlencode(params, quote_via=quote)

    @contextmanager
    def read(
        self, table: DiscoveredTable, since: Since | None = None
    ) -> Iterator[Iterator[pa.RecordBatch]]:
        """Stream the table through one or several COPY streams (see the module docstring).

        Every stream runs in a thread of its own and owns its connection; the batches of all
        streams come out here in whatever order they arrive.
        """
        self._stopper.check()
        read = _TableRead(self, table, since)
        read.fan_in.start("postgres-read", read.plan_and_read)
        try:
            # An interrupt fails the read at once, then sends libpq's cancel for every open
            # connection from a thread never waited for: a frozen host never answers it.
            with self._stopper.on_interrupt(read.interrupt):
                yield read.batches()
        finally:
            read.close()


class _TableRead:
    """One read in progress: its streams, and the connections ``interrupt`` may cancel.

    The table is split into ranges of pages (``ctid``) only when it is a plain table or a
    materialized view of at least two ranges' worth of pages; a coordinating transaction exports
    its snapshot and every stream imports it before its first COPY, so all ranges are read as of
    one instant. Anything else (views, foreign and partitioned tables, small tables, a standby)
    is one COPY, which is one snapshot by itself.
    """

    def __init__(self, source: PostgresSource, table: DiscoveredTable, since: Since | None) -> None:
        self.source = source
        self.schema = table.arrow_schema()
        columns = ", ".join(_select_item(column) for column in table.columns)
        name = f"{_quote(table.schema_name)}.{_quote(table.table_name)}"
        self.select = f"SELECT {columns} FROM {name}"
        self.conditions = [] if since is None else [since.condition(_quote)]
        self.key = table.key
        self.split_pages = table.split_pages
        self.fan_in: FanIn[pa.RecordBatch] = FanIn(depth=_BATCHES_PER_STREAM * source.read_streams)
        self._lock = threading.Lock()
        self._cancels: dict[int, Callable[[], object]] = {}
        self._canceller: threading.Thread | None = None
        self._canceller_lock = threading.Lock()
        self._completed = False
        self._interrupted = False

    def batches(self) -> Iterator[pa.RecordBatch]:
        yield from self.fan_in
        self._completed = True

    def interrupt(self) -> None:
        self._interrupted = True
        self.fan_in.fail(SourceError(INTERRUPTED))
        self.cancel_all(wait=0.0)

    def close(self) -> None:
        """Stop the streams; after a failure or an early exit, cancel their queries first.

        After an interrupt nothing is waited for: a stream blocked on a frozen host closes its
        connection in its own (daemon) thread whenever its read returns.
        """
        timeout = self.source.connect_timeout
        if not self._completed and not self._interrupted:
            self.cancel_all(wait=timeout)
        stuck = self.fan_in.close(timeout=0.0 if self._interrupted else timeout)
        if stuck and not self._interrupted:
            log.warning("%d PostgreSQL stream(s) did not stop in time; abandoned", len(stuck))

    # -- cancelling ------------------------------------------------------------------------------

    @contextmanager
    def cancellable(self, cancel: Callable[[], object]) -> Iterator[None]:
        """While the block runs, ``cancel_all`` may call ``cancel`` (never after the block)."""
        token = id(cancel)
        with self._lock:
            self._cancels[token] = cancel
        try:
            yield
        finally:
            with self._lock:
                del self._cancels[token]

    def cancel_all(self, wait: float) -> None:
        """Cancel every open connection's query, waiting at most ``wait`` seconds.

        Repeated calls (a watchdog repeats its interrupt) cancel again, for a query that had not
        reached the server the first time, but never pile up behind a cancel still unanswered.
        """

        def cancel() -> None:
            with self._lock:
                for cancel_one in self._cancels.values():
                    try:
                        cancel_one()
                    except Exception:  # best effort: the connection may be ending on its own
                        log.debug("cancelling a PostgreSQL query failed", exc_info=True)

        with self._canceller_lock:  # not self._lock: a cancel stuck on a frozen host holds it
            if self._canceller is not None and self._canceller.is_alive():
                return
            self._canceller = threading.Thread(target=cancel, name="postgres-cancel", daemon=True)
            self._canceller.start()
        self._canceller.join(wait)

    # -- reading ---------------------------------------------------------------------------------

    def plan_and_read(self, emit: Callable[[pa.RecordBatch], bool]) -> None:
        """Decide the ranges and start their streams, or read the table as one stream.

        The plan (is the table worth splitting?) comes with the table's description for a read,
        or is one query on the kept connection; only a table split into ranges pays for a
        coordinating connection, which exports its snapshot.
        """
        source = self.source
        selects = [_where(self.select, self.conditions)]
        if source.read_streams > 1:
            pages = self.split_pages
            if pages is None:
                with (
                    source_errors(source._secrets, _DRIVER_ERRORS),
                    source._kept_queries() as connection,
                    self.cancellable(
                        functools.partial(connection.cancel_safe, timeout=source.connect_timeout)
                    ),
                ):
                    row = connection.execute(_PLAN_SQL, self.key).fetchone()
                pages = row[0] if row is not None else 0
            selects = _range_selects(self.select, self.conditions, pages, source.read_streams)
        if len(selects) == 1:
            with (
                source_errors(source._secrets, _DRIVER_ERRORS),
                suppress(_GivenUp),
                source._kept_reads() as opened,
            ):
                if not self._copy_all(opened.connection, _queue(selects), emit):
                    # A COPY given up midway leaves the connection in no state to run the next.
                    raise _GivenUp
            return
        with (
            source_errors(source._secrets, _DRIVER_ERRORS),
            source._psycopg_connect() as coordinator,
            self.cancellable(
                functools.partial(coordinator.cancel_safe, timeout=source.connect_timeout)
            ),
        ):
            coordinator.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            coordinator.read_only = True
            [snapshot] = coordinator.execute(_EXPORT_SQL).fetchone()
            self._start_streams(selects, snapshot)

    def _start_streams(self, selects: list[str], snapshot: str) -> None:
        """Start the streams, and keep the exporting transaction open until each imported it."""
        ranges = _queue(selects)
        streams = min(self.source.read_streams, len(selects))
        batch_bytes = max(_BATCH_BYTES_MIN, min(_BATCH_BYTES_MAX, _BATCH_BYTES_BUDGET // streams))
        imports = [threading.Event() for _ in range(streams)]
        for number, imported in enumerate(imports):
            self.fan_in.start(
                f"postgres-stream-{number}",
                functools.partial(
                    self._stream,
                    pending=ranges,
                    snapshot=snapshot,
                    imported=imported,
                    batch_bytes=batch_bytes,
                ),
            )
        for imported in imports:
            while not imported.wait(_POLL_SECONDS) and not self.fan_in.stopped:
                pass

    def _stream(
        self,
        emit: Callable[[pa.RecordBatch], bool],
        pending: queue.SimpleQueue[str],
        snapshot: str,
        imported: threading.Event,
        batch_bytes: int,
    ) -> None:
        """One connection of a split read: import the snapshot, then COPY pending ranges.

        The pending ranges are shared with the other streams: each takes the next as it goes.
        """
        source = self.source
        try:
            with (
                source_errors(source._secrets, _DRIVER_ERRORS),
                adbc_connect(source._adbc_uri(), autocommit=False) as connection,
            ):
                adbc.execute(connection, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                adbc.execute(connection, _import_sql(snapshot))
                imported.set()
                self._copy_all(connection, pending, emit, batch_bytes)
        finally:
            imported.set()

    def _copy_all(
        self,
        connection: adbc.Connection,
        pending: queue.SimpleQueue[str],
        emit: Callable[[pa.RecordBatch], bool],
        batch_bytes: int = _BATCH_BYTES_MAX,
    ) -> bool:
        """COPY pending SELECTs on ``connection`` (cancellable meanwhile); False when the consumer
        stopped first."""
        with self.cancellable(connection.cancel):
            for select in _drain(pending):
                if self.fan_in.stopped or not self._copy(connection, select, emit, batch_bytes):
                    return False
        return True

    def _copy(
        self,
        connection: adbc.Connection,
        select: str,
        emit: Callable[[pa.RecordBatch], bool],
        batch_bytes: int,
    ) -> bool:
        """Stream one SELECT (binary COPY); False once the consumer stopped."""
        with adbc_query(connection, select, batch_bytes) as reader:
            for batch in reader:
                # ADBC sizes batches in bytes; slices (zero-copy) keep at most BATCH_ROWS.
                for offset in range(0, batch.num_rows, BATCH_ROWS):
                    if not emit(cast_batch(batch.slice(offset, BATCH_ROWS), self.schema)):
                        return False
        return True


def _close_psycopg(connection: psycopg.Connection) -> None:
    with suppress(psycopg.Error):
        connection.close()


class _GivenUp(Exception):
    """The consumer stopped before a read in one stream ended: its connection is not kept."""


def adbc_connect(uri: str, autocommit: bool) -> AbstractContextManager[adbc.Connection]:
    """An ADBC connection to the source, with the service's options."""
    database = adbc_driver_postgresql.connect(uri, db_kwargs=_ADBC_DATABASE_OPTIONS)
    return adbc.connect(database, autocommit)


def adbc_query(
    connection: adbc.Connection, sql: str, batch_bytes: int = _BATCH_BYTES_MAX
) -> AbstractContextManager[pa.RecordBatchReader]:
    """The rows of ``sql`` (ADBC runs a SELECT as binary COPY), in batches of about
    ``batch_bytes``."""
    options = {"adbc.postgresql.batch_size_hint_bytes": str(batch_bytes)}
    return adbc.query(connection, sql, options)


def _queue(selects: list[str]) -> queue.SimpleQueue[str]:
    pending: queue.SimpleQueue[str] = queue.SimpleQueue()
    for select in selects:
        pending.put(select)
    return pending


def _drain(pending: queue.SimpleQueue[str]) -> Iterator[str]:
    while True:
        try:
            yield pending.get_nowait()
        except queue.Empty:
            return


def _where(select: str, conditions: list[str]) -> str:
    return f"{select} WHERE {' AND '.join(conditions)}" if conditions else select


def _range_selects(select: str, conditions: list[str], pages: int, streams: int) -> list[str]:
    """``select`` (with ``conditions``) split into ranges of pages, or alone when the table is
    not worth splitting.

    There are a few more ranges than streams, handed out as streams finish, so a stream that
    meets dead rows or long values does not hold the others up. The first range has no lower
    bound and the last none above, so no row is missed whatever the table's size now.
    """
    ranges = min(streams * _RANGES_PER_STREAM, pages // MIN_RANGE_PAGES)
    if streams < 2 or ranges < 2:
        return [_where(select, conditions)]
    bounds = [pages * number // ranges for number in range(1, ranges)]
    pages_of = [f"ctid < '({bounds[0]},0)'::tid"]
    pages_of += [
        f"ctid >= '({low},0)'::tid AND ctid < '({high},0)'::tid"
        for low, high in itertools.pairwise(bounds)
    ]
    pages_of.append(f"ctid >= '({bounds[-1]},0)'::tid")
    return [_where(select, [*conditions, page]) for page in pages_of]


def _import_sql(snapshot: str) -> str:
    """``SET TRANSACTION SNAPSHOT``; the name comes from the server, and is checked anyway."""
    if not _SNAPSHOT_NAME.fullmatch(snapshot):
        raise SourceError(f"unexpected snapshot name from the server: {snapshot!r}")
    return f"SET TRANSACTION SNAPSHOT '{snapshot}'"
