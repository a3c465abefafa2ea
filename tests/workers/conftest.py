"""Fixtures of the worker tests: the service on a real Redis, its worker and scheduler processes."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.support.backends import Backend, S3Backend
from tests.support.services import Database, PostgresServer
from tests.support.slow_view import SlowView
from tests.support.workers import (
    CAP,
    Process,
    RedisDatabase,
    StartWorkers,
    procfile_command,
    running,
)


@pytest.fixture
def environ(
    environ: dict[str, str], redis_database: RedisDatabase, cache: Backend
) -> dict[str, str]:
    """The service's environment on this run's Redis (the web app and every worker share it)."""
    redis_database.client().flushdb()
    extra = cache.server.environ() if isinstance(cache, S3Backend) else {}
    return {
        **environ,
        **extra,
        "REDIS_URL": redis_database.url,
        "PARALLEL_REFRESH_COUNT": str(CAP),
    }


@pytest.fixture
def workers(environ: dict[str, str], tmp_path: Path) -> StartWorkers:
    """``workers(n, *extra_flags)`` starts n worker processes with the Procfile's command."""

    def start(count: int, *flags: str) -> AbstractContextManager[list[Process]]:
        return running(count, [*procfile_command("worker"), *flags], environ, tmp_path)

    return start


@pytest.fixture
def scheduler(environ: dict[str, str], tmp_path: Path) -> Callable[[], AbstractContextManager]:
    """``scheduler()`` starts the scheduler process with the Procfile's command."""

    def start() -> AbstractContextManager[list[Process]]:
        return running(1, procfile_command("scheduler"), environ, tmp_path)

    return start


@pytest.fixture
def view(postgres: PostgresServer, pg_source: Database) -> SlowView:
    """View ``t`` (and table ``t_delay``) in the source database, as slow as the test says."""
    return SlowView(postgres, pg_source)
