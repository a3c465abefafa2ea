"""Deferred deletion in embedded mode: the web process's own scheduler deletes old versions.

No REDIS_URL: the same periodic jobs as the Procfile's scheduler, run on the in-process broker.
With the real scheduler process and forking workers, see tests/workers/test_scheduler.py.
"""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient

from refresh.api.context import JOBS
from refresh.runtime import Runtime
from tests.support.api import refresh, register, table_info
from tests.support.backends import Backend
from tests.support.deletions import history, moment_gone, pending
from tests.support.markers import both_catalogs, both_storages
from tests.support.services import Database, PostgresServer
from tests.support.workers import wait_until

GRACE_SECONDS = 2


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    return {
        **environ,
        "DELETION_GRACE_SECONDS": str(GRACE_SECONDS),
        "DELETION_INTERVAL_SECONDS": "1",
    }


@pytest.fixture
def source(client: FlaskClient, postgres: PostgresServer, pg_source: Database) -> None:
    """Connection ``src`` with table ``public.t``."""
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t AS SELECT generate_series(1, 10) AS id")
    register(client, "src", "postgres", pg_source.config())


def current_path(client: FlaskClient) -> str:
    return table_info(client, "src", "public", "t")["current_path"]


@both_catalogs
@both_storages
def test_an_old_version_goes_after_its_grace_period_and_not_before(
    client: FlaskClient, rt: Runtime, cache: Backend, source: None
) -> None:
    refresh(client, "src", "public", "t")
    old = current_path(client)
    refresh(client, "src", "public", "t")
    due = pending(rt)[old].delete_after

    assert moment_gone(cache, old, timeout=30) >= due
    wait_until(lambda: not pending(rt), timeout=10, what="the deletion is not recorded")

    versions = table_info(client, "src", "public", "t")["versions"]
    assert [v["status"] for v in versions] == ["current", "deleted"]
    assert versions[1]["deleted_at"] is not None
    assert versions[0]["deleted_at"] is None
    assert cache.holds(current_path(client))


@both_catalogs
@both_storages
@pytest.mark.parametrize(
    "drop",
    ["/connections/src", "/connections/src/cache", "/connections/src/tables/public/t/cache"],
)
def test_deleting_a_connection_or_dropping_a_cache_deletes_after_the_grace_period(
    client: FlaskClient, rt: Runtime, cache: Backend, source: None, drop: str
) -> None:
    refresh(client, "src", "public", "t")
    refresh(client, "src", "public", "t")
    paths = {v["path"] for v in table_info(client, "src", "public", "t")["versions"]}

    assert client.delete(drop).status_code == 204

    due = {path: row.delete_after for path, row in pending(rt).items()}
    assert set(due) == paths
    for path in paths:
        assert moment_gone(cache, path, timeout=30) >= due[path]
    wait_until(lambda: not pending(rt), timeout=10, what="the deletions are not recorded")
    assert cache.files() == set()
    remaining = {v.status for v in history(rt).values()}
    assert remaining == (set() if drop == "/connections/src" else {"deleted"})


@both_catalogs
@both_storages
def test_fifty_refreshes_leave_exactly_one_version_directory(
    client: FlaskClient, rt: Runtime, cache: Backend, source: None
) -> None:
    for _ in range(50):
        refresh(client, "src", "public", "t")

    wait_until(
        lambda: len(cache.versions()) == 1 and not pending(rt),
        timeout=30,
        what="old versions are left",
    )

    assert cache.holds(current_path(client))
    statuses = [v["status"] for v in table_info(client, "src", "public", "t")["versions"]]
    assert statuses == ["current"] + ["deleted"] * 49


def test_closing_the_app_stops_its_scheduler_at_once(app: Flask) -> None:
    assert "embedded-scheduler" in {thread.name for thread in threading.enumerate()}
    started = time.monotonic()

    app.extensions[JOBS].close()

    assert time.monotonic() - started < 5  # no wait for a scheduler's sleep or a join timeout
    assert "embedded-scheduler" not in {thread.name for thread in threading.enumerate()}
