"""The functions RQ runs: thin wrappers around the refresh service's own functions.

Arguments are ids and names only: rq-dashboard shows them, so no password or URL ever travels in
a job. Each wrapper records why it failed, in words a user may read (``public_message``), in its
``meta["error"]`` before RQ marks it failed; RQ keeps the traceback for the dashboard.

A connection-wide refresh (mode 4) is a parent job that enqueues one job per table, all sharing
the connection's rate limit (at most ``PARALLEL_REFRESH_COUNT`` of them queued or running at once,
across every worker), and a finishing job that depends on all of them, failed or not. No job ever
waits for another: with a single worker the tables run one after the other, then the finisher
aggregates however they ended.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from rq import Queue, RateLimit, get_current_job
from rq.job import Dependency, Job, JobStatus

from config import Settings
from refresh import data_refresh
from refresh.common.errors import public_message
from refresh.connection_refresh import TableOutcome, summarize, tables_to_refresh
from refresh.jobs import Progress
from refresh.refresh_request import RefreshRequest, resolve_mode, run_refresh
from refresh.runtime import Runtime
from workers import progress
from workers.process_runtime import current
from workers.queues import REFRESH

log = logging.getLogger(__name__)

# A table's job that ended without saying why (its work horse was killed, or the job was
# cancelled from rq-dashboard) is reported with these words.
_SILENT_END = {
    JobStatus.FAILED: "the worker refreshing this table stopped before it finished (killed or "
    "out of time); the previous version stays current",
    JobStatus.STOPPED: "the job was stopped from rq-dashboard or the rq command line",
    JobStatus.CANCELED: "the job was cancelled from rq-dashboard or the rq command line",
}


def job_options(settings: Settings) -> dict[str, Any]:
    """The RQ options of every job: its time limit, and how long it stays queryable.

    RQ keeps a result 500 s by default; a finished or failed job must stay queryable for
    ``JOB_RESULT_TTL_SECONDS``.
    """
    ttl = settings.job_result_ttl_seconds
    return {"timeout": settings.refresh_job_timeout_seconds, "result_ttl": ttl, "failure_ttl": ttl}


def finisher_id(job_id: str) -> str:
    """The id of the job that aggregates the connection-wide refresh ``job_id``."""
    return f"{job_id}-finish"


def refresh_schemas(connection_id: str | None) -> dict[str, Any]:
    """Modes 1 and 2 as a job: the result is the response body of the same request."""
    job = _this_job()
    rt = current()
    with _reporting(job):
        request = RefreshRequest(connection_id=connection_id)
        result = run_refresh(rt, request, resolve_mode(rt, request))
    return asdict(result)


def refresh_table(
    request_job_id: str, connection_id: str, schema_name: str, table_name: str
) -> dict[str, Any]:
    """One table: mode 3 as a job (``request_job_id`` is its own id), or one table of mode 4."""
    job = _this_job()
    rt = current()
    ttl = rt.settings.job_result_ttl_seconds
    with _reporting(job):
        try:
            result = data_refresh.refresh_table(
                rt, connection_id, schema_name, table_name, job_id=job.id
            )
        except BaseException:
            progress.table_ended(job.connection, request_job_id, 0, failed=True, ttl=ttl)
            raise
    progress.table_ended(job.connection, request_job_id, result.rows_synced, False, ttl)
    return asdict(result)


def refresh_connection(connection_id: str, include_uncached: bool) -> dict[str, Any] | None:
    """Mode 4: enqueue one job per table and their finisher; returns at once.

    A connection without a table to refresh is finished here, with zeros.
    """
    job = _this_job()
    rt = current()
    with _reporting(job):
        tables = tables_to_refresh(rt, connection_id, include_uncached)
        progress.start(job.connection, job.id, len(tables), rt.settings.job_result_ttl_seconds)
        if not tables:
            return asdict(summarize(connection_id, [], duration_ms=0))
        _fan_out(rt, job, connection_id, tables)
    return None


def finish_connection_refresh(request_job_id: str, connection_id: str) -> dict[str, Any]:
    """Mode 4's result, once every table's job has ended, in whatever order and however."""
    job = _this_job()
    ttl = current().settings.job_result_ttl_seconds
    with _reporting(job):
        parent = Job.fetch(request_job_id, connection=job.connection)
        children = Job.fetch_many(job.dependency_ids, connection=job.connection)
        outcomes = [_outcome(child) for child in children if child is not None]
        started = parent.started_at or parent.enqueued_at
        ended = job.started_at or started
        duration_ms = int((ended - started).total_seconds() * 1000) if started and ended else 0
        result = summarize(connection_id, outcomes, duration_ms)
        done = result.tables_refreshed + result.tables_failed
        final = Progress(done, done, result.tables_failed, result.total_rows)
        progress.settle(job.connection, request_job_id, final, ttl)
        # The request's job finished long ago; keep it queryable as long as this result.
        parent.cleanup(ttl=ttl)
    return asdict(result)


def _fan_out(rt: Runtime, job: Job, connection_id: str, tables: list[tuple[str, str]]) -> None:
    """Enqueue the tables' jobs, then their finisher (which must not exist before them: RQ
    counts a dependency it cannot find as met)."""
    queue = Queue(REFRESH, connection=job.connection)
    options = job_options(rt.settings)
    limit = RateLimit(f"refresh-connection:{connection_id}", rt.settings.parallel_refresh_count)
    children = [
        queue.enqueue_call(
            refresh_table,
            args=(job.id, connection_id, schema, table),
            rate_limit=limit,
            description=f"refresh {connection_id}: {schema}.{table}",
            **options,
        )
        for schema, table in tables
    ]
    queue.enqueue_call(
        finish_connection_refresh,
        args=(job.id, connection_id),
        job_id=finisher_id(job.id),
        depends_on=Dependency(jobs=children, allow_failure=True),
        description=f"finish refreshing {connection_id}",
        **options,
    )


def _outcome(child: Job) -> TableOutcome:
    _, _, schema_name, table_name = child.args
    status = child.get_status(refresh=False)
    if status == JobStatus.FINISHED:
        value = child.return_value() or {}
        return TableOutcome(
            schema_name,
            table_name,
            rows_synced=value.get("rows_synced", 0),
            warnings=tuple(value.get("warnings", ())),
        )
    error = child.meta.get("error") or _SILENT_END.get(status, f"the job ended as {status}")
    return TableOutcome(schema_name, table_name, error=error)


def _this_job() -> Job:
    job = get_current_job()
    if job is None:
        raise RuntimeError("a job function was called outside an RQ job")
    return job


@contextmanager
def _reporting(job: Job) -> Iterator[None]:
    try:
        yield
    except BaseException as error:
        job.meta["error"] = public_message(error)
        try:
            job.save_meta()
        except Exception:
            log.exception("could not record why job %s failed", job.id)
        raise
