"""The Procfile's processes outlive a Redis outage, idle or in the middle of a job.

RQ's worker exits on the first Redis error it meets outside its wait for jobs (a heartbeat while
a job runs), and under honcho (``bin/run`` with ``REDIS_URL``) that stops every process. Here
Redis is a server of the test's own, stopped and started again on the same port (it comes back
empty, as a restart without persistence does), or cut off by a proxy (it keeps its data).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.api import refresh, register, submit, table_info, wait_for_job
from tests.support.proxy import pausable_proxy
from tests.support.redis_server import RedisServer, redis_server
from tests.support.services import Database
from tests.support.slow_view import SlowView
from tests.support.web import get, post
from tests.support.workers import (
    REDIS_HOST,
    REDIS_PORT,
    Process,
    RedisDatabase,
    StartWorkers,
    procfile_command,
    running,
    wait_until,
)

EVERY_TABLE = {"connection_id": "src", "data": True, "include_uncached": True}
TABLE = {"connection_id": "src", "schema_name": "public", "table_name": "t", "data": True}
# Longer than any outage below: the table is still being read when Redis comes back.
SLOW_SECONDS = 30
OUTAGE_SECONDS = 20
# What bin/run promises: an outage of a minute stops no process.
LONG_OUTAGE_SECONDS = 60
DEADLINE_SECONDS = 90


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis-server.log") as server:
        yield server


def statuses(versions: list[dict[str, Any]]) -> list[str]:
    return [version["status"] for version in versions]


def refreshing(client: FlaskClient) -> bool:
    """Table ``t`` is being refreshed (its newest version is ``writing``)."""
    return statuses(table_info(client, "src", "public", "t")["versions"])[:1] == ["writing"]


def hold(seconds: float, *processes: Process, check: Callable[[], None] | None = None) -> None:
    """Let ``seconds`` pass, failing as soon as one of ``processes`` exits or ``check()`` fails."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for process in processes:
            assert process.popen.poll() is None, process.log()
        if check is not None:
            check()
        time.sleep(0.5)


class TestBinRun:
    """``bin/run`` with ``REDIS_URL``: web, worker and scheduler under honcho, which stops them all
    when one exits."""

    @pytest.fixture
    def environ(self, environ: dict[str, str], private_redis: RedisServer) -> dict[str, str]:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return {**environ, "REDIS_URL": private_redis.url(), "PORT": str(port)}

    @pytest.mark.parametrize("catalog_url", ["postgres"], indirect=True)
    def test_every_process_outlives_redis_outages_and_work_goes_on(
        self,
        environ: dict[str, str],
        private_redis: RedisServer,
        view: SlowView,
        pg_source: Database,
        tmp_path: Path,
    ) -> None:
        port = int(environ["PORT"])

        def health() -> int:
            try:
                return get(port, "/health").status
            except OSError:
                return 0

        def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
            answer = get(port, path) if method == "GET" else post(port, path, body or {})
            return answer.status, json.loads(answer.body)

        def versions() -> list[dict[str, Any]]:
            status, info = call("GET", "/connections/src/tables/public/t")
            assert status == 200, info
            return info["versions"]

        def completed(body: dict[str, Any]) -> dict[str, Any]:
            status, accepted = call("POST", "/refresh", body)
            assert status == 202, accepted
            ended = {}

            def done() -> bool:
                ended.update(call("GET", accepted["status_url"])[1])
                return ended["status"] in ("finished", "failed")

            wait_until(done, DEADLINE_SECONDS, "the job did not end")
            assert ended["status"] == "finished", ended
            return ended

        def outage(seconds: float, honcho: Process) -> None:
            """Redis down for ``seconds``: every process stays, /health answers 503 throughout,
            then 200."""

            def unavailable() -> None:
                assert health() == 503

            private_redis.stop()
            hold(seconds, honcho, check=unavailable)
            private_redis.start()
            wait_until(lambda: health() == 200, 30, "/health did not answer 200 again")

        with running(1, ["bash", "bin/run"], environ, tmp_path) as (honcho,):
            wait_until(lambda: health() == 200, 180, f"bin/run did not serve:\n{honcho.log()}")
            status, created = call(
                "POST",
                "/connections",
                {"name": "src", "source_type": "postgres", "config": pg_source.config()},
            )
            assert status == 201, created

            # Idle: every process waits for Redis; once it is back the worker takes jobs again
            # and registers again (Redis came back empty).
            outage(LONG_OUTAGE_SECONDS, honcho)
            assert completed(EVERY_TABLE)["result"]["tables_refreshed"] == 2

            def dashboard_workers() -> list[dict[str, Any]]:
                return call("GET", "/rq/0/data/workers.json")[1]["workers"]

            wait_until(dashboard_workers, 30, "rq-dashboard lists no worker")

            # Busy: a table read for longer than the outage. Redis comes back empty: the job is
            # forgotten, the table's refresh is not (its version is published, nothing writing).
            view.delay(SLOW_SECONDS)
            status, accepted = call("POST", "/refresh", {**TABLE, "async": True})
            assert status == 202, accepted
            wait_until(lambda: statuses(versions())[:1] == ["writing"], 60, "t never claimed")
            outage(OUTAGE_SECONDS, honcho)
            wait_until(
                lambda: "writing" not in statuses(versions()), DEADLINE_SECONDS, "t still writing"
            )
            assert statuses(versions())[0] == "current"
            status, forgotten = call("GET", accepted["status_url"])
            assert status == 404, forgotten
            assert forgotten["error"]["message"] == (
                f"job '{accepted['job_id']}' not found (jobs stay queryable for a while only)"
            )

            view.delay(0)
            assert completed(EVERY_TABLE)["result"]["tables_refreshed"] == 2
            assert honcho.popen.poll() is None, honcho.log()

        log = honcho.log()
        assert "Redis failed" in log
        assert "registering it again" in log


def test_a_job_that_ends_while_redis_is_cut_off_says_so_once_redis_is_back(
    client: FlaskClient,
    environ: dict[str, str],
    redis_database: RedisDatabase,
    view: SlowView,
    pg_source: Database,
    tmp_path: Path,
) -> None:
    """Redis unreachable but keeping its data (a network cut): the work horse finishes its table
    meanwhile and records the end once Redis answers, so the job ends as the table did."""
    register(client, "src", "postgres", pg_source.config())
    view.delay(OUTAGE_SECONDS / 2)
    with pausable_proxy(REDIS_HOST, REDIS_PORT) as redis_proxy:
        # Only the worker reaches Redis through the proxy; the web app's path stays up.
        through = f"redis://127.0.0.1:{redis_proxy.port}/{redis_database.number}"
        command = procfile_command("worker")
        with running(1, command, {**environ, "REDIS_URL": through}, tmp_path) as (worker,):
            job_id = submit(client, EVERY_TABLE)
            wait_until(lambda: refreshing(client), 60, "t never claimed")
            redis_proxy.cut()
            hold(OUTAGE_SECONDS, worker)
            redis_proxy.resume()
            job = wait_for_job(client, job_id, timeout=DEADLINE_SECONDS)

            view.delay(0)
            again = wait_for_job(client, submit(client, EVERY_TABLE), timeout=DEADLINE_SECONDS)
            assert worker.popen.poll() is None, worker.log()

    assert job["status"] == "finished", job
    assert job["result"]["tables_refreshed"] == 2
    assert job["result"]["tables_failed"] == 0
    assert job["progress"]["tables_done"] == 2
    assert again["status"] == "finished", again
    assert statuses(table_info(client, "src", "public", "t")["versions"]) == [
        "current",
        "superseded",
    ]
    assert "Redis failed" in worker.log()


class OnPrivateRedis:
    """Workers whose Redis server the test stops and starts, its own."""

    @pytest.fixture
    def environ(self, environ: dict[str, str], private_redis: RedisServer) -> dict[str, str]:
        return {**environ, "REDIS_URL": private_redis.url()}


class TestStartedDuringAnOutage(OnPrivateRedis):
    """``rq worker`` asks Redis before its worker exists: it must wait there too."""

    def test_a_worker_started_while_redis_is_down_waits_and_then_takes_jobs(
        self,
        client: FlaskClient,
        workers: StartWorkers,
        private_redis: RedisServer,
        view: SlowView,
        pg_source: Database,
    ) -> None:
        register(client, "src", "postgres", pg_source.config())
        private_redis.stop()
        with workers(1) as (worker,):

            def waiting_or_gone() -> bool:
                return "Redis failed" in worker.log() or worker.popen.poll() is not None

            wait_until(waiting_or_gone, 60, "the worker neither waited nor exited")
            hold(3, worker)  # it stays, waiting
            private_redis.start()
            job = wait_for_job(client, submit(client, EVERY_TABLE), timeout=DEADLINE_SECONDS)
            assert worker.popen.poll() is None, worker.log()

        assert job["status"] == "finished", job
        assert job["result"]["tables_refreshed"] == 2
        assert "Worker (starting): Redis failed" in worker.log()


class TestStoppedDuringAnOutage(OnPrivateRedis):
    """A worker told to stop while Redis is down stops within the dyno manager's 30 s."""

    def test_an_idle_worker_stops_at_once(
        self, workers: StartWorkers, private_redis: RedisServer
    ) -> None:
        with workers(1) as (worker,):
            wait_until(lambda: "Listening on" in worker.log(), 60, "the worker did not start")
            private_redis.stop()
            wait_until(lambda: "Redis failed" in worker.log(), 30, "the worker saw no outage")
            worker.terminate()
            assert worker.wait(timeout=10) == 0, worker.log()

    def test_a_busy_worker_fails_its_table_cleanly_and_stops(
        self,
        client: FlaskClient,
        workers: StartWorkers,
        private_redis: RedisServer,
        view: SlowView,
        pg_source: Database,
    ) -> None:
        register(client, "src", "postgres", pg_source.config())
        current = refresh(client, "src", "public", "t")
        view.delay(2 * SLOW_SECONDS)
        with workers(1) as (worker,):
            submit(client, {**TABLE, "async": True})
            wait_until(lambda: refreshing(client), 60, "t never claimed")
            private_redis.stop()
            wait_until(lambda: "Redis failed" in worker.log(), 30, "the worker saw no outage")
            worker.terminate()
            assert worker.wait(timeout=30) == 0, worker.log()

        info = table_info(client, "src", "public", "t")
        assert statuses(info["versions"]) == ["failed", "current"]
        assert info["versions"][0]["error"].startswith("interrupted: the worker was shut down")
        assert info["versions"][1]["rows"] == current["rows_synced"]
