"""The web process's ``JobQueue``: submits ``POST /refresh`` requests to RQ and reads them back.

A request is one RQ job whose ``meta`` keeps the body as given and the mode. A connection-wide
refresh ends in a second job, its finisher (``workers.tasks``): until the finisher has ended the
request is running, and the finisher's result is the request's.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus as RQStatus
from rq.registry import BaseRegistry

from config import Settings
from refresh.common.errors import NotFound, ServiceUnavailable
from refresh.jobs import ENDED, Job, JobStatus
from refresh.refresh_request import Mode, RefreshRequest
from refresh.runtime import Runtime
from workers import progress, tasks
from workers.embedded import EmbeddedBroker
from workers.queues import QUEUES, REFRESH, connect

# RQ's own job-id alphabet; anything else cannot name a job, and must not reach Redis keys.
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_WAIT_POLL_SECONDS = 0.2

# Every RQ status; one RQ may add later counts as running: a job is only ever reported ended
# when RQ says so.
_STATUS = {
    RQStatus.CREATED: JobStatus.QUEUED,
    RQStatus.QUEUED: JobStatus.QUEUED,
    RQStatus.DEFERRED: JobStatus.QUEUED,
    RQStatus.SCHEDULED: JobStatus.QUEUED,
    RQStatus.RATE_LIMITED: JobStatus.QUEUED,
    RQStatus.READY_TO_ENQUEUE: JobStatus.QUEUED,  # between its dependencies' end and its queue
    RQStatus.STARTED: JobStatus.RUNNING,
    RQStatus.FINISHED: JobStatus.FINISHED,
    RQStatus.FAILED: JobStatus.FAILED,
    RQStatus.STOPPED: JobStatus.FAILED,
    RQStatus.CANCELED: JobStatus.FAILED,
}
_SILENT_FAILURE = "the job stopped before it finished (its worker was killed or it ran out of time)"
_NEVER = datetime.min.replace(tzinfo=UTC)


class RQJobQueue:
    def __init__(
        self, connection: Redis, settings: Settings, on_close: Callable[[], None] | None = None
    ) -> None:
        self.connection = connection
        self._settings = settings
        self._queue = Queue(REFRESH, connection=connection)
        self._on_close = on_close

    def submit(self, request: RefreshRequest, mode: Mode, body: Mapping[str, Any]) -> Job:
        job_id = str(uuid.uuid4())
        function, arguments = _JOBS[mode]
        with _reachable():
            queued = self._queue.enqueue_call(
                function,
                kwargs=arguments(request),
                job_id=job_id,
                meta={"request": dict(body), "mode": mode.name},
                **tasks.job_options(self._settings),
            )
        return Job(job_id, JobStatus.QUEUED, mode, body, enqueued_at=queued.enqueued_at)

    def get(self, job_id: str) -> Job:
        with _reachable():
            job = self._fetch(job_id)
            if job is None or "request" not in job.meta:
                raise NotFound(f"job '{job_id}' not found (jobs stay queryable for a while only)")
            mode = Mode[job.meta["mode"]]
            status, end = _status(job), job
            if mode is Mode.CONNECTION_DATA and status is JobStatus.FINISHED:
                finisher = self._fetch(tasks.finisher_id(job_id))
                if finisher is not None:
                    status, end = _status(finisher), finisher
                    if status is JobStatus.QUEUED:  # waiting for the tables' jobs
                        status = JobStatus.RUNNING
            return Job(
                job_id,
                status,
                mode,
                job.meta["request"],
                enqueued_at=job.enqueued_at,
                started_at=job.started_at,
                ended_at=end.ended_at if status in ENDED else None,
                progress=progress.read(self.connection, job_id),
                result=end.return_value() if status is JobStatus.FINISHED else None,
                error=(end.meta.get("error") or _SILENT_FAILURE)
                if status is JobStatus.FAILED
                else None,
            )

    def wait(self, job_id: str, timeout: float) -> Job:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            remaining = deadline - time.monotonic()
            if job.status in ENDED or remaining <= 0:
                return job
            time.sleep(min(_WAIT_POLL_SECONDS, remaining))

    def check(self) -> None:
        with _reachable():
            self.connection.ping()

    def recent(self, limit: int) -> list[Job]:
        """Read from RQ's queue and registries without cleaning them up first (a read changes
        nothing); the request jobs are those with a ``request`` in their meta."""
        with _reachable():
            ids = set(self._queue.get_job_ids())
            for registry in _registries(self._queue).values():
                ids.update(registry.get_job_ids(cleanup=False))
            jobs = RQJob.fetch_many(sorted(ids), connection=self.connection)
        requests = [job for job in jobs if job is not None and "request" in job.meta]
        requests.sort(key=lambda job: job.enqueued_at or _NEVER, reverse=True)
        return [self.get(job.id) for job in requests[:limit]]

    def counts(self) -> dict[tuple[str, str], int]:
        """RQ's own counts: a queue's waiting jobs, and each of its registries (not cleaned up
        first: a scrape changes nothing)."""
        counts = {}
        with _reachable():
            for name in QUEUES:
                queue = Queue(name, connection=self.connection)
                counts[name, "queued"] = queue.count
                for state, registry in _registries(queue).items():
                    counts[name, state] = registry.get_job_count(cleanup=False)
        return counts

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
        self.connection.close()

    def _fetch(self, job_id: str) -> RQJob | None:
        if not _JOB_ID.fullmatch(job_id):
            return None
        try:
            return RQJob.fetch(job_id, connection=self.connection)
        except NoSuchJobError:
            return None


# The job function of each mode, and its keyword arguments: ids and names only.
_JOBS: dict[Mode, tuple[Callable[..., Any], Callable[[RefreshRequest], dict[str, Any]]]] = {
    Mode.ALL_SCHEMAS: (tasks.refresh_all_schemas, lambda r: {}),
    Mode.CONNECTION_SCHEMA: (
        tasks.refresh_connection_schema,
        lambda r: {"connection_id": r.connection_id},
    ),
    Mode.TABLE_DATA: (
        tasks.refresh_table,
        lambda r: {
            "connection_id": r.connection_id,
            "schema_name": r.schema_name,
            "table_name": r.table_name,
            "if_changed": r.if_changed,
            "force": r.force,
            "full": r.full,
        },
    ),
    Mode.CONNECTION_DATA: (
        tasks.refresh_connection,
        lambda r: {
            "connection_id": r.connection_id,
            "include_uncached": r.include_uncached,
            "if_changed": r.if_changed,
            "force": r.force,
            "full": r.full,
        },
    ),
}


def _registries(queue: Queue) -> dict[str, BaseRegistry]:
    """The registries of a queue's jobs that are not waiting in it, by the state they hold."""
    return {
        "started": queue.started_job_registry,
        "deferred": queue.deferred_job_registry,
        "scheduled": queue.scheduled_job_registry,
        "finished": queue.finished_job_registry,
        "failed": queue.failed_job_registry,
        "canceled": queue.canceled_job_registry,
    }


def _status(job: RQJob) -> JobStatus:
    return _STATUS.get(job.get_status(refresh=False), JobStatus.RUNNING)


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except RedisError as error:
        raise ServiceUnavailable(
            f"the job queue cannot be reached (Redis: {error}); connection-wide and async "
            "refreshes are unavailable, single-table and schema refreshes still work in the request"
        ) from None


def open_job_queue(runtime: Runtime) -> RQJobQueue:
    """Redis when ``REDIS_URL`` is set; otherwise the in-process broker, with one worker thread
    per allowed concurrent table, so one connection's refresh can use its whole cap."""
    settings = runtime.settings
    if settings.embedded:
        broker = EmbeddedBroker(
            runtime,
            threads=settings.parallel_refresh_count,
            job_queue=lambda connection: RQJobQueue(connection, settings),
        )
        return RQJobQueue(broker.connection, settings, on_close=broker.stop)
    return RQJobQueue(connect(settings.redis_url), settings)
