"""``PUT|GET|DELETE /connections/{id}/schedule``: the resource, and how a scheduler's pass starts
a run of it; running it with the Procfile's processes is in
tests/workers/test_refresh_schedules.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from croniter import croniter
from flask.testing import FlaskClient

from refresh.catalog import utcnow
from refresh.common.errors import NotFound, ServiceUnavailable
from refresh.jobs import Job, JobStatus
from refresh.refresh_request import Mode, RefreshRequest
from refresh.runtime import Runtime
from refresh.schedule_runs import run_schedules
from tests.support.api import assert_error, post_connection, refresh, wait_for_job
from tests.support.freshness import sqlite_source
from tests.support.markers import both_catalogs
from tests.support.workers import wait_until

SCHEDULE = "/connections/src/schedule"


@pytest.fixture
def source(client: FlaskClient, tmp_path: Path) -> str:
    config = {"path": str(tmp_path / "src.sqlite")}
    assert post_connection(client, "src", "sqlite", config, skip_discovery=True).status_code == 201
    return "src"


@both_catalogs
def test_put_get_delete(client: FlaskClient, source: str) -> None:
    before = utcnow()
    response = client.put(SCHEDULE, json={"every_seconds": 600})
    assert response.status_code == 200, response.get_json()
    schedule = response.get_json()
    next_run = datetime.fromisoformat(schedule.pop("next_run_at"))
    assert schedule == {
        "connection_id": "src",
        "every_seconds": 600,
        "cron": None,
        "include_uncached": False,
        "only_if_changed": True,
        "enabled": True,
        "last_run_at": None,
        "last_job_id": None,
        "consecutive_failures": 0,
        "paused_reason": None,
    }
    # One interval from now, plus at most 10% of it as jitter.
    assert before + timedelta(seconds=600) <= next_run <= utcnow() + timedelta(seconds=660)
    assert client.get(SCHEDULE).get_json() == response.get_json()

    assert client.delete(SCHEDULE).status_code == 204
    assert_error(client.get(SCHEDULE), 404, "NOT_FOUND", "connection 'src' has no schedule")
    assert_error(client.delete(SCHEDULE), 404, "NOT_FOUND")


def test_a_cron_schedule_runs_at_its_next_utc_time(client: FlaskClient, source: str) -> None:
    body = {"cron": "30 3 * * 1", "include_uncached": True, "only_if_changed": False}
    schedule = client.put(SCHEDULE, json=body).get_json()
    assert schedule["cron"] == "30 3 * * 1"
    assert schedule["every_seconds"] is None
    assert schedule["include_uncached"] is True
    assert schedule["only_if_changed"] is False
    due = croniter("30 3 * * 1", utcnow()).get_next(datetime)  # Mondays 03:30 UTC
    next_run = datetime.fromisoformat(schedule["next_run_at"])
    assert due <= next_run <= due + timedelta(days=7) * 0.1


def test_a_disabled_schedule_has_no_next_run(client: FlaskClient, source: str) -> None:
    schedule = client.put(SCHEDULE, json={"every_seconds": 5, "enabled": False}).get_json()
    assert schedule["enabled"] is False
    assert schedule["next_run_at"] is None


def test_put_replaces_the_whole_schedule(client: FlaskClient, source: str) -> None:
    client.put(SCHEDULE, json={"cron": "* * * * *", "include_uncached": True})
    schedule = client.put(SCHEDULE, json={"every_seconds": 60}).get_json()
    assert schedule["cron"] is None
    assert schedule["every_seconds"] == 60
    assert schedule["include_uncached"] is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "send exactly one of every_seconds (an integer >= 1) or cron (five fields, UTC)"),
        (
            {"every_seconds": 60, "cron": "* * * * *"},
            "send exactly one of every_seconds (an integer >= 1) or cron (five fields, UTC)",
        ),
        ({"every_seconds": 0}, "every_seconds: Must be greater than or equal to 1."),
        ({"every_seconds": "60"}, "every_seconds: Not a valid integer."),
        ({"every_seconds": 1.5}, "every_seconds: Not a valid integer."),
        ({"every_seconds": 60, "enabled": "yes"}, "enabled: Not a valid boolean."),
        ({"every_seconds": 60, "only_if_changed": 0}, "only_if_changed: Not a valid boolean."),
        ({"every_seconds": 60, "interval": 5}, "interval: Unknown field."),
        (
            {"cron": "*/5 * * * * *"},
            "cron: must have five fields (minute hour day-of-month month day-of-week), UTC",
        ),
        ({"cron": "@hourly"}, "cron: must have five fields"),
        ({"cron": "61 * * * *"}, "cron: not a valid cron expression"),
        ({"cron": "a b c d e"}, "cron: not a valid cron expression"),
    ],
)
def test_an_invalid_schedule_is_400_and_changes_nothing(
    client: FlaskClient, source: str, body: dict, message: str
) -> None:
    client.put(SCHEDULE, json={"every_seconds": 600})
    before = client.get(SCHEDULE).get_json()
    found = assert_error(client.put(SCHEDULE, json=body), 400, "BAD_REQUEST")
    assert found.startswith(message)
    assert client.get(SCHEDULE).get_json() == before


def test_an_unknown_connection_is_404(client: FlaskClient) -> None:
    response = client.put("/connections/ghost/schedule", json={"every_seconds": 60})
    assert_error(response, 404, "NOT_FOUND", "Connection 'ghost' not found")
    assert_error(client.get("/connections/ghost/schedule"), 404, "NOT_FOUND")


def test_deleting_the_connection_deletes_its_schedule(client: FlaskClient, source: str) -> None:
    client.put(SCHEDULE, json={"every_seconds": 60})
    assert client.delete("/connections/src").status_code == 204
    config = {"path": "src.sqlite"}
    assert post_connection(client, "src", "sqlite", config, skip_discovery=True).status_code == 201
    assert_error(client.get(SCHEDULE), 404, "NOT_FOUND")


class TestEmbedded:
    """Without Redis, the web process's scheduler thread runs the schedules on its own broker."""

    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        return {**environ, "SCHEDULE_POLL_SECONDS": "1"}

    def test_a_schedule_runs_in_embedded_mode(self, client: FlaskClient, tmp_path: Path) -> None:
        sqlite_source(client, tmp_path / "src.sqlite")
        refresh(client, "src", "main", "t")
        client.put(SCHEDULE, json={"every_seconds": 1})

        wait_until(lambda: client.get(SCHEDULE).get_json()["last_job_id"], 60, "no scheduled run")
        job = wait_for_job(client, client.get(SCHEDULE).get_json()["last_job_id"])

        assert job["status"] == "finished", job
        assert job["request"]["if_changed"] is True
        assert job["result"]["tables_refreshed"] == 1

        def found_unchanged() -> bool:  # only_if_changed: once the file's fingerprint settled
            last = client.get(SCHEDULE).get_json()["last_job_id"]
            result = wait_for_job(client, last).get("result", {})
            return result.get("tables_unchanged") == 1 and result["total_rows"] == 0

        wait_until(found_unchanged, 60, "no scheduled run found the table unchanged")


class Submitting:
    """The job queue of a scheduler's pass: notes what the schedule showed while each job was
    being submitted, refuses jobs while ``down`` (as a queue whose Redis is down does), and
    reports every job it queued as finished."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client
        self.down = False
        self.queued: list[str] = []
        self.shown: list[str | None] = []  # last_job_id during each submit

    def submit(self, request: RefreshRequest, mode: Mode, body: Mapping[str, Any]) -> Job:
        self.shown.append(self._client.get(SCHEDULE).get_json()["last_job_id"])
        if self.down:
            raise ServiceUnavailable("the job queue cannot be reached")
        self.queued.append(f"job-{len(self.queued) + 1}")
        return Job(self.queued[-1], JobStatus.QUEUED, mode, body)

    def get(self, job_id: str) -> Job:
        if job_id not in self.queued:
            raise NotFound(f"job {job_id!r} not found")
        result = {"tables_refreshed": 1, "tables_failed": 0}
        return Job(job_id, JobStatus.FINISHED, Mode.CONNECTION_DATA, {}, result=result)


class TestStartingARun:
    """Passes of the scheduler (``run_schedules``), hours ahead of the clock so that the
    schedule is due for them and for no scheduler running meanwhile."""

    @both_catalogs
    def test_the_schedule_names_only_jobs_that_were_queued(
        self, client: FlaskClient, rt: Runtime, source: str
    ) -> None:
        client.put(SCHEDULE, json={"every_seconds": 600})
        queue = Submitting(client)

        for hours in (1, 2):
            run_schedules(rt, queue, now=utcnow() + timedelta(hours=hours))  # type: ignore[arg-type]

        assert queue.shown == [None, "job-1"]  # while a run starts: the run before it
        shown = client.get(SCHEDULE).get_json()
        assert shown["last_job_id"] == "job-2"
        assert shown["consecutive_failures"] == 0

    def test_a_run_whose_job_cannot_be_queued_leaves_the_last_run_and_holds_nothing_back(
        self, client: FlaskClient, rt: Runtime, source: str
    ) -> None:
        client.put(SCHEDULE, json={"every_seconds": 600})
        queue = Submitting(client)
        run_schedules(rt, queue, now=utcnow() + timedelta(hours=1))  # type: ignore[arg-type]
        before = client.get(SCHEDULE).get_json()

        queue.down = True
        run_schedules(rt, queue, now=utcnow() + timedelta(hours=2))  # type: ignore[arg-type]
        after = client.get(SCHEDULE).get_json()
        assert (after["last_job_id"], after["last_run_at"]) == ("job-1", before["last_run_at"])

        queue.down = False
        run_schedules(rt, queue, now=utcnow() + timedelta(hours=3))  # type: ignore[arg-type]
        assert queue.queued == ["job-1", "job-2"]  # the failed run held nothing back
        assert client.get(SCHEDULE).get_json()["last_job_id"] == "job-2"
