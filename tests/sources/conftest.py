"""Fixtures of the source tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sources import silent_server


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts TCP connections and never sends a byte."""
    with silent_server() as port:
        yield port
