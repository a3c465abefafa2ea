"""Connection-wide refreshes in batches, on a real Redis with the Procfile's forking workers:
the cap across workers, a failing table, overlapping requests, and a work horse killed or
stopped in the middle of a batch."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.api import refresh, register, submit, table_info, wait_for_job
from tests.support.overlaps import TABLES, overlapping_tables, refresh_overlapping
from tests.support.services import Database, PostgresServer
from tests.support.workers import StartWorkers, wait_until

EVERY_TABLE = {"connection_id": "src", "data": True, "include_uncached": True}
CACHED_TABLES = {"connection_id": "src", "data": True}
# RQ fails a job whose work horse died once its execution's heartbeat is past due; these flags make
# that seconds instead of minutes (tests/workers/test_worker_stops.py).
QUICK = ("--job-monitoring-interval", "1", "--maintenance-interval", "2", "--worker-ttl", "17")


def job_progress(client: FlaskClient, job_id: str) -> dict:
    return client.get(f"/refresh/jobs/{job_id}").get_json()["progress"]


def statuses(client: FlaskClient, table: str) -> list[str]:
    return [v["status"] for v in table_info(client, "src", "public", table)["versions"]]


@pytest.fixture
def six_tables(client: FlaskClient, postgres: PostgresServer, pg_source: Database) -> None:
    """Tables t0..t5 of 100 rows, cached; t2 and t3 read as slowly as ``delay.seconds`` says."""
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE delay (seconds float)")
        conn.execute("INSERT INTO delay VALUES (0)")
        for n in range(6):
            conn.execute(f"CREATE TABLE base{n} AS SELECT g AS id FROM generate_series(1, 100) g")
            sleep = ", pg_sleep((SELECT seconds FROM delay))" if n in (2, 3) else ""
            conn.execute(f"CREATE VIEW t{n} AS SELECT id FROM base{n}{sleep}")
    register(client, "src", "postgres", pg_source.config())
    for n in range(6):
        refresh(client, "src", "public", f"t{n}")
    with postgres.connect(pg_source) as conn:
        conn.execute("UPDATE delay SET seconds = 60")
        conn.execute("DELETE FROM base0 WHERE id > 50")  # the new versions are told apart


def slow_reads_running(client: FlaskClient, job_id: str) -> bool:
    """The batch has published t0 and t1 and its two threads are reading t2 and t3."""
    return (
        job_progress(client, job_id)["tables_done"] == 2
        and statuses(client, "t2")[0] == "writing"
        and statuses(client, "t3")[0] == "writing"
    )


def test_a_failing_table_never_stops_the_others_of_its_batch(
    client: FlaskClient, workers: StartWorkers, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        for name in ("a", "bad", "c"):
            conn.execute(f"CREATE TABLE {name} (id int, v numeric)")
            conn.execute(f"INSERT INTO {name} SELECT g, g FROM generate_series(1, 10) g")
        conn.execute("UPDATE bad SET v = 1e30 WHERE id = 3")  # does not fit decimal128(38, 9)
    register(client, "src", "postgres", pg_source.config())
    with workers(1):
        job = wait_for_job(client, submit(client, EVERY_TABLE), timeout=120)

    assert job["status"] == "finished", job
    assert job["result"]["tables_refreshed"] == 2
    [error] = job["result"]["errors"]
    assert error["table_name"] == "bad"
    assert 'column "v"' in error["error"]


def test_overlapping_refreshes_join_each_other_instead_of_failing(
    app: Flask,
    client: FlaskClient,
    workers: StartWorkers,
    postgres: PostgresServer,
    pg_source: Database,
) -> None:
    overlapping_tables(client, postgres, pg_source)
    with workers(3):
        jobs, inline = refresh_overlapping(app, client)

    assert [job["status"] for job in jobs] == ["finished"] * len(jobs)
    assert [job["result"]["errors"] for job in jobs] == [[]] * len(jobs)
    assert {job["result"]["tables_refreshed"] for job in jobs} == {len(TABLES)}
    assert set(inline) <= {200, 409}


def test_a_work_horse_killed_mid_batch(
    client: FlaskClient,
    workers: StartWorkers,
    postgres: PostgresServer,
    pg_source: Database,
    six_tables: None,
) -> None:
    """What it published stays; the tables it was reading keep their previous version until its
    job runs again, takes their claims over and refreshes them with the ones it never started;
    every table is counted once."""
    with workers(1, *QUICK) as (worker,):
        job_id = submit(client, CACHED_TABLES)
        wait_until(lambda: slow_reads_running(client, job_id), 60, "t2 and t3 were not reached")
        worker.kill_everything()
    assert statuses(client, "t0") == ["current", "superseded"]
    assert statuses(client, "t4") == ["current"]  # never started
    with postgres.connect(pg_source) as conn:
        conn.execute("UPDATE delay SET seconds = 0")

    with workers(1, *QUICK):  # the dyno comes back; the batch runs again
        job = wait_for_job(client, job_id, timeout=180)

    assert job["status"] == "finished", job
    result = job["result"]
    assert (result["tables_refreshed"], result["tables_failed"]) == (6, 0)
    assert result["total_rows"] == 550
    assert job["progress"]["tables_done"] == 6
    assert statuses(client, "t0") == ["current", "superseded"]  # not refreshed twice
    for table in ("t2", "t3"):
        assert statuses(client, table) == ["current", "failed", "superseded"]
        abandoned = table_info(client, "src", "public", table)["versions"][1]
        assert abandoned["error"].startswith("abandoned")
    assert statuses(client, "t4") == ["current", "superseded"]


def test_sigterm_mid_batch(
    client: FlaskClient,
    workers: StartWorkers,
    postgres: PostgresServer,
    pg_source: Database,
    six_tables: None,
) -> None:
    """The tables being read get the grace period, then fail cleanly with the reason; the
    tables not started are run by another worker; every table is counted once."""
    with workers(1) as (stopping,):
        job_id = submit(client, CACHED_TABLES)
        wait_until(lambda: slow_reads_running(client, job_id), 60, "t2 and t3 were not reached")
        stopping.terminate()
        assert stopping.wait(timeout=60) == 0, stopping.log()
    assert statuses(client, "t4") == ["current"]  # not started: left for another worker

    with workers(1):
        job = wait_for_job(client, job_id, timeout=120)

    assert job["status"] == "finished", job
    result = job["result"]
    assert (result["tables_refreshed"], result["tables_failed"]) == (4, 2)
    for error in result["errors"]:
        assert error["table_name"] in ("t2", "t3")
        assert error["error"].startswith("interrupted: the worker was shut down")
    for table in ("t2", "t3"):
        assert statuses(client, table) == ["failed", "current"]
    assert statuses(client, "t4") == ["current", "superseded"]
