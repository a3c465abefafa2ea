"""A migrated catalog of its own for each test (the ``catalog_url`` parameter says which)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from refresh.catalog import Catalog
from refresh.catalog.migrations import upgrade as migrate


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    catalog = Catalog(catalog_url)
    migrate(catalog)
    yield catalog
    catalog.dispose()
