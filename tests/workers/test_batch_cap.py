"""The per-connection cap holds for batches spread over several workers."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from refresh.catalog import Table
from refresh.runtime import Runtime
from tests.support.api import register, submit, wait_for_job
from tests.support.concurrency import most_at_once, refresh_intervals, slow_tables
from tests.support.services import Database, PostgresServer
from tests.support.workers import StartWorkers

EVERY_TABLE = {"connection_id": "src", "data": True, "include_uncached": True}


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    """Four tables at once: two batches of two threads."""
    return {**environ, "PARALLEL_REFRESH_COUNT": "4"}


def test_batches_on_three_workers_keep_the_cap(
    environ: dict[str, str],
    client: FlaskClient,
    rt: Runtime,
    workers: StartWorkers,
    postgres: PostgresServer,
    pg_source: Database,
) -> None:
    assert environ["PARALLEL_REFRESH_COUNT"] == "4"
    slow_tables(postgres, pg_source, count=8, seconds=1)
    register(client, "src", "postgres", pg_source.config())
    with rt.catalog.session() as session:  # sizes the planner splits into several batches
        session.execute(update(Table).values(size_bytes=50 * 1024 * 1024))
    with workers(3):
        job = wait_for_job(client, submit(client, EVERY_TABLE), timeout=120)

    assert job["status"] == "finished", job
    assert job["result"]["tables_refreshed"] == 8
    runs = [i for table in refresh_intervals(rt).values() for i in table]
    assert most_at_once(runs) == 4  # two batches of two threads, on two workers
