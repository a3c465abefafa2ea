"""Reading ahead in a thread: order, errors, early stops and the stall watchdog."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from refresh import prefetch
from refresh.prefetch import Stalled, call_within, read_ahead


@contextmanager
def opened(items: Iterator[int], closed: list[str]) -> Iterator[Iterator[int]]:
    """A stream that records, like a connection, in which thread it was closed."""
    try:
        yield items
    finally:
        closed.append(threading.current_thread().name)


def test_keeps_order_and_raises_the_producers_error() -> None:
    def items() -> Iterator[int]:
        yield from range(100)
        raise RuntimeError("source broke")

    seen: list[int] = []
    closed: list[str] = []
    interrupted: list[bool] = []
    with (
        pytest.raises(RuntimeError, match="source broke"),
        read_ahead(lambda: opened(items(), closed), 4, 5, lambda: interrupted.append(True)) as a,
    ):
        seen.extend(a)
    assert seen == list(range(100))
    assert closed == ["refresh-read-ahead"]  # opened, read and closed in the reading thread
    assert interrupted == []  # the read ended by itself


def test_an_early_stop_interrupts_and_stops_the_producer() -> None:
    produced: list[int] = []
    interrupted: list[bool] = []

    def items() -> Iterator[int]:
        for number in range(10_000):
            produced.append(number)
            yield number

    with read_ahead(lambda: opened(items(), []), 2, 5, lambda: interrupted.append(True)) as a:
        assert next(iter(a)) == 0
    assert len(produced) <= 4  # the producer stayed at most `depth` (+1 in hand) ahead
    assert interrupted == [True]


def test_a_silent_source_is_interrupted_after_the_stall_timeout() -> None:
    cancelled = threading.Event()

    def items() -> Iterator[int]:
        yield 1
        cancelled.wait(60)  # blocked in "the driver" until interrupted
        raise RuntimeError("query cancelled")

    started = time.monotonic()
    seen: list[int] = []
    with (
        pytest.raises(Stalled),
        read_ahead(lambda: opened(items(), []), 2, 0.5, cancelled.set) as a,
    ):
        seen.extend(a)
    assert seen == [1]
    assert cancelled.is_set()
    assert time.monotonic() - started < 10


def test_a_read_that_ignores_the_interrupt_is_left_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefetch, "STOP_SECONDS", 0.5)
    release = threading.Event()

    def items() -> Iterator[int]:
        release.wait(60)  # a driver that cannot be cancelled
        yield 1

    started = time.monotonic()
    with pytest.raises(Stalled), read_ahead(lambda: opened(items(), []), 2, 0.5, lambda: None) as a:
        list(a)
    assert time.monotonic() - started < 10
    release.set()


def test_a_call_answers_or_is_interrupted_after_the_timeout() -> None:
    assert call_within(lambda: 42, 5, lambda: None) == 42
    with pytest.raises(ZeroDivisionError):
        call_within(lambda: 1 / 0, 5, lambda: None)

    cancelled = threading.Event()
    started = time.monotonic()
    with pytest.raises(Stalled, match=r"sent nothing for 0 s \(SOURCE_STALL_TIMEOUT_SECONDS\)"):
        call_within(lambda: cancelled.wait(60), 0.3, cancelled.set)
    assert cancelled.is_set()
    assert time.monotonic() - started < 10
