"""Fixtures of the deletion tests: the service's runtime without a web app.

These tests run ``process_pending_deletions`` and the orphan sweep themselves, so no scheduler
(the web app's in embedded mode) may run them behind their back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config import Settings
from refresh.catalog.migrations import upgrade as migrate
from refresh.runtime import Runtime


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.from_settings(settings)
    migrate(runtime.catalog)
    yield runtime
    runtime.catalog.dispose()
