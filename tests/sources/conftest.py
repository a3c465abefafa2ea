"""Fixtures of the source tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.source_kinds import SourceKind, make_kind
from tests.support.sources import silent_server


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts TCP connections and never sends a byte."""
    with silent_server() as port:
        yield port


@pytest.fixture
def kind(request: pytest.FixtureRequest, tmp_path: Path) -> SourceKind:
    """A source and a fresh database of its engine; parametrize with the kind's name."""
    return make_kind(request.param, tmp_path, request)
