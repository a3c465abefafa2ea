"""Several producer threads feeding one consumer: the parallel streams of one table read.

Why not a thread pool: each producer owns what it opens (a connection) and closes it in its own
thread, so no connection is ever closed under a thread still blocked in it; and the consumer must
be able to give up on a producer that is blocked in a read that will never return (a frozen
host): ``fail`` ends the consumer at once, and ``close`` waits for the producers only for a bounded
time, abandoning (as daemon threads) those that do not end.

Memory is bounded: at most ``depth`` items wait between the producers and the consumer.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

# A producer waiting for room in the buffer looks at the stop flag this often.
_POLL_SECONDS = 0.1
_DONE = object()  # a producer returned
_WAKE = object()  # fail() was called: the consumer should look at the failure


class FanIn(Generic[T]):
    def __init__(self, depth: int) -> None:
        self._entries: queue.SimpleQueue[tuple[object, BaseException | None]] = queue.SimpleQueue()
        self._room = threading.Semaphore(depth)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running = 0  # producers started whose end the consumer has not seen yet
        self._threads: list[threading.Thread] = []
        self._failure: BaseException | None = None

    @property
    def stopped(self) -> bool:
        """True once the consumer is gone or failed: a producer should return."""
        return self._stop.is_set()

    def start(self, name: str, produce: Callable[[Callable[[T], bool]], None]) -> None:
        """Run ``produce(emit)`` in a new thread.

        ``emit(item)`` hands one item to the consumer, waiting for room; it returns False once the
        consumer has stopped, and the producer should then return. An exception raised by
        ``produce`` is raised in the consumer. A producer may start others: the consumer ends when
        every producer has returned. Nothing starts once the consumer has stopped.
        """
        with self._lock:
            if self._stop.is_set():
                return
            self._running += 1
            thread = threading.Thread(target=self._run, args=(produce,), name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, produce: Callable[[Callable[[T], bool]], None]) -> None:
        try:
            produce(self._emit)
        except BaseException as error:
            self._entries.put((_DONE, error))
        else:
            self._entries.put((_DONE, None))

    def _emit(self, item: T) -> bool:
        while not self._stop.is_set():
            if self._room.acquire(timeout=_POLL_SECONDS):
                self._entries.put((item, None))
                return True
        return False

    def fail(self, error: BaseException) -> None:
        """Make the consumer raise ``error`` now, before any item still buffered; thread-safe."""
        with self._lock:
            if self._failure is None:
                self._failure = error
        self._stop.set()
        self._entries.put((_WAKE, None))

    def __iter__(self) -> Iterator[T]:
        while True:
            item, error = self._entries.get()
            if error is not None:
                self.fail(error)
            if self._failure is not None:
                raise self._failure
            if item is _WAKE:
                continue
            if item is _DONE:
                with self._lock:
                    self._running -= 1
                    if self._running == 0:
                        return
                continue
            self._room.release()
            yield item  # type: ignore[misc]

    def close(self, timeout: float) -> list[threading.Thread]:
        """Stop the producers and wait up to ``timeout`` seconds for them to return.

        Returns the producers still running then (blocked where no stop flag reaches them).
        """
        with self._lock:
            self._stop.set()
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread for thread in threads if thread.is_alive()]
