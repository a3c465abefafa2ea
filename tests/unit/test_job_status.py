"""How the job API reads RQ's jobs (fakeredis: the job layer alone, no worker)."""

from __future__ import annotations

import pytest
from fakeredis import FakeRedis
from rq import Queue
from rq.job import JobStatus as RQStatus

from config import load_settings
from refresh.jobs import JobStatus
from refresh.refresh_request import Mode
from workers.runner import RQJobQueue
from workers.tasks import finisher_id

ENDED = {
    RQStatus.FINISHED: JobStatus.FINISHED,
    RQStatus.FAILED: JobStatus.FAILED,
    RQStatus.STOPPED: JobStatus.FAILED,
    RQStatus.CANCELED: JobStatus.FAILED,
}


@pytest.mark.parametrize("finisher_status", list(RQStatus))
def test_a_connection_refresh_is_running_until_its_finisher_has_ended(
    finisher_status: RQStatus,
) -> None:
    connection = FakeRedis()
    queue = Queue("refresh", connection=connection)
    body = {"connection_id": "shop", "data": True}
    parent = queue.enqueue(
        "builtins.print", meta={"request": body, "mode": Mode.CONNECTION_DATA.name}
    )
    parent.set_status(RQStatus.FINISHED)
    finisher = queue.enqueue("builtins.print", job_id=finisher_id(parent.id))
    finisher.set_status(finisher_status)

    jobs = RQJobQueue(connection, load_settings({"SECRET_KEY": "k", "REDIS_URL": "redis://x"}))
    job = jobs.get(parent.id)

    assert job.status is ENDED.get(finisher_status, JobStatus.RUNNING)
    assert job.request == body
