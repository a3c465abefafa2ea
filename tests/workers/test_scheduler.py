"""The Procfile's scheduler process and a forking worker carry out deferred deletion."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from flask.testing import FlaskClient

from refresh.catalog import utcnow
from refresh.runtime import Runtime
from tests.support.api import refresh, register, table_info
from tests.support.backends import Backend
from tests.support.deletions import history, moment_gone, pending, plant_versions, queue
from tests.support.services import Database, PostgresServer
from tests.support.workers import wait_until

# Each storage once, each catalog once: the processes are slow to start.
pytestmark = pytest.mark.parametrize(
    ("catalog_url", "cache"), [("sqlite", "filesystem"), ("postgres", "s3")], indirect=True
)


class TestEveryInterval:
    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        return {**environ, "DELETION_GRACE_SECONDS": "3", "DELETION_INTERVAL_SECONDS": "1"}

    def test_an_old_version_is_deleted_after_its_grace_period_and_not_before(
        self,
        client: FlaskClient,
        rt: Runtime,
        cache: Backend,
        workers: Callable[..., AbstractContextManager],
        scheduler: Callable[[], AbstractContextManager],
        postgres: PostgresServer,
        pg_source: Database,
    ) -> None:
        with postgres.connect(pg_source) as conn:
            conn.execute("CREATE TABLE t AS SELECT generate_series(1, 10) AS id")
        register(client, "src", "postgres", pg_source.config())
        refresh(client, "src", "public", "t")
        old = table_info(client, "src", "public", "t")["current_path"]
        refresh(client, "src", "public", "t")
        due = pending(rt)[old].delete_after

        with workers(1), scheduler():
            gone = moment_gone(cache, old, timeout=60)
            wait_until(lambda: not pending(rt), timeout=10, what="the deletion is not recorded")

        assert gone >= due
        version = history(rt)[old]
        assert version.status == "deleted"
        assert due <= version.deleted_at
        assert cache.holds(table_info(client, "src", "public", "t")["current_path"])


class TestAtStartUp:
    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        return {**environ, "DELETION_INTERVAL_SECONDS": "3600"}

    def test_due_deletions_are_processed_when_the_scheduler_starts(
        self,
        rt: Runtime,
        cache: Backend,
        workers: Callable[..., AbstractContextManager],
        scheduler: Callable[[], AbstractContextManager],
    ) -> None:
        urls = plant_versions(cache, 3)
        queue(rt, urls, delete_after=utcnow())

        with workers(1), scheduler():
            wait_until(lambda: not pending(rt), timeout=60, what="the due rows are still queued")

        assert not any(cache.holds(url) for url in urls)
