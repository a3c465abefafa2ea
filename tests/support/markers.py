"""Parametrizations that run a test once per catalog backend or per cache storage."""

from __future__ import annotations

import pytest

# The ``catalog_url`` and ``cache`` fixtures of tests/conftest.py read these parameters.
both_catalogs = pytest.mark.parametrize("catalog_url", ["sqlite", "postgres"], indirect=True)
both_storages = pytest.mark.parametrize("cache", ["filesystem", "s3"], indirect=True)
