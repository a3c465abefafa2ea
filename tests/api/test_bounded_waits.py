"""Every wait is bounded: a frozen source, a frozen S3, waiting requests, a client that stalls.

Frozen hosts are simulated with a pausable TCP proxy in front of the real servers (a paused
proxy holds bytes exactly like a stopped host), so no shared server is ever stopped.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from config import Settings
from refresh import prefetch, version_build
from refresh.catalog import Catalog, TableVersion, VersionStatus
from refresh.common.errors import ServiceUnavailable
from refresh.runtime import Runtime
from tests.support.api import assert_error, refresh, register, table_info
from tests.support.backends import Backend
from tests.support.proxy import PausableProxy, pausable_proxy
from tests.support.seaweedfs import HOST, S3_PORT
from tests.support.services import Database, PostgresServer
from tests.support.web import get, post, run_gunicorn
from tests.support.workers import wait_until

TABLE = {"connection_id": "src", "schema_name": "public", "table_name": "t", "data": True}


def fill(postgres: PostgresServer, db: Database, rows: int = 300_000) -> None:
    with postgres.connect(db) as conn:
        conn.execute("CREATE TABLE t (id int, pad text)")
        conn.execute(f"INSERT INTO t SELECT g, repeat('x', 50) FROM generate_series(1, {rows}) g")


def statuses(client: FlaskClient) -> list[str]:
    return [v["status"] for v in table_info(client, "src", "public", "t")["versions"]]


@pytest.fixture
def pg_proxy(postgres: PostgresServer) -> Iterator[PausableProxy]:
    """The run's PostgreSQL behind a proxy that a test can freeze or cut."""
    with pausable_proxy("127.0.0.1", 5432) as proxy:
        yield proxy


class TestFrozenSource:
    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        return {**environ, "SOURCE_STALL_TIMEOUT_SECONDS": "2"}

    def test_a_source_frozen_mid_copy_fails_the_refresh_and_frees_the_claim(
        self,
        client: FlaskClient,
        cache: Backend,
        pg_proxy: PausableProxy,
        postgres: PostgresServer,
        pg_source: Database,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(prefetch, "STOP_SECONDS", 2)
        fill(postgres, pg_source)
        register(client, "src", "postgres", pg_source.config(port=pg_proxy.port))
        refresh(client, "src", "public", "t")
        previous = table_info(client, "src", "public", "t")["current_path"]

        write = version_build.write_parquet_files

        def freeze_after_the_first_batch(batches, *args):  # type: ignore[no-untyped-def]
            def stream():  # type: ignore[no-untyped-def]
                for number, batch in enumerate(batches):
                    yield batch
                    if number == 0:
                        pg_proxy.pause()

            return write(stream(), *args)

        monkeypatch.setattr(version_build, "write_parquet_files", freeze_after_the_first_batch)
        started = time.monotonic()
        message = assert_error(client.post("/refresh", json=TABLE), 502, "SOURCE_UNAVAILABLE")
        assert time.monotonic() - started < 30
        assert "sent nothing for 2 s (SOURCE_STALL_TIMEOUT_SECONDS)" in message
        pg_proxy.resume()

        info = table_info(client, "src", "public", "t")
        assert info["current_path"] == previous
        assert statuses(client) == ["failed", "current"]  # the claim is not left writing
        assert len(cache.versions()) == 1

    def test_a_frozen_source_fails_a_schema_refresh_in_bounded_time(
        self,
        client: FlaskClient,
        pg_proxy: PausableProxy,
        postgres: PostgresServer,
        pg_source: Database,
    ) -> None:
        fill(postgres, pg_source, rows=10)
        register(client, "src", "postgres", pg_source.config(port=pg_proxy.port))
        pg_proxy.pause()
        started = time.monotonic()
        response = client.post("/refresh", json={"connection_id": "src"})
        assert time.monotonic() - started < 30
        message = assert_error(response, 502, "SOURCE_UNAVAILABLE")
        assert "sent nothing for 2 s" in message
        pg_proxy.resume()


@pytest.fixture
def s3_proxy(s3_server: object) -> Iterator[PausableProxy]:
    """The run's S3 server behind a proxy that a test can freeze."""
    with pausable_proxy(HOST, S3_PORT) as proxy:
        yield proxy


class TestFrozenStorage:
    @pytest.fixture
    def environ(self, environ: dict[str, str], s3_proxy: PausableProxy) -> dict[str, str]:
        return {
            **environ,
            "S3_ENDPOINT_URL": f"http://{HOST}:{s3_proxy.port}",
            "S3_CONNECT_TIMEOUT_SECONDS": "2",
            "S3_READ_TIMEOUT_SECONDS": "2",
            "S3_MAX_ATTEMPTS": "1",
        }

    @pytest.mark.parametrize("cache", ["s3"], indirect=True)
    def test_a_frozen_s3_fails_the_refresh_and_health_answers_at_once(
        self,
        client: FlaskClient,
        cache: Backend,
        s3_proxy: PausableProxy,
        postgres: PostgresServer,
        pg_source: Database,
    ) -> None:
        fill(postgres, pg_source, rows=1000)
        register(client, "src", "postgres", pg_source.config())
        refresh(client, "src", "public", "t")
        previous = table_info(client, "src", "public", "t")["current_path"]

        s3_proxy.pause()
        started = time.monotonic()
        health = client.get("/health")
        assert time.monotonic() - started < 5
        assert health.status_code == 503
        assert health.get_json()["checks"]["storage"] == "unavailable"

        started = time.monotonic()
        message = assert_error(client.post("/refresh", json=TABLE), 500, "INTERNAL_SERVER_ERROR")
        assert time.monotonic() - started < 30
        assert message.startswith("cache storage failed: S3 upload to")
        s3_proxy.resume()
        assert table_info(client, "src", "public", "t")["current_path"] == previous


class TestHealthWithFrozenHosts:
    """Whatever is down, and however long its client would wait, /health answers in seconds."""

    @pytest.fixture
    def environ(self, environ: dict[str, str], s3_proxy: PausableProxy) -> dict[str, str]:
        return {**environ, "S3_ENDPOINT_URL": f"http://{HOST}:{s3_proxy.port}"}  # default timeouts

    @pytest.mark.parametrize("cache", ["s3"], indirect=True)
    def test_health_answers_within_seconds(
        self, client: FlaskClient, s3_proxy: PausableProxy
    ) -> None:
        assert client.get("/health").status_code == 200
        s3_proxy.pause()
        for _ in range(3):  # stuck checks of earlier calls do not delay the later ones
            started = time.monotonic()
            health = client.get("/health")
            assert time.monotonic() - started < 5
            assert health.status_code == 503
            assert health.get_json()["checks"] == {
                "catalog": "ok",
                "storage": "unavailable",
                "redis": "ok",
            }
        s3_proxy.resume()


@pytest.mark.parametrize("catalog_url", ["postgres"], indirect=True)
class TestCatalogDown:
    @pytest.fixture
    def environ(self, environ: dict[str, str], pg_proxy: PausableProxy) -> dict[str, str]:
        url = make_url(environ["DATABASE_URL"]).set(port=pg_proxy.port)
        return {**environ, "DATABASE_URL": url.render_as_string(hide_password=False)}

    def test_a_catalog_that_went_down_answers_503_until_it_is_back(
        self, client: FlaskClient, pg_proxy: PausableProxy
    ) -> None:
        assert client.get("/connections").status_code == 200
        pg_proxy.cut()
        message = assert_error(client.get("/connections"), 503, "SERVICE_UNAVAILABLE")
        assert message.startswith("the catalog database is unavailable right now")
        pg_proxy.resume()
        assert client.get("/connections").status_code == 200

    def test_a_catalog_that_never_answers_fails_a_new_connection_within_seconds(
        self, settings: Settings, pg_proxy: PausableProxy
    ) -> None:
        catalog = Catalog(settings.database_url)  # no connection yet: the query opens one
        outcome: list[BaseException] = []

        def query() -> None:
            try:
                with catalog.session() as session:
                    session.execute(text("SELECT 1"))
            except BaseException as error:
                outcome.append(error)

        pg_proxy.pause()
        thread = threading.Thread(target=query, daemon=True)  # left behind if it never ends
        thread.start()
        thread.join(timeout=20)
        pg_proxy.resume()
        catalog.dispose()

        assert not thread.is_alive(), "the connection attempt was still waiting after 20 s"
        assert [type(error) for error in outcome] == [ServiceUnavailable]


def slow_view(postgres: PostgresServer, db: Database, seconds: float) -> None:
    with postgres.connect(db) as conn:
        conn.execute(
            f"CREATE VIEW t AS SELECT g AS id FROM generate_series(1, 10) g, pg_sleep({seconds})"
        )


class TestWaitingRequests:
    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        return {**environ, "REFRESH_WAIT_SECONDS": "1"}

    def test_a_request_waits_for_a_running_refresh_at_most_the_wait_setting(
        self, client: FlaskClient, rt: Runtime, postgres: PostgresServer, pg_source: Database
    ) -> None:
        slow_view(postgres, pg_source, seconds=6)
        register(client, "src", "postgres", pg_source.config())
        with concurrent.futures.ThreadPoolExecutor() as pool:
            first = pool.submit(client.post, "/refresh", json=TABLE)
            wait_until(lambda: claimed(rt), timeout=30, what="the first refresh never started")
            started = time.monotonic()
            second = client.post("/refresh", json=TABLE)
            waited = time.monotonic() - started
            message = assert_error(second, 409, "CONFLICT")
            assert first.result().status_code == 200
        assert 1 <= waited < 5
        assert "public.t (connection src) is being refreshed by a request" in message
        assert "still running after 1 s of waiting" in message
        assert statuses(client) == ["current"]


def claimed(rt: Runtime) -> bool:
    """A refresh of the table is running (its claim is in the catalog)."""
    with rt.catalog.session() as session:
        writing = select(TableVersion.id).where(TableVersion.status == VersionStatus.WRITING)
        return session.scalar(writing) is not None


class TestTheWebProcessKeepsAnswering:
    """With the real gunicorn: more waiting requests or stalled clients than it has threads."""

    @pytest.fixture
    def server(self, rt: Runtime, environ: dict[str, str], tmp_path: Path) -> Iterator[int]:
        with run_gunicorn({**environ, "REFRESH_WAIT_SECONDS": "30"}, tmp_path / "web.log") as port:
            yield port

    def test_health_answers_under_more_waiting_refreshes_than_threads(
        self, server: int, rt: Runtime, postgres: PostgresServer, pg_source: Database
    ) -> None:
        slow_view(postgres, pg_source, seconds=5)
        body = {"name": "src", "source_type": "postgres", "config": pg_source.config()}
        assert post(server, "/connections", body).status == 201

        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            refreshes = [pool.submit(post, server, "/refresh", TABLE) for _ in range(12)]
            wait_until(lambda: claimed(rt), timeout=30, what="no refresh started")
            started = time.monotonic()
            health, listing = get(server, "/health"), get(server, "/connections")
            answered_in = time.monotonic() - started
            answers = [future.result() for future in refreshes]
        assert (health.status, listing.status) == (200, 200)
        assert answered_in < 3
        assert {a.status for a in answers} == {200, 409}
        refused = [json.loads(a.body)["error"] for a in answers if a.status == 409]
        assert all("is being refreshed by a request" in error["message"] for error in refused)

    def test_clients_that_stop_sending_their_body_are_dropped(self, server: int) -> None:
        stalled = []
        for _ in range(12):  # more than the server's threads
            sock = socket.create_connection(("127.0.0.1", server))
            sock.sendall(
                b"POST /refresh HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            stalled.append(sock)
        started = time.monotonic()
        assert get(server, "/health").status == 200
        assert time.monotonic() - started < 15
        first = stalled[0]
        first.settimeout(15)
        assert b" 408 " in first.recv(4096).split(b"\r\n", 1)[0]
        for sock in stalled:
            sock.close()
