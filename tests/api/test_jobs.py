"""Refresh jobs through the API: mode 4, ``async``, the job API and the dashboard.

These run the embedded mode (no REDIS_URL): the same RQ jobs on the in-process broker. The same
behaviour on a real Redis with forking workers is tested in tests/workers/.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from app import create_app
from config import load_settings
from refresh.api.context import JOBS
from tests.support.api import (
    assert_error,
    refresh,
    register,
    submit,
    table_info,
    wait_for_job,
)
from tests.support.freshness import sqlite_source
from tests.support.overlaps import TABLES, overlapping_tables, refresh_overlapping
from tests.support.services import Database, PostgresServer
from tests.support.workers import wait_until

ROWS = {"a": 10, "b": 20, "c": 30}


@pytest.fixture
def shop(client: FlaskClient, postgres: PostgresServer, pg_source: Database) -> Database:
    """Connection ``shop``: tables a, b, c with 10, 20, 30 rows; a and b cached, c not."""
    with postgres.connect(pg_source) as conn:
        for name, rows in ROWS.items():
            conn.execute(f"CREATE TABLE {name} (id int, v numeric)")
            conn.execute(f"INSERT INTO {name} SELECT g, g FROM generate_series(1, {rows}) g")
    register(client, "shop", "postgres", pg_source.config())
    refresh(client, "shop", "public", "a")
    refresh(client, "shop", "public", "b")
    return pg_source


def versions(client: FlaskClient, table: str) -> list[str]:
    return [v["status"] for v in table_info(client, "shop", "public", table)["versions"]]


def test_connection_refresh_is_a_job_over_the_cached_tables(
    client: FlaskClient, shop: Database
) -> None:
    body = {"connection_id": "shop", "data": True}
    job = wait_for_job(client, submit(client, body))

    assert job["status"] == "finished", job
    assert job["request"] == body
    result = job["result"]
    assert isinstance(result.pop("duration_ms"), int)
    assert result == {
        "connection_id": "shop",
        "tables_refreshed": 2,
        "tables_failed": 0,
        "total_rows": 30,
        "errors": [],
    }
    assert job["progress"] == {
        "tables_total": 2,
        "tables_done": 2,
        "tables_failed": 0,
        "rows_synced": 30,
    }
    moments = [datetime.fromisoformat(job[k]) for k in ("enqueued_at", "started_at", "ended_at")]
    assert moments == sorted(moments)
    assert versions(client, "a") == ["current", "superseded"]
    assert versions(client, "b") == ["current", "superseded"]
    assert versions(client, "c") == []


def test_overlapping_refreshes_join_each_other_instead_of_failing(
    app: Flask, client: FlaskClient, postgres: PostgresServer, pg_source: Database
) -> None:
    overlapping_tables(client, postgres, pg_source)
    jobs, inline = refresh_overlapping(app, client)

    assert [job["status"] for job in jobs] == ["finished"] * len(jobs)
    assert [job["result"]["errors"] for job in jobs] == [[]] * len(jobs)
    assert {job["result"]["tables_refreshed"] for job in jobs} == {len(TABLES)}
    assert set(inline) <= {200, 409}  # an inline request waits for a bounded time only


def test_include_uncached_refreshes_every_table(client: FlaskClient, shop: Database) -> None:
    job = wait_for_job(
        client, submit(client, {"connection_id": "shop", "data": True, "include_uncached": True})
    )
    assert job["result"]["tables_refreshed"] == 3
    assert job["result"]["total_rows"] == 60
    assert table_info(client, "shop", "public", "c")["synced"] is True


def test_a_failing_table_is_reported_and_the_others_refresh(
    client: FlaskClient, shop: Database, postgres: PostgresServer
) -> None:
    before = table_info(client, "shop", "public", "a")["current_path"]
    with postgres.connect(shop) as conn:  # 31 integer digits do not fit decimal128(38, 9)
        conn.execute("UPDATE a SET v = 1e30 WHERE id = 3")
    job = wait_for_job(client, submit(client, {"connection_id": "shop", "data": True}))

    assert job["status"] == "finished"
    assert job["result"]["tables_refreshed"] == 1
    assert job["result"]["tables_failed"] == 1
    (error,) = job["result"]["errors"]
    assert (error["schema_name"], error["table_name"]) == ("public", "a")
    assert 'column "v"' in error["error"]
    assert job["progress"]["tables_failed"] == 1
    assert table_info(client, "shop", "public", "a")["current_path"] == before
    assert versions(client, "b") == ["current", "superseded"]


@pytest.mark.parametrize("catalog_url", ["postgres"], indirect=True)
def test_a_batch_whose_catalog_connections_are_cut_goes_on_with_new_ones(
    client: FlaskClient, catalog_url: str, tmp_path: Path
) -> None:
    """A catalog that restarts or fails over mid-batch fails at most the tables whose catalog
    work it cut (one a thread); the batch goes on, its threads on new catalog connections."""
    tables = tuple(f"t{number:02d}" for number in range(60))
    sqlite_source(client, tmp_path / "src.sqlite", tables=tables)
    catalog = make_url(catalog_url).database
    cut: list[int] = []

    def cut_after_three_tables() -> None:
        with psycopg.connect(catalog_url.replace("+psycopg", ""), autocommit=True) as conn:
            done = "SELECT count(*) FROM table_versions WHERE status = 'current'"
            wait_until(lambda: conn.execute(done).fetchone()[0] >= 3, 30, "no table refreshed")
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (catalog,),
            )
            cut.append(conn.execute(done).fetchone()[0])

    cutter = threading.Thread(target=cut_after_three_tables)
    cutter.start()
    body = {"connection_id": "src", "data": True, "include_uncached": True, "async": False}
    response = client.post("/refresh", json=body)
    cutter.join()

    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    [published_at_the_cut] = cut
    assert published_at_the_cut < len(tables), "the batch ended before its catalog was cut"
    assert result["tables_failed"] <= 4  # PARALLEL_REFRESH_COUNT: one table a thread, at most
    assert result["tables_refreshed"] + result["tables_failed"] == len(tables)
    for error in result["errors"]:
        assert "catalog database is unavailable" in error["error"], error


def test_tables_removed_at_the_source_are_skipped(
    client: FlaskClient, shop: Database, postgres: PostgresServer
) -> None:
    with postgres.connect(shop) as conn:
        conn.execute("DROP TABLE b")
    assert client.post("/refresh", json={"connection_id": "shop"}).status_code == 200
    job = wait_for_job(client, submit(client, {"connection_id": "shop", "data": True}))
    assert job["result"]["tables_refreshed"] == 1
    assert job["result"]["errors"] == []
    assert job["progress"]["tables_total"] == 1


def test_a_connection_without_cached_tables_finishes_at_once_with_zeros(
    client: FlaskClient, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE never_cached (id int)")
    register(client, "empty", "postgres", pg_source.config())
    job = wait_for_job(client, submit(client, {"connection_id": "empty", "data": True}))
    assert job["status"] == "finished"
    assert job["result"] == {
        "connection_id": "empty",
        "tables_refreshed": 0,
        "tables_failed": 0,
        "total_rows": 0,
        "duration_ms": 0,
        "errors": [],
    }


def test_async_false_waits_for_the_connection_refresh(client: FlaskClient, shop: Database) -> None:
    response = client.post("/refresh", json={"connection_id": "shop", "data": True, "async": False})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {
        "connection_id",
        "tables_refreshed",
        "tables_failed",
        "total_rows",
        "duration_ms",
        "errors",
    }
    assert (body["tables_refreshed"], body["total_rows"]) == (2, 30)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"connection_id": "shop"},
        {"connection_id": "shop", "schema_name": "public", "table_name": "c", "data": True},
    ],
    ids=["all schemas", "one connection's schema", "one table's data"],
)
def test_async_true_gives_the_inline_answer_as_the_job_result(
    client: FlaskClient, shop: Database, body: dict[str, object]
) -> None:
    inline = client.post("/refresh", json=body).get_json()
    job = wait_for_job(client, submit(client, {**body, "async": True}))
    assert job["status"] == "finished", job
    inline.pop("duration_ms", None)
    job["result"].pop("duration_ms", None)
    assert job["result"] == inline
    expected_tables = 1 if "table_name" in body else 0
    assert job["progress"]["tables_done"] == expected_tables


def test_an_async_job_that_fails_says_why(client: FlaskClient, shop: Database) -> None:
    body = {"connection_id": "shop", "schema_name": "public", "table_name": "a", "data": True}
    client.delete("/connections/shop")
    assert_error(client.post("/refresh", json=body), 404, "NOT_FOUND")
    register_again = {**body, "connection_id": "gone", "async": True}
    assert_error(client.post("/refresh", json=register_again), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "job_id", [str(uuid.uuid4()), "x" * 300, "a b", "..", "%2e%2e%2fetc", "rq:job:1"]
)
def test_unknown_or_malformed_job_id_is_404(client: FlaskClient, job_id: str) -> None:
    assert_error(client.get(f"/refresh/jobs/{job_id}"), 404, "NOT_FOUND")


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
def test_include_uncached_must_be_a_boolean(client: FlaskClient, value: object) -> None:
    body = {"connection_id": "shop", "data": True, "include_uncached": value}
    assert_error(client.post("/refresh", json=body), 400, "BAD_REQUEST")


def test_connection_refresh_with_its_source_down_reports_every_table(
    client: FlaskClient, shop: Database, postgres: PostgresServer
) -> None:
    before = {t: table_info(client, "shop", "public", t)["current_path"] for t in ("a", "b")}
    with postgres.admin("postgres") as conn:
        conn.execute(f'DROP DATABASE "{shop.database}" WITH (FORCE)')
    job = wait_for_job(client, submit(client, {"connection_id": "shop", "data": True}))

    assert job["status"] == "finished"
    assert job["result"]["tables_failed"] == 2
    assert [e["table_name"] for e in job["result"]["errors"]] == ["a", "b"]
    assert all(shop.database in e["error"] for e in job["result"]["errors"])
    for table, path in before.items():
        assert table_info(client, "shop", "public", table)["current_path"] == path


class TestRedisDown:
    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        return {**environ, "REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens there

    def test_jobs_are_503_and_inline_refreshes_still_work(
        self, client: FlaskClient, shop: Database
    ) -> None:
        for body in (
            {"connection_id": "shop", "data": True},
            {"connection_id": "shop", "data": True, "async": False},
            {"connection_id": "shop", "async": True},
        ):
            message = assert_error(client.post("/refresh", json=body), 503, "SERVICE_UNAVAILABLE")
            assert "Redis" in message
        assert_error(client.get(f"/refresh/jobs/{uuid.uuid4()}"), 503, "SERVICE_UNAVAILABLE")
        assert client.post("/refresh", json={"connection_id": "shop"}).status_code == 200
        refresh(client, "shop", "public", "a")

        health = client.get("/health")
        assert health.status_code == 503
        assert health.get_json()["checks"]["redis"] == "unavailable"


class TestStoredPasswordsUnreadable:
    @pytest.fixture
    def other_key(self, environ: dict[str, str]) -> Iterator[Flask]:
        app = create_app(load_settings({**environ, "SECRET_KEY": "a different key"}))
        yield app
        app.extensions[JOBS].close()

    def test_the_reason_is_said_inline_and_in_the_job(
        self, client: FlaskClient, other_key: Flask, shop: Database
    ) -> None:
        client.delete("/connections/shop")
        register(client, "shop", "postgres", shop.config(password="pw"))
        other = other_key.test_client()
        body = {"connection_id": "shop", "schema_name": "public", "table_name": "a", "data": True}

        message = assert_error(other.post("/refresh", json=body), 500, "INTERNAL_SERVER_ERROR")
        assert "SECRET_KEY" in message
        job = wait_for_job(other, submit(other, {**body, "async": True}))
        assert job["status"] == "failed"
        assert job["error"] == message


def test_dashboard_is_mounted_at_rq_and_shows_the_jobs(client: FlaskClient, shop: Database) -> None:
    job_id = submit(client, {"connection_id": "shop", "data": True})
    wait_for_job(client, job_id)
    page = client.get("/rq/")
    assert page.status_code == 200
    assert b"<html" in page.data.lower()
    queues = client.get("/rq/0/data/queues.json").get_json()["queues"]
    assert "refresh" in {queue["name"] for queue in queues}
    job = client.get(f"/rq/0/data/job/{job_id}.json").get_json()
    assert job["id"] == job_id


class TestDashboardWithToken:
    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        return {**environ, "API_TOKEN": "dash-token"}

    def test_behind_the_token_with_basic_auth_for_browsers(self, client: FlaskClient) -> None:
        anonymous = client.get("/rq/")
        assert_error(anonymous, 401, "UNAUTHORIZED")
        assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")

        def basic(password: str) -> dict[str, str]:
            encoded = base64.b64encode(f"anyone:{password}".encode()).decode()
            return {"Authorization": f"Basic {encoded}"}

        assert_error(client.get("/rq/", headers=basic("wrong")), 401, "UNAUTHORIZED")
        assert client.get("/rq/", headers=basic("dash-token")).status_code == 200
        bearer = {"Authorization": "Bearer dash-token"}
        assert client.get("/rq/0/data/queues.json", headers=bearer).status_code == 200
        # The API itself still wants the bearer token.
        assert_error(client.get("/connections", headers=basic("dash-token")), 401, "UNAUTHORIZED")

        forged = {**basic("dash-token"), "Origin": "https://evil.example"}
        assert_error(
            client.post("/rq/queue/refresh/failed/empty", headers=forged), 403, "FORBIDDEN"
        )
