"""Many refreshes of the same tables at once, as users and their cron jobs overlap them.

The same scenario runs in embedded mode (tests/api) and on Redis with forking workers
(tests/workers): a table already being refreshed must be joined, never reported failed.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.support.api import refresh, register, submit, wait_for_job
from tests.support.services import Database, PostgresServer

TABLES = ("a", "b", "slow")


def overlapping_tables(client: FlaskClient, postgres: PostgresServer, db: Database) -> None:
    """Connection ``shop`` of three cached tables, one of them a view that takes 0.2 s to read."""
    with postgres.connect(db) as conn:
        conn.execute("CREATE TABLE a AS SELECT g AS id FROM generate_series(1, 10) g")
        conn.execute("CREATE TABLE b AS SELECT g AS id FROM generate_series(1, 20) g")
        conn.execute(
            "CREATE VIEW slow AS SELECT g AS id FROM generate_series(1, 30) g, pg_sleep(0.2)"
        )
    register(client, "shop", "postgres", db.config())
    for table in TABLES:
        refresh(client, "shop", "public", table)


def refresh_overlapping(
    app: Flask, client: FlaskClient, requests: int = 30, timeout: float = 240
) -> tuple[list[dict[str, Any]], list[int]]:
    """``requests`` connection-wide refreshes of ``shop`` and as many inline refreshes of its
    slow table, all at once; returns the jobs once ended, and the inline answers' statuses."""
    body = {"connection_id": "shop", "schema_name": "public", "table_name": "slow", "data": True}
    statuses: list[int] = []

    def inline() -> None:
        statuses.append(app.test_client().post("/refresh", json=body).status_code)

    threads = [threading.Thread(target=inline) for _ in range(requests)]
    for thread in threads:
        thread.start()
    job_ids = [submit(client, {"connection_id": "shop", "data": True}) for _ in range(requests)]
    jobs = [wait_for_job(client, job_id, timeout=timeout) for job_id in job_ids]
    for thread in threads:
        thread.join(timeout=timeout)
    return jobs, statuses
