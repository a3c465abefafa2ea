"""Helpers shared by the source tests: reading a whole table, and a server that never answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

from refresh.sources.base import DiscoveredTable, Since, Source

# Names that break naive SQL building: quotes of every dialect, dots, spaces, non-ASCII, percent
# signs (pyformat drivers) and an injection attempt.
WEIRD_NAMES = ['we"ird', "back`tick", "a.b", "ta ble", "é", "50%s", 'x"; DROP TABLE y; --']


def by_key(tables: list[DiscoveredTable]) -> dict[tuple[str, str], DiscoveredTable]:
    return {table.key: table for table in tables}


def types_of(table: DiscoveredTable) -> dict[str, pa.DataType]:
    return {column.name: column.arrow_type for column in table.columns}


def read_batches(
    source: Source, table: DiscoveredTable, since: Since | None = None
) -> list[pa.RecordBatch]:
    with source.read(table, since) as batches:
        collected = list(batches)
    for batch in collected:
        assert batch.schema == table.arrow_schema()
    return collected


def read_rows(
    source: Source, table: DiscoveredTable, since: Since | None = None
) -> list[dict[str, object]]:
    batches = read_batches(source, table, since)
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


class BackgroundRead:
    """A read of a whole table in a thread of its own, which the test can hold after one batch.

    Holding the consumer fills the source's buffers, after which its streams wait: what the
    source reads after ``release()`` is read while the test has changed things.
    """

    def __init__(self, source: Source, table: DiscoveredTable, hold: bool = False) -> None:
        self.batches: list[pa.RecordBatch] = []
        self._schema = table.arrow_schema()
        self.error: BaseException | None = None
        self._first = threading.Event()
        self._release = threading.Event()
        if not hold:
            self._release.set()
        self._thread = threading.Thread(target=self._run, args=(source, table), daemon=True)
        self._thread.start()

    def _run(self, source: Source, table: DiscoveredTable) -> None:
        try:
            with source.read(table) as batches:
                for batch in batches:
                    self.batches.append(batch)
                    self._first.set()
                    self._release.wait()
        except BaseException as error:
            self.error = error
        finally:
            self._first.set()

    def wait_for_first_batch(self, timeout: float) -> None:
        assert self._first.wait(timeout), f"no batch within {timeout} s"

    def release(self) -> None:
        self._release.set()

    def finish(self, timeout: float) -> pa.Table:
        """The rows read; raises the read's error. Fails if the read has not ended in time."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the read did not end within {timeout} s"
        if self.error is not None:
            raise self.error
        return pa.Table.from_batches(self.batches, schema=self._schema)
