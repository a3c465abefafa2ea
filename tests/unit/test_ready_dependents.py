"""A job whose dependencies ended is enqueued when the next job ends, not at a worker's
maintenance minutes later (``workers.dependents``)."""

from __future__ import annotations

import fakeredis
from rq import Queue
from rq.job import JobStatus

from workers.dependents import enqueue_ready


def test_a_dependent_left_ready_by_a_conceded_enqueue_is_enqueued() -> None:
    connection = fakeredis.FakeRedis()
    queue = Queue("refresh", connection=connection)
    finisher = queue.enqueue(len, "abc", depends_on=queue.enqueue(len, "x"))
    # What RQ 3 leaves when a concurrent change to the ready registry makes it give up: the
    # job marked ready and registered there, not on the queue.
    with connection.pipeline() as pipeline:
        pipeline.multi()
        queue.ready_job_registry.register_jobs([finisher], pipeline)
        pipeline.execute()
    assert finisher.id not in queue.job_ids

    enqueue_ready(queue)

    assert finisher.id in queue.job_ids
    assert finisher.get_status() == JobStatus.QUEUED
    assert queue.ready_job_registry.get_job_count(cleanup=False) == 0
