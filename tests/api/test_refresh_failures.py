"""Data refresh failure paths and single flight: the previous version always stays current."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from refresh import data_refresh, version_build
from refresh.catalog import PendingDeletion, TableVersion, utcnow
from refresh.runtime import Runtime
from tests.support.api import assert_error, refresh, register, table_info
from tests.support.backends import Backend
from tests.support.markers import both_catalogs, both_storages
from tests.support.paths import ROOT
from tests.support.services import Database, MariaDBServer, PostgresServer

TABLE = {"connection_id": "src", "schema_name": "public", "table_name": "t", "data": True}


def versions(rt: Runtime) -> list[TableVersion]:
    with rt.catalog.session() as session:
        return list(session.scalars(select(TableVersion).order_by(TableVersion.id)))


def after_first_batch(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    """Run ``action`` once the first batch has been written: the failure hits mid-stream."""
    write = version_build.write_parquet_files

    def interrupted(batches: Iterable[pa.RecordBatch], *args: object):
        def stream():
            for number, batch in enumerate(batches):
                yield batch
                if number == 0:
                    action()

        return write(stream(), *args)

    monkeypatch.setattr(version_build, "write_parquet_files", interrupted)


@pytest.fixture
def cached(client: FlaskClient, postgres: PostgresServer, pg_source: Database) -> str:
    """A PostgreSQL table refreshed once; returns its current path."""
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int, v numeric)")
        conn.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 300000) g")
    register(client, "src", "postgres", pg_source.config())
    refresh(client, "src", "public", "t")
    return table_info(client, "src", "public", "t")["current_path"]


def assert_previous_still_current(client: FlaskClient, cache: Backend, previous: str) -> None:
    info = table_info(client, "src", "public", "t")
    assert info["current_path"] == previous
    assert cache.read(previous).num_rows == 300000
    assert [v["status"] for v in info["versions"]] == ["failed", "current"]
    (only,) = cache.versions()  # the failed attempt left nothing behind
    assert previous.endswith(only.rsplit("/", 1)[-1])


@both_storages
def test_value_that_does_not_fit_fails_mid_stream(
    client: FlaskClient, cache: Backend, cached: str, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("UPDATE t SET v = 1.0000000001 WHERE id = 299999")
    message = assert_error(client.post("/refresh", json=TABLE), 502, "SOURCE_UNAVAILABLE")
    assert '"v"' in message or "v:" in message or "column v" in message, message
    assert_previous_still_current(client, cache, cached)
    info = table_info(client, "src", "public", "t")
    assert info["versions"][0]["error"] == message


def test_killed_source_connection_fails_cleanly(
    client: FlaskClient,
    cache: Backend,
    monkeypatch: pytest.MonkeyPatch,
    mariadb: MariaDBServer,
    mysql_source: Database,
) -> None:
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id int, pad varchar(300))")
        cur.execute("INSERT INTO t SELECT seq, REPEAT('x', 300) FROM seq_1_to_300000")
    register(client, "src", "mysql", mysql_source.config(password=""))
    table = {**TABLE, "schema_name": mysql_source.database}
    assert client.post("/refresh", json=table).status_code == 200
    previous = table_info(client, "src", mysql_source.database, "t")["current_path"]

    def kill_reader() -> None:
        with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.PROCESSLIST"
                " WHERE db = %s AND info LIKE 'SELECT%%FROM%%' AND id <> CONNECTION_ID()",
                (mysql_source.database,),
            )
            for (thread_id,) in cur.fetchall():
                cur.execute(f"KILL {int(thread_id)}")

    after_first_batch(monkeypatch, kill_reader)
    assert_error(client.post("/refresh", json=table), 502, "SOURCE_UNAVAILABLE")
    info = table_info(client, "src", mysql_source.database, "t")
    assert info["current_path"] == previous
    assert cache.read(previous).num_rows == 300000
    assert [v["status"] for v in info["versions"]] == ["failed", "current"]
    assert len(cache.versions()) == 1


@both_catalogs  # publishing is one statement on PostgreSQL, steps on SQLite
def test_dropping_the_cache_during_a_refresh_publishes_nothing(
    client: FlaskClient, cache: Backend, cached: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped = []
    after_first_batch(
        monkeypatch,
        lambda: dropped.append(client.delete("/connections/src/tables/public/t/cache")),
    )
    message = assert_error(client.post("/refresh", json=TABLE), 409, "CONFLICT")

    assert dropped[0].status_code == 204
    assert message == "the table's cache was dropped while this refresh ran; nothing was published"
    info = table_info(client, "src", "public", "t")
    assert info["synced"] is False
    assert [(v["status"], v["error"]) for v in info["versions"]] == [
        ("failed", "the table's cache was dropped while this refresh ran"),
        ("superseded", None),
    ]
    (only,) = cache.versions()  # the refresh removed its own directory; the old one waits
    assert cached.endswith(only.rsplit("/", 1)[-1])


@pytest.mark.parametrize("cache", ["s3"], indirect=True)
def test_failed_upload_keeps_the_previous_version(
    client: FlaskClient, cache: Backend, rt: Runtime, cached: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "please slow down"}}, "Put")

    monkeypatch.setattr(rt.storage._client, "upload_file", refuse)
    message = assert_error(client.post("/refresh", json=TABLE), 500, "INTERNAL_SERVER_ERROR")
    assert message.startswith("cache storage failed: S3 upload to")
    assert "please slow down" in message
    assert_previous_still_current(client, cache, cached)


@pytest.mark.parametrize("catalog_url", ["postgres"], indirect=True)
def test_failed_catalog_swap_removes_the_new_directory(
    client: FlaskClient, cache: Backend, rt: Runtime, cached: str
) -> None:
    with rt.catalog.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'catalog refuses the swap'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER no_swap BEFORE UPDATE OF current_version ON tables "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        )
    assert_error(client.post("/refresh", json=TABLE), 500, "INTERNAL_SERVER_ERROR")
    assert_previous_still_current(client, cache, cached)


@pytest.mark.parametrize("catalog_url", ["postgres"], indirect=True)
def test_failure_to_queue_the_old_directory_is_a_warning(
    client: FlaskClient, rt: Runtime, cached: str
) -> None:
    with rt.catalog.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER no_room BEFORE INSERT ON pending_deletions "
                "FOR EACH ROW EXECUTE FUNCTION full_disk()"
            )
        )
    response = client.post("/refresh", json=TABLE)
    assert response.status_code == 200
    (warning,) = response.get_json()["warnings"]
    assert warning["schema_name"] == "public"
    assert warning["table_name"] == "t"
    assert warning["message"].startswith("Failed to schedule deletion of old cache: ")
    assert "disk full" in warning["message"]
    assert table_info(client, "src", "public", "t")["current_path"] != cached


@pytest.fixture
def slow_table(client: FlaskClient, postgres: PostgresServer, pg_source: Database) -> None:
    """A view that takes a second to read, so concurrent refreshes overlap."""
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE base (id int)")
        conn.execute("INSERT INTO base SELECT generate_series(1, 1000)")
        conn.execute("CREATE VIEW t AS SELECT base.id FROM base, pg_sleep(1)")
    register(client, "src", "postgres", pg_source.config())


@both_storages
def test_concurrent_refreshes_of_one_table_publish_one_version(
    app: Flask, cache: Backend, rt: Runtime, slow_table: None
) -> None:
    answers: list[tuple[int, dict]] = []

    def call() -> None:
        response = app.test_client().post("/refresh", json=TABLE)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [200, 200, 200]
    assert {body["rows_synced"] for _, body in answers} == {1000}
    assert [v.status for v in versions(rt)] == ["current"]
    assert len(cache.versions()) == 1


@pytest.mark.parametrize("catalog_url", ["postgres"], indirect=True)
def test_two_processes_refreshing_one_table_publish_one_version(
    client: FlaskClient, cache: Backend, rt: Runtime, environ: dict[str, str], slow_table: None
) -> None:
    script = (
        "import json, sys\n"
        "from config import load_settings\n"
        "from refresh.data_refresh import refresh_table\n"
        "from refresh.runtime import Runtime\n"
        "rt = Runtime.from_settings(load_settings())\n"
        "print(json.dumps(refresh_table(rt, 'src', 'public', 't').rows_synced))\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, **environ},
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not [v for v in versions(rt) if v.status == "writing"]:  # the other one is reading
        assert other.poll() is None, "the other process ended before it claimed the table"
        assert time.monotonic() < deadline, "the other process never claimed the table"
        time.sleep(0.02)
    ours = client.post("/refresh", json=TABLE)
    out, _ = other.communicate(timeout=60)
    assert other.returncode == 0
    assert json.loads(out) == 1000
    assert ours.status_code == 200
    assert ours.get_json()["rows_synced"] == 1000
    assert [v.status for v in versions(rt)] == ["current"]
    assert len(cache.versions()) == 1


@both_catalogs  # publishing is one statement on PostgreSQL, steps on SQLite
def test_a_claim_left_by_a_dead_process_is_taken_over(
    client: FlaskClient, cache: Backend, rt: Runtime, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int)")
    register(client, "src", "postgres", pg_source.config())
    handle = rt.storage.prepare_cache_write("src", "public", "t")
    (handle.local_dir / "part-00000.parquet").write_bytes(b"half a parquet file")
    long_ago = utcnow() - dt.timedelta(hours=1)
    with rt.catalog.session() as session:
        table_id = session.scalar(text("SELECT id FROM tables"))
        session.add(
            TableVersion(
                table_id=table_id,
                version=handle.version,
                path=handle.url,
                status="writing",
                started_at=long_ago,
                heartbeat_at=long_ago,
            )
        )
    assert refresh(client, "src", "public", "t")["rows_synced"] == 0
    statuses = [(v.version, v.status) for v in versions(rt)]
    assert statuses[0] == (handle.version, "failed")
    assert statuses[1][1] == "current"
    with rt.catalog.session() as session:
        assert session.scalars(select(PendingDeletion.path)).all() == [handle.url]


def test_a_refresh_that_finishes_just_before_ours_claims_does_not_make_ours_fail(
    client: FlaskClient, rt: Runtime, cached: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    claim = data_refresh.claim
    calls = []

    def another_refresh_first(*args: object, **kwargs: object) -> object:
        if not calls:
            calls.append("other")
            data_refresh.refresh_table(rt, "src", "public", "t")  # publishes in between
        return claim(*args, **kwargs)

    monkeypatch.setattr(data_refresh, "claim", another_refresh_first)
    assert refresh(client, "src", "public", "t")["rows_synced"] == 300000
    assert [v.status for v in versions(rt)] == ["superseded", "superseded", "current"]
