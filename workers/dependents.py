"""A job whose dependencies have all ended is enqueued at once, not minutes later.

RQ 3 moves such a job (the finisher of a connection-wide refresh) into its queue's
``ReadyJobRegistry`` in the transaction that ends its last dependency, then enqueues it from
there under a WATCH of the whole registry and of the job. Any concurrent change to the registry,
such as another job of the queue being made ready or enqueued at the same moment, makes it give
up and leave the job for ``ReadyJobRegistry.cleanup``, which only a worker's maintenance runs:
every 30 s at best for the Procfile's workers (``--maintenance-interval``), every ten minutes for
embedded mode's. With several batches and finishers ending together (overlapping mode-4
requests), a refresh's result then waited that long. So each worker, after a job ends, enqueues
what the registry still holds, trying again while concurrent changes make it give up. The
registry's own check keeps each job enqueued once, whoever gets there first.
"""

from __future__ import annotations

from typing import Any

from rq.job import Job
from rq.queue import Queue

# Passes over the registry after a job ends; each pass enqueues what nobody else changed.
PASSES = 20


class EnqueuesReadyDependents:
    """Mixin for an RQ worker class (before it in the bases)."""

    def handle_job_success(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        super().handle_job_success(job, queue, *args, **kwargs)  # type: ignore[misc]
        enqueue_ready(queue)

    def handle_job_failure(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        super().handle_job_failure(job, queue, *args, **kwargs)  # type: ignore[misc]
        enqueue_ready(queue)


def enqueue_ready(queue: Queue) -> None:
    """Enqueue the jobs left in ``queue``'s ready registry (usually none: one read)."""
    registry = queue.ready_job_registry
    for _ in range(PASSES):
        if not registry.get_job_count(cleanup=False):
            return
        registry.cleanup()
