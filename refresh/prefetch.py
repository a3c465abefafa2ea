"""Reading ahead in a background thread, so a source and the Parquet writer work at once.

The PostgreSQL reader (ADBC) and the Parquet encoder both run in C++ without the GIL: with the
source read in its own thread, a refresh takes about as long as the slower of the two instead of
their sum.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_PUT_POLL_SECONDS = 0.1


@contextmanager
def read_ahead(items: Iterator[T], depth: int) -> Iterator[Iterator[T]]:
    """Iterate ``items`` in a thread, at most ``depth`` items ahead of the consumer.

    An error of the producer is raised in the consumer. When the block ends, early or not, the
    producer is stopped and joined before returning, so whatever ``items`` reads from (a cursor, a
    connection) can be closed safely by the caller afterwards.
    """
    buffer: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=_PUT_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as error:
            put((_DONE, error))
            return
        put((_DONE, None))

    def consume() -> Iterator[T]:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item  # type: ignore[misc]

    thread = threading.Thread(target=produce, name="refresh-read-ahead", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()
