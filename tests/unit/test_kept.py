"""A source's kept connection: opened once for calls that go well, never shared, never leaked."""

from __future__ import annotations

import itertools

import pytest

from refresh.common.kept import Kept


class Connections:
    """Numbered stand-ins for connections, and which of them were closed."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self.closed: list[int] = []

    def open(self) -> int:
        return next(self._numbers)

    def close(self, connection: int) -> None:
        self.closed.append(connection)


def test_calls_that_go_well_share_one_connection_until_the_source_closes() -> None:
    connections = Connections()
    kept = Kept(connections.close)

    used = []
    for _ in range(3):
        with kept.use(connections.open) as connection:
            used.append(connection)
    kept.close()

    assert used == [1, 1, 1]
    assert connections.closed == [1]


def test_a_call_that_fails_closes_its_connection_and_the_next_opens_another() -> None:
    connections = Connections()
    kept = Kept(connections.close)

    with pytest.raises(RuntimeError), kept.use(connections.open):
        raise RuntimeError("the server went away")
    assert connections.closed == [1]
    with kept.use(connections.open) as connection:
        assert connection == 2


def test_a_call_still_running_elsewhere_never_shares_its_connection() -> None:
    connections = Connections()
    kept = Kept(connections.close)

    abandoned = kept.use(connections.open)  # a call left running in its thread (a stalled source)
    first = abandoned.__enter__()
    with kept.use(connections.open) as second:
        assert second != first
    abandoned.__exit__(None, None, None)  # it ends after all: one of the two stays kept
    kept.close()

    assert sorted(connections.closed) == [1, 2]


def test_a_call_that_ends_after_its_source_closed_closes_its_connection() -> None:
    connections = Connections()
    kept = Kept(connections.close)

    abandoned = kept.use(connections.open)  # a stalled call, left running in its thread
    abandoned.__enter__()
    kept.close()  # the refresh fails and closes its source
    abandoned.__exit__(None, None, None)  # the call ends after all

    assert connections.closed == [1]
