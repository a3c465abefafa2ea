"""The storage suite runs once per implementation through the ``backend`` fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backends import Backend, make_backend


@pytest.fixture(
    params=["filesystem", pytest.param("s3", marks=pytest.mark.integration)],
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return make_backend(request.param, tmp_path, request)
