"""The functions RQ runs: thin wrappers around the refresh service's own functions.

Arguments are ids and names only, passed by keyword: rq-dashboard shows them, so no password or
URL ever travels in a job, and a deploy that adds an argument does not break the jobs already
queued. Each wrapper records why it failed, in words a user may read (``public_message``), in
its ``meta["error"]`` before RQ marks it failed; RQ keeps the traceback for the dashboard.

A connection-wide refresh (mode 4) is a parent job that splits the connection's tables into
batches (``refresh.connection_refresh.plan_batches``) and enqueues one job per batch, all sharing
the connection's rate limit, and a finishing job that depends on all of them, failed or not. No
job ever waits for another: with a single worker the batches run one after the other, then the
finisher aggregates however their tables ended. Each batch records every table's outcome as it
ends (``workers.progress``); a batch run again (RQ retries one whose work horse died, and a batch
comes back for tables another refresh held) skips the tables already recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, RateLimit, Retry, get_current_job
from rq.job import Dependency, Job, JobStatus

from config import Settings
from refresh import data_refresh
from refresh.common.errors import public_message
from refresh.connection_refresh import (
    BATCH_THREADS,
    TableToRefresh,
    plan_batches,
    summarize,
    tables_to_refresh,
    with_source_sizes,
)
from refresh.data_refresh import ChangeRules, Joining, TableOutcome
from refresh.jobs import Progress
from refresh.refresh_request import Mode, RefreshRequest, run_refresh
from refresh.runtime import Runtime
from workers import progress
from workers.process_runtime import current, shutdown_requested
from workers.queues import REFRESH

log = logging.getLogger(__name__)

# A batch whose work horse died (or that was interrupted) runs again, for the tables it had not
# reported, this many times at most.
BATCH_RETRIES = 2
# A batch that found tables held by other refreshes comes back for them (a returned RQ Retry):
# this many times at most, after JOIN_POLL_SECONDS of polling each time.
BATCH_RETURNS = 1800

# A batch's table that has no outcome when its job ended (its work horse was killed for the last
# time, or the job was cancelled from rq-dashboard) is reported with these words.
_SILENT_END = {
    JobStatus.FAILED: "the worker refreshing this table stopped before it finished (killed or "
    "out of time); the previous version stays current",
    JobStatus.STOPPED: "the job was stopped from rq-dashboard or the rq command line",
    JobStatus.CANCELED: "the job was cancelled from rq-dashboard or the rq command line",
}


def job_options(settings: Settings, tables: int = 1) -> dict[str, Any]:
    """The RQ options of every job: its time limit (``REFRESH_JOB_TIMEOUT_SECONDS`` per table it
    refreshes), and how long it stays queryable.

    RQ keeps a result 500 s by default; a finished or failed job must stay queryable for
    ``JOB_RESULT_TTL_SECONDS``.
    """
    ttl = settings.job_result_ttl_seconds
    timeout = settings.refresh_job_timeout_seconds * max(1, tables)
    return {"timeout": timeout, "result_ttl": ttl, "failure_ttl": ttl}


def finisher_id(job_id: str) -> str:
    """The id of the job that aggregates the connection-wide refresh ``job_id``."""
    return f"{job_id}-finish"


def batch_threads(settings: Settings) -> int:
    """Threads of one batch: never more than the connection's cap."""
    return min(BATCH_THREADS, settings.parallel_refresh_count)


def batch_slots(settings: Settings) -> int:
    """Batches of one connection running at once, so that at most ``PARALLEL_REFRESH_COUNT``
    tables are in flight: each batch refreshes up to ``batch_threads`` tables at once."""
    return max(1, settings.parallel_refresh_count // batch_threads(settings))


def refresh_all_schemas() -> dict[str, Any]:
    """Mode 1 as a job: the result is the response body of the same request."""
    return _run_in_one_call(Mode.ALL_SCHEMAS, RefreshRequest())


def refresh_connection_schema(connection_id: str) -> dict[str, Any]:
    """Mode 2 as a job: the result is the response body of the same request."""
    return _run_in_one_call(Mode.CONNECTION_SCHEMA, RefreshRequest(connection_id=connection_id))


def _run_in_one_call(mode: Mode, request: RefreshRequest) -> dict[str, Any]:
    with _reporting(_this_job()):
        return asdict(run_refresh(current(), request, mode))


def refresh_table(
    connection_id: str,
    schema_name: str,
    table_name: str,
    if_changed: bool = False,
    force: bool = False,
    full: bool = False,
) -> dict[str, Any]:
    """Mode 3 as a job."""
    job = _this_job()
    rt = current()
    ttl = rt.settings.job_result_ttl_seconds
    rules = ChangeRules(if_changed=if_changed, force=force, full=full)
    with _reporting(job):
        try:
            result = data_refresh.refresh_table(
                rt, connection_id, schema_name, table_name, job_id=job.id, rules=rules
            )
        except BaseException as error:
            failed = TableOutcome(schema_name, table_name, error=public_message(error))
            progress.record(job.connection, job.id, [failed], ttl)
            raise
    done = TableOutcome(
        schema_name,
        table_name,
        result.rows_synced,
        None,
        tuple(result.warnings),
        unchanged=result.unchanged,
        held=result.held,
    )
    progress.record(job.connection, job.id, [done], ttl)
    return asdict(result)


def refresh_connection(
    connection_id: str,
    include_uncached: bool,
    if_changed: bool = False,
    force: bool = False,
    full: bool = False,
) -> dict[str, Any] | None:
    """Mode 4: enqueue the batches of the connection's tables and their finisher; returns at once.

    A connection without a table to refresh is finished here, with zeros.
    """
    job = _this_job()
    rt = current()
    with _reporting(job):
        tables = tables_to_refresh(rt, connection_id, include_uncached)
        progress.start(job.connection, job.id, len(tables), rt.settings.job_result_ttl_seconds)
        if not tables:
            return asdict(summarize(connection_id, [], duration_ms=0))
        tables = with_source_sizes(rt, connection_id, tables)
        batches = plan_batches(tables, batch_slots(rt.settings))
        rules = ChangeRules(if_changed=if_changed, force=force, full=full)
        _fan_out(rt, job, connection_id, batches, rules)
    return None


def refresh_batch(
    request_job_id: str,
    connection_id: str,
    tables: list[list[str]],
    if_changed: bool = False,
    force: bool = False,
    full: bool = False,
) -> dict[str, int] | Retry:
    """One batch of a connection-wide refresh: its tables not recorded yet, on a few threads.

    Tables other refreshes hold are settled after the rest: when they are still held, the job
    returns a ``Retry`` (RQ queues it again, and the worker takes other jobs meanwhile) with
    them in its ``meta``, so it comes back for them. So it does when its worker is shutting down
    with tables not started: another worker goes on with them.
    """
    job = _this_job()
    rt = current()
    ttl = rt.settings.job_result_ttl_seconds
    names = [(schema, table) for schema, table in tables]
    done = progress.recorded_among(job.connection, request_job_id, names)
    joining = [Joining(*j) for j in job.meta.get("joining", [])]
    joining = [j for j in joining if (j.schema_name, j.table_name) not in done]
    held = {(j.schema_name, j.table_name) for j in joining}
    returns = job.number_of_retries or 0
    with _reporting(job):
        still = data_refresh.refresh_tables(
            rt,
            connection_id,
            [name for name in names if name not in done and name not in held],
            job_id=job.id,
            report=lambda outcomes: progress.record(job.connection, request_job_id, outcomes, ttl),
            joining=joining,
            threads=batch_threads(rt.settings),
            stopping=shutdown_requested.is_set,
            last_try=returns + 1 >= BATCH_RETURNS,
            rules=ChangeRules(if_changed=if_changed, force=force, full=full),
        )
    if still or shutdown_requested.is_set():
        job.meta["joining"] = [asdict(j) for j in still]
        job.save_meta()
        return Retry(max=BATCH_RETURNS)
    return {"tables": len(names)}


def finish_connection_refresh(request_job_id: str, connection_id: str) -> dict[str, Any]:
    """Mode 4's result, once every batch has ended, in whatever order and however."""
    job = _this_job()
    ttl = current().settings.job_result_ttl_seconds
    with _reporting(job):
        parent = Job.fetch(request_job_id, connection=job.connection)
        batches = Job.fetch_many(job.dependency_ids, connection=job.connection)
        recorded = progress.recorded(job.connection, request_job_id)
        outcomes = list(recorded.values())
        for batch in batches:
            if batch is not None:
                outcomes += _unreported(batch, recorded)
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


def _fan_out(
    rt: Runtime,
    job: Job,
    connection_id: str,
    batches: list[list[TableToRefresh]],
    rules: ChangeRules,
) -> None:
    """Enqueue the batches' jobs, then their finisher (which must not exist before them: RQ
    counts a dependency it cannot find as met)."""
    queue = Queue(REFRESH, connection=job.connection)
    limit = RateLimit(f"refresh-connection:{connection_id}", batch_slots(rt.settings))
    children = []
    for number, batch in enumerate(batches, start=1):
        tables = [[t.schema_name, t.table_name] for t in batch]
        children.append(
            queue.enqueue_call(
                refresh_batch,
                kwargs={
                    "request_job_id": job.id,
                    "connection_id": connection_id,
                    "tables": tables,
                    "if_changed": rules.if_changed,
                    "force": rules.force,
                    "full": rules.full,
                },
                meta={"tables": tables},
                rate_limit=limit,
                retry=Retry(max=BATCH_RETRIES),
                description=(
                    f"refresh {connection_id}: batch {number} of {len(batches)}, "
                    f"{len(tables)} table(s) from {tables[0][0]}.{tables[0][1]}"
                ),
                **job_options(rt.settings, tables=len(tables)),
            )
        )
    queue.enqueue_call(
        finish_connection_refresh,
        kwargs={"request_job_id": job.id, "connection_id": connection_id},
        job_id=finisher_id(job.id),
        depends_on=Dependency(jobs=children, allow_failure=True),
        description=f"finish refreshing {connection_id}",
        **job_options(rt.settings),
    )


def _unreported(batch: Job, recorded: dict[tuple[str, str], TableOutcome]) -> list[TableOutcome]:
    """The tables of a batch that ended without recording them, failed with the reason."""
    status = batch.get_status(refresh=False)
    error = batch.meta.get("error") or _SILENT_END.get(status, f"the job ended as {status}")
    if status == JobStatus.FINISHED:
        error = "the batch ended without refreshing this table"
    return [
        TableOutcome(schema, table, error=error)
        for schema, table in batch.meta.get("tables", [])
        if (schema, table) not in recorded
    ]


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
        except RedisError as redis_error:  # Redis down: the job's failure is recorded later
            log.warning("could not record why job %s failed (Redis: %s)", job.id, redis_error)
        except Exception:
            log.exception("could not record why job %s failed", job.id)
        raise
