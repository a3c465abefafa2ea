"""Connection-wide refreshes on a real Redis, run by the Procfile's forking ``rq worker``s."""

from __future__ import annotations

import threading

from flask import Flask
from flask.testing import FlaskClient

from refresh.runtime import Runtime
from tests.support.api import register, submit, table_info, wait_for_job
from tests.support.concurrency import most_at_once, refresh_intervals, slow_tables
from tests.support.mysql_readers import reader_processes, zygotes
from tests.support.services import Database, MariaDBServer, PostgresServer
from tests.support.workers import CAP, RedisDatabase, StartWorkers, wait_until

EVERY_TABLE = {"connection_id": "src", "data": True, "include_uncached": True}


def test_three_workers_refresh_a_connection_two_tables_at_a_time(
    client: FlaskClient,
    rt: Runtime,
    workers: StartWorkers,
    redis_database: RedisDatabase,
    postgres: PostgresServer,
    pg_source: Database,
) -> None:
    slow_tables(postgres, pg_source, count=6, seconds=1)
    register(client, "src", "postgres", pg_source.config())
    with workers(3):
        job_id = submit(client, EVERY_TABLE)
        seen_progress = set()

        def ended() -> bool:
            job = client.get(f"/refresh/jobs/{job_id}").get_json()
            seen_progress.add(job["progress"]["tables_done"])
            return job["status"] in ("finished", "failed")

        wait_until(ended, timeout=120, what="the connection refresh did not end")
        job = wait_for_job(client, job_id)

    assert job["status"] == "finished", job
    assert job["result"]["tables_refreshed"] == 6
    assert job["result"]["total_rows"] == 600
    assert job["progress"] == {
        "tables_total": 6,
        "tables_done": 6,
        "tables_failed": 0,
        "rows_synced": 600,
    }
    assert seen_progress & {1, 2, 3, 4, 5}, "progress was never seen between 0 and 6"
    # Queryable for JOB_RESULT_TTL_SECONDS (a day), not RQ's default 500 s.
    assert redis_database.client().ttl(f"rq:job:{job_id}") > 86_000
    intervals = refresh_intervals(rt)
    assert sorted(intervals) == [f"slow_{n}" for n in range(6)]
    assert most_at_once([i for table in intervals.values() for i in table]) == CAP


def test_a_single_worker_completes_a_connection_refresh(
    client: FlaskClient, workers: StartWorkers, postgres: PostgresServer, pg_source: Database
) -> None:
    slow_tables(postgres, pg_source, count=4, seconds=0)
    register(client, "src", "postgres", pg_source.config())
    with workers(1):
        job = wait_for_job(client, submit(client, EVERY_TABLE), timeout=120)
    assert job["status"] == "finished", job
    assert job["result"]["tables_refreshed"] == 4


def test_two_connection_refreshes_at_once_never_refresh_one_table_twice_at_once(
    client: FlaskClient,
    rt: Runtime,
    workers: StartWorkers,
    postgres: PostgresServer,
    pg_source: Database,
) -> None:
    slow_tables(postgres, pg_source, count=4, seconds=1)
    register(client, "src", "postgres", pg_source.config())
    with workers(3):
        first, second = submit(client, EVERY_TABLE), submit(client, EVERY_TABLE)
        jobs = [wait_for_job(client, job_id, timeout=120) for job_id in (first, second)]

    for job in jobs:
        assert job["status"] == "finished", job
        assert job["result"]["tables_refreshed"] == 4
        assert job["result"]["total_rows"] == 400
    intervals = refresh_intervals(rt)
    for table, runs in intervals.items():
        assert most_at_once(runs) == 1, f"{table} was refreshed twice at once: {runs}"
    assert most_at_once([i for runs in intervals.values() for i in runs]) <= CAP


def test_an_inline_refresh_joins_the_job_refreshing_the_same_table(
    app: Flask,
    client: FlaskClient,
    rt: Runtime,
    workers: StartWorkers,
    postgres: PostgresServer,
    pg_source: Database,
) -> None:
    slow_tables(postgres, pg_source, count=1, seconds=3)
    register(client, "src", "postgres", pg_source.config())
    table = {"connection_id": "src", "schema_name": "public", "table_name": "slow_0", "data": True}
    with workers(1):
        job_id = submit(client, {**table, "async": True})
        wait_until(
            lambda: table_info(client, "src", "public", "slow_0")["versions"],
            timeout=60,
            what="the job never claimed the table",
        )
        answers: list[dict] = []
        inline = threading.Thread(
            target=lambda: answers.append(app.test_client().post("/refresh", json=table).get_json())
        )
        inline.start()
        job = wait_for_job(client, job_id)
        inline.join(timeout=60)

    assert job["status"] == "finished"
    assert answers[0]["rows_synced"] == job["result"]["rows_synced"] == 100
    assert [v["status"] for v in table_info(client, "src", "public", "slow_0")["versions"]] == [
        "current"
    ]


def test_work_horses_read_mysql_through_their_worker_s_zygote(
    client: FlaskClient, workers: StartWorkers, mariadb: MariaDBServer, mysql_source: Database
) -> None:
    """The worker starts the zygote before it forks; each work horse's readers are its."""
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE quick AS SELECT seq AS id FROM seq_1_to_10")
        cur.execute("CREATE VIEW slow AS SELECT seq AS id, SLEEP(0.2) AS s FROM seq_1_to_10")
    register(client, "src", "mysql", mysql_source.config())
    with workers(1) as [worker]:
        wait_until(lambda: zygotes(worker.pid), timeout=60, what="the worker started no zygote")
        [zygote] = zygotes(worker.pid)
        job_id = submit(client, EVERY_TABLE)
        wait_until(
            lambda: reader_processes(worker.pid), timeout=60, what="no reader of the zygote's"
        )
        job = wait_for_job(client, job_id, timeout=120)
        assert zygotes(worker.pid) == [zygote]

    assert job["status"] == "finished", job
    assert job["result"]["tables_refreshed"] == 2
    assert job["result"]["total_rows"] == 20
