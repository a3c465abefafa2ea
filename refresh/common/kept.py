"""A connection kept between calls: a source's, or the catalog's in a batch thread.

A connection costs more to open than most calls cost to make: a TLS handshake and a login on a
server, the whole schema parsed again for a SQLite file of many tables (25 ms a connection at
10,000 tables), a ping of the catalog's pooled connection. A batch of a connection-wide refresh
calls its sources once or twice per table and its catalog two or three times, so each keeps its
connection from one call to the next, until it is closed.

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
    """The connection kept between calls, and how to close one.

    A call passes how to open a connection (a method of its source) rather than the source
    giving it here once: held here, it would make a reference cycle that keeps a source nobody
    closed, and its open connections, alive until the garbage collector happens to run.
    """

    def __init__(self, close: Callable[[C], None]) -> None:
        """``close(connection)`` closes a connection and never raises."""
        self._close = close
        self._idle: C | None = None
        self._closed = False
        self._lock = threading.Lock()

    @contextmanager
    def use(self, connect: Callable[[], C]) -> Iterator[C]:
        """The kept connection (``connect()`` opens one when none is kept), for one call."""
        with self._lock:
            connection, self._idle = self._idle, None
        if connection is None:
            connection = connect()
        try:
            yield connection
        except BaseException:
            self._close(connection)
            raise
        with self._lock:
            # Closed: a call abandoned in its thread ended after its source was closed. Else the
            # connection displaced, if any, is from a call abandoned earlier that ended after all.
            if not self._closed:
                connection, self._idle = self._idle, connection
        if connection is not None:
            self._close(connection)

    def close(self) -> None:
        """Close the kept connection, and any that a call still running brings back later."""
        with self._lock:
            connection, self._idle, self._closed = self._idle, None, True
        if connection is not None:
            self._close(connection)
