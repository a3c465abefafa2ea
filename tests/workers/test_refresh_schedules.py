"""Refresh schedules run by the Procfile's scheduler process, with its forking workers, on Redis.

Intervals of one second and ``SCHEDULE_POLL_SECONDS=1`` keep the runs coming fast; every wait
polls the API or the catalog with a deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from rq import Queue

from refresh.catalog import utcnow
from refresh.runtime import Runtime
from tests.support.api import refresh
from tests.support.freshness import set_table, sqlite_source
from tests.support.workers import RedisDatabase, procfile_command, running, wait_until
from workers.queues import REFRESH

DEADLINE_SECONDS = 60
MAX_FAILURES = 3


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    return {
        **environ,
        "SCHEDULE_POLL_SECONDS": "1",
        "SCHEDULE_MAX_FAILURES": str(MAX_FAILURES),
    }


@pytest.fixture
def source(client: FlaskClient, tmp_path: Path) -> Path:
    """Connection ``src``: a SQLite file with table ``t``, cached once."""
    path = tmp_path / "src.sqlite"
    sqlite_source(client, path)
    refresh(client, "src", "main", "t")
    return path


def schedule(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/connections/src/schedule")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def put(client: FlaskClient, **body: Any) -> dict[str, Any]:
    response = client.put("/connections/src/schedule", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def job(client: FlaskClient, job_id: str) -> dict[str, Any]:
    response = client.get(f"/refresh/jobs/{job_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def next_finished_run(
    client: FlaskClient, after: str | None = None, lost_ok: bool = False
) -> dict[str, Any]:
    """The first run other than ``after`` whose job has ended; returns that job. With
    ``lost_ok``, a run whose job Redis no longer has is passed over for the next one."""
    ended: dict[str, Any] = {}

    def run_ended() -> bool:
        job_id = schedule(client)["last_job_id"]
        if job_id is None or job_id == after:
            return False
        if lost_ok and client.get(f"/refresh/jobs/{job_id}").status_code == 404:
            return False
        ended.update(job(client, job_id))
        return ended["status"] in ("finished", "failed")

    wait_until(run_ended, DEADLINE_SECONDS, f"no run after {after} ended")
    return ended


def test_a_schedule_fires_again_and_again(
    client: FlaskClient,
    source: Path,
    workers: Callable[..., AbstractContextManager],
    scheduler: Callable[[], AbstractContextManager],
) -> None:
    put(client, every_seconds=1)
    with workers(1), scheduler():
        first = next_finished_run(client)
        second = next_finished_run(client, after=first["job_id"])

    for run in (first, second):
        assert run["status"] == "finished", run
        assert run["request"] == {
            "connection_id": "src",
            "data": True,
            "include_uncached": False,
            "if_changed": True,
        }
        assert run["result"]["tables_refreshed"] == 1
    assert schedule(client)["consecutive_failures"] == 0


@pytest.mark.parametrize("catalog_url", ["postgres"], indirect=True)
def test_a_run_in_flight_holds_the_next_ones_back_and_two_schedulers_start_it_once(
    client: FlaskClient,
    source: Path,
    environ: dict[str, str],
    tmp_path: Path,
    redis_database: RedisDatabase,
    workers: Callable[..., AbstractContextManager],
) -> None:
    refresh_queue = Queue(REFRESH, connection=redis_database.client())
    put(client, every_seconds=1)
    due_times: set[str] = set()

    def skipped_three_due_times() -> bool:
        due_times.add(schedule(client)["next_run_at"])
        return len(due_times) >= 4

    # No worker yet: the first run's job stays queued, in flight.
    with running(2, procfile_command("scheduler"), environ, tmp_path):
        wait_until(lambda: schedule(client)["last_job_id"], DEADLINE_SECONDS, "no run started")
        in_flight = schedule(client)["last_job_id"]
        wait_until(skipped_three_due_times, DEADLINE_SECONDS, "the due times do not move on")

        assert schedule(client)["last_job_id"] == in_flight
        assert refresh_queue.job_ids == [in_flight]  # one job, whatever two schedulers saw

        with workers(1):
            assert job(client, in_flight)["status"] in ("queued", "running", "finished")
            run = next_finished_run(client, after=in_flight)
    assert run["status"] == "finished"
    assert job(client, in_flight)["status"] == "finished"


def run_times(client: FlaskClient, count: int) -> list[datetime]:
    """The start times of the schedule's runs as they happen, until ``count`` are seen."""
    seen: list[datetime] = []

    def enough() -> bool:
        last = schedule(client)["last_run_at"]
        if last is not None and (not seen or datetime.fromisoformat(last) != seen[-1]):
            seen.append(datetime.fromisoformat(last))
        return len(seen) >= count

    wait_until(enough, DEADLINE_SECONDS, f"fewer than {count} runs")
    return seen


def test_failed_runs_back_off_then_pause_until_put(
    client: FlaskClient,
    source: Path,
    workers: Callable[..., AbstractContextManager],
    scheduler: Callable[[], AbstractContextManager],
) -> None:
    hidden = source.with_suffix(".away")
    source.rename(hidden)  # every table of the connection fails now
    put(client, every_seconds=1)
    with workers(1), scheduler():
        runs = run_times(client, MAX_FAILURES)
        wait_until(lambda: schedule(client)["paused_reason"], DEADLINE_SECONDS, "not paused")
        paused = schedule(client)
        # The interval doubles after each failure in a row: 2 s, then 4 s.
        assert (runs[1] - runs[0]).total_seconds() >= 2
        assert (runs[2] - runs[1]).total_seconds() >= 4
        assert paused["consecutive_failures"] == MAX_FAILURES
        assert paused["next_run_at"] is None
        assert paused["paused_reason"].startswith(
            f"paused after {MAX_FAILURES} failed runs in a row (SCHEDULE_MAX_FAILURES); "
            "the last one: every table failed"
        )
        assert paused["paused_reason"].endswith("PUT the schedule to resume")

        hidden.rename(source)
        resumed = put(client, every_seconds=1)
        assert resumed["paused_reason"] is None
        assert resumed["consecutive_failures"] == 0
        assert resumed["next_run_at"] is not None
        run = next_finished_run(client, after=paused["last_job_id"])

    assert run["result"]["tables_refreshed"] == 1
    assert schedule(client)["consecutive_failures"] == 0


def test_a_successful_refresh_outside_the_schedule_resets_its_failures(
    client: FlaskClient,
    rt: Runtime,
    source: Path,
    workers: Callable[..., AbstractContextManager],
    scheduler: Callable[[], AbstractContextManager],
) -> None:
    source.rename(source.with_suffix(".away"))
    put(client, every_seconds=1)
    with workers(1), scheduler():
        wait_until(
            lambda: schedule(client)["consecutive_failures"] >= 1, DEADLINE_SECONDS, "no failure"
        )
        # What the refresh flow records when any refresh of a table succeeds.
        set_table(rt, "src", "t", last_success_at=utcnow())
        wait_until(
            lambda: schedule(client)["consecutive_failures"] == 0,
            DEADLINE_SECONDS,
            "the failures were not reset",
        )


def test_schedules_survive_a_redis_flush(
    client: FlaskClient,
    source: Path,
    redis_database: RedisDatabase,
    workers: Callable[..., AbstractContextManager],
    scheduler: Callable[[], AbstractContextManager],
) -> None:
    put(client, every_seconds=1)
    with workers(1), scheduler():
        before = next_finished_run(client)
        redis_database.client().flushdb()  # a run queued just before it is lost, not counted
        after = next_finished_run(client, after=before["job_id"], lost_ok=True)
    assert after["status"] == "finished"
    assert after["result"]["tables_refreshed"] == 1
    assert schedule(client)["consecutive_failures"] == 0
