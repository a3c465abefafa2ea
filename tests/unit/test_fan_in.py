"""The fan-in of parallel streams: every item once, bounded memory, failures end the consumer."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from refresh.sources.fan_in import FanIn

Emit = Callable[[int], bool]


def numbers(start: int, count: int) -> Callable[[Emit], None]:
    def produce(emit: Emit) -> None:
        for number in range(start, start + count):
            if not emit(number):
                return

    return produce


def test_items_of_every_producer_arrive_once_even_from_producers_started_late() -> None:
    fan_in: FanIn[int] = FanIn(depth=2)

    def planner(emit: Emit) -> None:  # starts the others, as the PostgreSQL planner does
        for start in (0, 1000, 2000):
            fan_in.start("worker", numbers(start, 500))

    fan_in.start("planner", planner)

    assert sorted(fan_in) == [*range(500), *range(1000, 1500), *range(2000, 2500)]
    assert fan_in.close(timeout=5) == []


def test_producers_stay_at_most_depth_items_ahead() -> None:
    produced: list[int] = []
    fan_in: FanIn[int] = FanIn(depth=3)

    def produce(emit: Emit) -> None:
        for number in range(100):
            produced.append(number)
            if not emit(number):
                return

    fan_in.start("producer", produce)
    items = iter(fan_in)
    assert next(items) == 0
    assert not fan_in.close(timeout=5)
    assert len(produced) <= 1 + 3 + 1  # consumed, buffered, in hand


def test_an_error_of_one_producer_is_raised_and_stops_the_others() -> None:
    fan_in: FanIn[int] = FanIn(depth=1)
    stopped = threading.Event()

    def endless(emit: Emit) -> None:
        number = 0
        while emit(number):
            number += 1
        stopped.set()

    def broken(emit: Emit) -> None:
        raise RuntimeError("stream broke")

    fan_in.start("endless", endless)
    fan_in.start("broken", broken)

    with pytest.raises(RuntimeError, match="stream broke"):
        list(fan_in)
    assert stopped.wait(timeout=5)  # the other producer saw the stop at its next emit
    assert fan_in.close(timeout=5) == []


def test_fail_ends_a_consumer_waiting_on_producers_that_never_return() -> None:
    fan_in: FanIn[int] = FanIn(depth=1)
    never = threading.Event()
    fan_in.start("frozen", lambda emit: never.wait())
    raised: list[BaseException] = []

    def consume() -> None:
        try:
            list(fan_in)  # blocks on the frozen producer until fail()
        except TimeoutError as error:
            raised.append(error)

    consumer = threading.Thread(target=consume)
    consumer.start()
    fan_in.fail(TimeoutError("interrupted"))
    consumer.join(timeout=5)

    assert not consumer.is_alive()
    assert [str(error) for error in raised] == ["interrupted"]
    [stuck] = fan_in.close(timeout=0)  # abandoned, not waited for
    never.set()
    stuck.join(timeout=5)


def test_nothing_starts_once_the_consumer_has_stopped() -> None:
    fan_in: FanIn[int] = FanIn(depth=1)
    assert fan_in.close(timeout=0) == []
    started = threading.Event()
    fan_in.start("late", lambda emit: started.set())
    assert fan_in.close(timeout=5) == []
    assert not started.is_set()
