"""``flask refresh jobs`` as a real process, reading the jobs of the Procfile's workers in Redis."""

from __future__ import annotations

import json

from flask.testing import FlaskClient

from tests.support.api import register, submit, wait_for_job
from tests.support.cli import fill_shop, run_flask
from tests.support.services import Database, PostgresServer
from tests.support.workers import StartWorkers


def test_the_latest_jobs_with_their_state_progress_and_error(
    client: FlaskClient,
    environ: dict[str, str],
    workers: StartWorkers,
    postgres: PostgresServer,
    pg_source: Database,
) -> None:
    fill_shop(postgres, pg_source)
    register(client, "shop", "postgres", pg_source.config())
    every_table = {"connection_id": "shop", "data": True, "include_uncached": True}
    missing = {
        "connection_id": "shop",
        "schema_name": "public",
        "table_name": "nope",
        "data": True,
        "async": True,
    }
    with workers(1):
        connection_job = submit(client, every_table)
        assert wait_for_job(client, connection_job, timeout=120)["status"] == "finished"
        missing_job = submit(client, missing)
        assert wait_for_job(client, missing_job, timeout=120)["status"] == "failed"

    listed = run_flask(environ, "jobs")

    assert (listed.status, listed.stderr) == (0, "")
    newest, error, older = listed.stdout.splitlines()
    assert newest.startswith(f"{missing_job}  failed    enqueued ")
    assert newest.endswith(f"  -  {json.dumps(missing)}")
    assert error == "  error: table not found: public.nope (connection shop)"
    assert older.startswith(f"{connection_job}  finished  enqueued ")
    assert older.endswith(f"  2/2 tables, 0 failed, 1,050 rows  {json.dumps(every_table)}")

    latest = run_flask(environ, "jobs", "--limit", "1")

    assert latest.stdout.splitlines() == [newest, error]
