"""Waiting on a source, always bounded: reading it ahead of the Parquet writer, or one call.

The PostgreSQL reader (ADBC) and the Parquet encoder both run in C++ without the GIL: with the
source read in its own thread, a refresh takes about as long as the slower of the two instead of
their sum.

The thread also makes every wait on the source bounded. A driver blocked on a frozen host or a
lock never returns on its own; the writer side instead waits at most ``stall_seconds`` for each
next batch, then interrupts the read (``Source.interrupt``), gives the thread a few seconds to
end, and leaves it behind if it does not: the refresh fails either way, promptly. A single call
to a source (discovery) gets the same treatment from ``call_within``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

from refresh.sources.base import SourceError

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

_DONE = object()
_PUT_POLL_SECONDS = 0.1
# How long an interrupted read may take to end before it is left behind.
STOP_SECONDS = 10.0


class Stalled(SourceError):
    """The source sent nothing for ``SOURCE_STALL_TIMEOUT_SECONDS``; its query was interrupted."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the source sent nothing for {seconds:.0f} s (SOURCE_STALL_TIMEOUT_SECONDS); "
            "its query was cancelled and nothing was published"
        )
        self.seconds = seconds


@contextmanager
def read_ahead(
    open_items: Callable[[], AbstractContextManager[Iterable[T]]],
    depth: int,
    stall_seconds: float,
    interrupt: Callable[[], None],
) -> Iterator[Iterator[T]]:
    """Open ``open_items()`` and iterate it in a thread, at most ``depth`` items ahead.

    The whole read (opening, iterating, closing) happens in that thread, so a connection is
    only ever used by one thread. The consumer gets the producer's error, or ``Stalled`` when no
    item came for ``stall_seconds``. When the block ends before the items did (an error on either
    side, a stall), ``interrupt()`` stops a producer blocked in its driver.
    """
    buffer: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    drained = threading.Event()

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
            with open_items() as items:
                for item in items:
                    if not put((item, None)):
                        return
        except BaseException as error:
            put((_DONE, error))
            return
        put((_DONE, None))

    def consume() -> Iterator[T]:
        while True:
            try:
                item, error = buffer.get(timeout=stall_seconds)
            except queue.Empty:
                raise Stalled(stall_seconds) from None
            if error is not None:
                drained.set()
                raise error
            if item is _DONE:
                drained.set()
                return
            yield item  # type: ignore[misc]

    thread = threading.Thread(target=produce, name="refresh-read-ahead", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        if not drained.is_set():
            try:
                interrupt()
            except Exception:
                log.warning("interrupting the source read failed", exc_info=True)
        thread.join(STOP_SECONDS)
        if thread.is_alive():
            log.warning("the source read did not stop within %.0f s; left behind", STOP_SECONDS)


def call_within(call: Callable[[], R], seconds: float, interrupt: Callable[[], None]) -> R:
    """``call()`` in a thread; ``Stalled`` (after ``interrupt()``) if it takes over ``seconds``."""
    outcome: list[tuple[R | None, BaseException | None]] = []

    def run() -> None:
        try:
            outcome.append((call(), None))
        except BaseException as error:
            outcome.append((None, error))

    thread = threading.Thread(target=run, name="refresh-source-call", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        try:
            interrupt()
        except Exception:
            log.warning("interrupting the source call failed", exc_info=True)
        raise Stalled(seconds)
    value, error = outcome[0]
    if error is not None:
        raise error
    return value  # type: ignore[return-value]
