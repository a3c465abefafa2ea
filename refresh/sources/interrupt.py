"""What ``Source.interrupt`` shares with the read it stops, across threads.

The stall watchdog calls ``interrupt`` from its own thread while the refresh thread is blocked in
a driver call. Each read registers the actions that unblock it (kill a child process, cancel a
query) for as long as it runs; every ``interrupt`` runs them (they are idempotent: a repeated
call catches a query that had not reached the driver yet at the first one), and remembers that it
was asked, so a read that reaches a batch boundary, or starts afterwards, stops too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from refresh.sources.driver_errors import SourceError

INTERRUPTED = "the read was interrupted (the source stalled or the refresh was stopped)"


class ReadStopper:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requested = False
        self._actions: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        return self._requested

    @property
    def reading(self) -> bool:
        """Whether a read is registered (in the driver, or between its batches)."""
        return bool(self._actions)

    def interrupt(self) -> None:
        """Ask every registered read to stop; thread-safe, idempotent, as fast as the actions."""
        with self._lock:
            self._requested = True
            actions = list(self._actions)
        for action in actions:
            _best_effort(action)

    @contextmanager
    def on_interrupt(self, action: Callable[[], None]) -> Iterator[None]:
        """Run ``action`` on each interrupt while the block runs (at once if one came before).

        ``action`` runs in the interrupting thread; it must be idempotent and not block for long.
        """
        with self._lock:
            self._actions.append(action)
            already = self._requested
        if already:
            _best_effort(action)
        try:
            yield
        finally:
            with self._lock:
                self._actions.remove(action)

    def check(self) -> None:
        """Raise at a batch boundary once an interrupt was asked."""
        if self._requested:
            raise SourceError(INTERRUPTED)

    @contextmanager
    def explaining(self) -> Iterator[None]:
        """Report a driver error that the interrupt itself caused as the interrupt.

        A killed child process or a cancelled query fails with the driver's own confusing words
        (end of stream, query cancelled); the user should read why.
        """
        try:
            yield
        except Exception:
            if self._requested:
                raise SourceError(INTERRUPTED) from None
            raise


def _best_effort(action: Callable[[], None]) -> None:
    # The interrupting thread (the stall watchdog) must go on whatever a driver's cancel raises:
    # the read fails either way, by the cancel or by being abandoned.
    with suppress(Exception):
        action()
