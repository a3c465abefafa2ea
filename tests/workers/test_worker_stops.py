"""A worker stopped mid-table (SIGTERM, as a dyno restart) or killed outright (kill -9).

Either way the previous version stays current and nothing half-written is published; a stopped
worker fails its job at once with the reason, a killed one is found failed within a bounded time.
"""

from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient

from tests.support.api import refresh, register, submit, table_info, wait_for_job
from tests.support.backends import Backend
from tests.support.services import Database
from tests.support.slow_view import SlowView
from tests.support.workers import StartWorkers, wait_until

TABLE = {"connection_id": "src", "schema_name": "public", "table_name": "t", "data": True}


@pytest.fixture
def slowed(client: FlaskClient, view: SlowView, pg_source: Database) -> str:
    """Table ``t`` refreshed once, then made to take a minute to read; returns its current path."""
    register(client, "src", "postgres", pg_source.config())
    refresh(client, "src", "public", "t")
    view.delay(60)
    return table_info(client, "src", "public", "t")["current_path"]


def statuses(client: FlaskClient) -> list[str]:
    return [v["status"] for v in table_info(client, "src", "public", "t")["versions"]]


def running_job(client: FlaskClient) -> str:
    job_id = submit(client, {**TABLE, "async": True})
    wait_until(lambda: statuses(client)[0] == "writing", timeout=60, what="the job never claimed t")
    return job_id


def test_sigterm_fails_the_running_table_cleanly(
    client: FlaskClient, cache: Backend, workers: StartWorkers, slowed: str
) -> None:
    with workers(1) as (worker,):
        job_id = running_job(client)
        worker.terminate()
        job = wait_for_job(client, job_id, timeout=60)
        assert worker.wait(timeout=60) == 0, worker.log()

    assert job["status"] == "failed"
    assert job["error"].startswith("interrupted: the worker was shut down before this finished")
    info = table_info(client, "src", "public", "t")
    assert info["current_path"] == slowed
    assert [v["status"] for v in info["versions"]] == ["failed", "current"]
    assert info["versions"][0]["error"] == job["error"]
    assert len(cache.versions()) == 1  # the half-written version was removed


def test_a_killed_worker_s_job_is_failed_and_its_claim_taken_over(
    client: FlaskClient,
    cache: Backend,
    workers: StartWorkers,
    view: SlowView,
    slowed: str,
) -> None:
    # RQ declares a job abandoned once its worker's heartbeat is 60 s past due (plus the
    # monitoring interval), then fails it at the next registry maintenance of any worker, which an
    # idle worker runs between two blocking waits for jobs (worker TTL - 15 s).
    quick = ("--job-monitoring-interval", "1", "--maintenance-interval", "2", "--worker-ttl", "17")
    with workers(1, *quick) as (worker,):
        job_id = running_job(client)
        worker.kill_everything()
    assert table_info(client, "src", "public", "t")["current_path"] == slowed

    killed_at = time.monotonic()
    with workers(1, *quick):  # the dyno comes back
        job = wait_for_job(client, job_id, timeout=150)
    assert job["status"] == "failed"
    assert "its worker was killed" in job["error"]
    assert time.monotonic() - killed_at < 150

    view.delay(0)
    refresh(client, "src", "public", "t")  # takes over the dead claim
    info = table_info(client, "src", "public", "t")
    assert [v["status"] for v in info["versions"]] == ["current", "failed", "superseded"]
    assert info["versions"][1]["error"].startswith("abandoned")
