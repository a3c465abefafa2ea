"""The small interface every source module implements, and the table description it returns.

A source is cheap and short-lived: the service builds one per operation from the catalog's
connection row (config without secrets, plus the decrypted password), asks it to discover tables
or to stream tables, and closes it. One source serves one thread at a time, and may keep its
connections from one call to the next (a batch of a connection-wide refresh reads many tables,
and a connection costs more than a small table's read): ``close`` releases them.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import pyarrow as pa
from marshmallow import Schema

from refresh.common.arrow_types import type_from_string, type_to_string
from refresh.sources.driver_errors import SourceError as SourceError  # part of the interface
from refresh.sources.interrupt import ReadStopper

# Rows per Arrow batch a source yields: big enough that per-batch overhead vanishes, small enough
# that a batch of a wide table stays far below the worker's memory budget.
BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Column:
    name: str
    arrow_type: pa.DataType
    nullable: bool
    native_type: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": type_to_string(self.arrow_type),
            "nullable": self.nullable,
            "native_type": self.native_type,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Column:
        return cls(
            name=data["name"],
            arrow_type=type_from_string(data["type"]),
            nullable=data["nullable"],
            native_type=data.get("native_type", ""),
        )


@dataclass(frozen=True)
class DiscoveredTable:
    schema_name: str
    table_name: str
    columns: tuple[Column, ...]
    # The columns of the table's primary key at the source, in key order; () when it has none.
    primary_key: tuple[str, ...] = ()
    # How a read of the table may split it, as the source saw it when describing it for a read
    # (PostgreSQL: its pages, 0 when it cannot be split); None: the read finds out itself.
    split_pages: int | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema_name, self.table_name)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema(pa.field(c.name, c.arrow_type, c.nullable) for c in self.columns)

    def columns_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.columns]

    def schema_hash(self) -> str:
        """Hash of what a reader of the Parquet sees: names, Arrow types, nullability, order."""
        canonical = [[c.name, type_to_string(c.arrow_type), c.nullable] for c in self.columns]
        return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()

    @classmethod
    def from_json(
        cls, schema_name: str, table_name: str, columns: list[Mapping[str, Any]]
    ) -> DiscoveredTable:
        return cls(schema_name, table_name, tuple(Column.from_json(c) for c in columns))


def tables_of(rows: Iterable[tuple[str, str, Column, int | None]]) -> list[DiscoveredTable]:
    """Tables from ``(schema, table, column, rank)`` rows, in the order a discovery query lists
    them (table by table, columns in order); ``rank`` orders the primary key's columns (None for
    the others)."""
    columns: dict[tuple[str, str], list[Column]] = defaultdict(list)
    keys: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for schema, table, column, rank in rows:
        columns[schema, table].append(column)
        if rank is not None:
            keys[schema, table].append((rank, column.name))
    return [
        DiscoveredTable(schema, table, tuple(cols), tuple(name for _, name in sorted(keys[key])))
        for key, cols in columns.items()
        for schema, table in [key]
    ]


@dataclass(frozen=True)
class Since:
    """An incremental read: only the rows whose cursor ``column`` is at least ``value`` (an
    integer, a date, or a timestamp, aware for a time-zone-aware column).

    A source may send more rows than asked (the refresh filters them exactly), never fewer.
    """

    column: str
    value: int | date | datetime

    def literal(self, utc_offset: bool = False) -> str:
        """``value`` as an SQL literal. A timestamp is spelled in UTC: with ``+00`` when
        ``utc_offset``, else without an offset, for the sources whose sessions run in UTC.
        Either way the date and time are separated by a space, so that it compares as text
        no later than the same instant stored with a ``T`` (SQLite keeps timestamps as text)."""
        value = self.value
        if isinstance(value, datetime):
            aware = value.tzinfo is not None
            if aware:
                value = value.astimezone(UTC).replace(tzinfo=None)
            offset = "+00" if aware and utc_offset else ""
            return f"'{value.isoformat(sep=' ')}{offset}'"
        if isinstance(value, date):
            return f"'{value.isoformat()}'"
        return str(int(value))

    def condition(self, quote: Callable[[str], str], utc_offset: bool = False) -> str:
        return f"{quote(self.column)} >= {self.literal(utc_offset)}"


class Source(ABC):
    """One external database, reached with its stored config and decrypted password."""

    source_type: ClassVar[str]
    # Validates the ``config`` object of ``POST /connections`` for this source type. A field named
    # ``password`` (or a password inside ``url``) is split off and stored encrypted.
    config_schema: ClassVar[type[Schema]]

    def __init__(
        self,
        config: Mapping[str, Any],
        password: str | None,
        connect_timeout: float,
        read_streams: int = 1,
    ) -> None:
        self.config = config
        self.password = password
        self.connect_timeout = connect_timeout
        # At most this many connections may read one table at once (SOURCE_READ_STREAMS); a
        # source that cannot split a table reads it with one.
        self.read_streams = read_streams
        # A read registers here what stops it (``on_interrupt``) and checks it between batches.
        self._stopper = ReadStopper()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connections kept between calls; sources that keep none have nothing to do.

        Never blocks for long (bound any goodbye to the server by the connect timeout).
        """
        return None

    @classmethod
    def preload(cls) -> None:
        """Load what every read of this source type needs once per process (native libraries).

        A forking worker calls it before it forks, so that each work horse (one per table) does
        not load it again. Sources whose libraries load with their module have nothing to add.
        """
        return None

    @classmethod
    def split_secret(cls, config: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Separate the validated config into what the catalog stores as JSON and the password."""
        stored = dict(config)
        return stored, stored.pop("password", None)

    @abstractmethod
    def discover(self, only: Collection[tuple[str, str]] | None = None) -> list[DiscoveredTable]:
        """Describe the source's tables in bulk (a few queries, never one per table).

        ``only`` restricts the answer to those (schema, table) pairs; a pair missing from the
        answer no longer exists at the source. Raises ``SourceError``.
        """

    @abstractmethod
    def read(
        self, table: DiscoveredTable, since: Since | None = None
    ) -> AbstractContextManager[Iterator[pa.RecordBatch]]:
        """Stream the table's rows (those ``since`` asks for, at least) as batches whose schema
        is exactly ``table.arrow_schema()``.

        The rows come from one consistent snapshot; memory stays bounded by the batch size. A
        value that does not fit its column's Arrow type raises ``SourceError`` naming the column.
        """

    def fingerprints(
        self, tables: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str | None]:
        """Each table's change fingerprint, for all of ``tables`` in one or a few queries.

        An opaque string that is equal only if no row of the table can have changed between two
        calls (inserts, updates, deletes, TRUNCATE, column changes committed before the call);
        None where the source cannot tell, which counts as "changed". A fingerprint may change
        without a change of rows (that costs a refresh), never the reverse. The refresh flow
        records it with the version it reads next and skips the read while it stays the same.
        Bounded like every source call (the caller runs it under ``SOURCE_STALL_TIMEOUT_SECONDS``
        and ``interrupt``s it). This default knows nothing: every table is None.
        """
        return dict.fromkeys(tables)

    def size_estimates(
        self, tables: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], int | None]:
        """Each table's size in bytes at the source, as its statistics say, for all of ``tables``
        in one query: no scan, no lock, possibly stale. None where the source keeps none (a view,
        a table never analysed).

        A connection-wide refresh plans its batches with it before a table has a version of its
        own to measure (``refresh.connection_refresh``); only balance depends on it. A source
        with such statistics gives them through ``_table_sizes``.
        """
        found: dict[tuple[str, str], int | None] = dict.fromkeys(tables)
        if found:
            for schema, table, size in self._table_sizes(list(found)):
                # a server may compare names case-insensitively: only the names asked for count
                if (schema, table) in found and size is not None:
                    found[schema, table] = int(size)
        return found

    def _table_sizes(self, tables: list[tuple[str, str]]) -> Iterable[tuple[str, str, Any]]:
        """``(schema, table, bytes or None)`` for the ``tables`` the source has statistics of,
        in one query; sources that keep none have nothing to give."""
        return ()

    @abstractmethod
    def run_check(self, sql: str) -> tuple[object, ...]:
        """The one row of a table's ``check_sql`` (validated by ``refresh.check_sql``), run in
        a read-only transaction where the source has one; ``interrupt`` stops it. A result of
        no row or several raises ``SourceError``, as does any failure of the query."""

    def interrupt(self) -> None:
        """Stop the ``read`` in progress, and every later one: the source is done with.

        Called from another thread, any number of times.

        The data refresh calls it when the source has sent nothing for
        ``SOURCE_STALL_TIMEOUT_SECONDS`` (a frozen host, a lock wait): the blocked read should then
        end or raise promptly, and the query should stop on the server. It must never block for
        long itself (the host may be frozen: bound any connection it opens by the connect
        timeout). Best effort: a read that does not end is abandoned by the refresh, which fails
        either way. It runs what each read in progress registered with ``self._stopper`` (kill a
        reader process, cancel a query); a read that registered nothing (a driver that cannot
        cancel) stops at its next batch boundary, and any read started afterwards fails at once.
        """
        self._stopper.interrupt()


def single_row(rows: Sequence[Sequence[object]]) -> tuple[object, ...]:
    """The row of a check's result (fetched with at most two rows), or ``SourceError``."""
    if len(rows) != 1:
        found = "no row" if not rows else "more than one row"
        raise SourceError(f"check_sql returned {found}; it must return exactly one")
    return tuple(rows[0])
