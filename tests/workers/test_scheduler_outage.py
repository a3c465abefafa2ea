"""The Procfile's scheduler outlives a Redis outage (``rq cron`` exits on the first error)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from refresh.catalog import utcnow
from refresh.runtime import Runtime
from tests.support.backends import Backend
from tests.support.deletions import pending, plant_versions, queue
from tests.support.proxy import pausable_proxy
from tests.support.workers import (
    REDIS_HOST,
    REDIS_PORT,
    RedisDatabase,
    procfile_command,
    running,
    wait_until,
)

DEADLINE_SECONDS = 60


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    return {**environ, "DELETION_INTERVAL_SECONDS": "1"}


def test_the_scheduler_goes_on_after_redis_comes_back(
    rt: Runtime,
    cache: Backend,
    environ: dict[str, str],
    workers: Callable[..., AbstractContextManager],
    redis_database: RedisDatabase,
    tmp_path: Path,
) -> None:
    def deleted_when_due(count: int) -> None:
        queue(rt, plant_versions(cache, count), delete_after=utcnow())
        wait_until(lambda: not pending(rt), DEADLINE_SECONDS, "due deletions are still queued")

    with pausable_proxy(REDIS_HOST, REDIS_PORT) as redis_proxy:
        # Only the scheduler reaches Redis through the proxy; the worker's path stays up.
        through_proxy = f"redis://127.0.0.1:{redis_proxy.port}/{redis_database.number}"
        scheduler_environ = {**environ, "REDIS_URL": through_proxy}
        command = procfile_command("scheduler")
        with workers(1), running(1, command, scheduler_environ, tmp_path) as [scheduler]:
            deleted_when_due(1)

            redis_proxy.cut()
            wait_until(
                lambda: "Redis failed" in scheduler.log() or scheduler.popen.poll() is not None,
                DEADLINE_SECONDS,
                "the scheduler did not meet the outage",
            )
            redis_proxy.resume()

            assert scheduler.popen.poll() is None, scheduler.log()
            deleted_when_due(2)
