"""A connection a source keeps between its calls.

A connection costs more to open than most calls cost to make: a TLS handshake and a login on a
server, the whole schema parsed again for a SQLite file of many tables (25 ms a connection at
10,000 tables). A batch of a connection-wide refresh calls its sources once or twice per table,
so a source keeps its connection from one call to the next, until it is closed.

A call takes the connection out while it uses it, and puts it back only when it ended without an
error: a call abandoned in its thread (a stalled source, ``refresh.prefetch``) never shares its
connection with the next call, which opens another, and a connection left in an unknown state by
an error is closed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

C = TypeVar("C")


class Kept(Generic[C]):
    def __init__(self, connect: Callable[[], C], close: Callable[[C], None]) -> None:
        """``connect()`` opens a connection; ``close(connection)`` closes one and never raises."""
        self._connect = connect
        self._close = close
        self._idle: C | None = None
        self._lock = threading.Lock()

    @contextmanager
    def use(self) -> Iterator[C]:
        """The kept connection (opened on first use), for one call."""
        with self._lock:
            connection, self._idle = self._idle, None
        if connection is None:
            connection = self._connect()
        try:
            yield connection
        except BaseException:
            self._close(connection)
            raise
        with self._lock:
            connection, self._idle = self._idle, connection
        if connection is not None:  # a call abandoned earlier ended after all
            self._close(connection)

    def close(self) -> None:
        with self._lock:
            connection, self._idle = self._idle, None
        if connection is not None:
            self._close(connection)
