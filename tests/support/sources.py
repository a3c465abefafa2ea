"""Helpers shared by the source tests: reading a whole table, and a server that never answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

from refresh.sources.base import DiscoveredTable, Source

# Names that break naive SQL building: quotes of every dialect, dots, spaces, non-ASCII, percent
# signs (pyformat drivers) and an injection attempt.
WEIRD_NAMES = ['we"ird', "back`tick", "a.b", "ta ble", "é", "50%s", 'x"; DROP TABLE y; --']


def by_key(tables: list[DiscoveredTable]) -> dict[tuple[str, str], DiscoveredTable]:
    return {table.key: table for table in tables}


def types_of(table: DiscoveredTable) -> dict[str, pa.DataType]:
    return {column.name: column.arrow_type for column in table.columns}


def read_batches(source: Source, table: DiscoveredTable) -> list[pa.RecordBatch]:
    with source.read(table) as batches:
        collected = list(batches)
    for batch in collected:
        assert batch.schema == table.arrow_schema()
    return collected


def read_rows(source: Source, table: DiscoveredTable) -> list[dict[str, object]]:
    batches = read_batches(source, table)
    return pa.Table.from_batches(batches, schema=table.arrow_schema()).to_pylist()


@contextmanager
def silent_server() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts TCP connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # closed at teardown
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    server.close()
    for connection in accepted:
        connection.close()
    thread.join(timeout=5)
