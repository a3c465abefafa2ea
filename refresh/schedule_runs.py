"""Running the due schedules: what the scheduler process does every ``SCHEDULE_POLL_SECONDS``.

Each pass, in this order:

1. **Settle** the last run of every schedule whose job has not been accounted for, reading the
   job through the job queue: still queued or running, it stays unsettled (and holds the next
   run back); ended, it counts as a failure when the job failed or every table of it failed,
   else as a success. A job the queue no longer knows (expired, Redis flushed) counts as
   neither. A failure backs the next run off (the interval doubled per failure in a row, at most
   24 h); ``SCHEDULE_MAX_FAILURES`` in a row pause the schedule with the reason, until the next
   ``PUT``. A success forgets the failures.
2. **Forgive**: a schedule with failures whose connection has had a successful refresh since its
   last failure (any refresh, scheduled or not: a table published or found unchanged, as
   ``tables.last_success_at`` records) forgets them. A paused schedule stays as it is.
3. **Run** the due schedules: a run is claimed by moving ``next_run_at`` on with a
   compare-and-set, so two schedulers never start one run twice; a schedule whose previous run is
   still in flight skips this one (it is not queued up behind it); the others submit the
   connection's mode-4 request to the job queue, as ``POST /refresh`` would, and only then
   record the run (``last_run_at``, ``last_job_id``), so a schedule only ever names a job that
   was queued.

Everything a schedule needs is in the catalog, so any number of schedulers (or restarts, or a
Redis flush) lose no schedule and start no run twice. No ``rq`` here: the job queue is the API's
``JobQueue``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update

from refresh.catalog import Schedule, Table, utcnow
from refresh.common.errors import NotFound, RefreshError
from refresh.jobs import ENDED, Job, JobQueue, JobStatus
from refresh.refresh_request import Mode, RefreshRequest
from refresh.runtime import Runtime
from refresh.schedules import Timing

log = logging.getLogger(__name__)


@dataclass
class Pass:
    """What one pass did, for the scheduler's log."""

    started: int = 0
    skipped: int = 0
    failures: int = 0
    paused: int = 0


def run_schedules(rt: Runtime, jobs: JobQueue, now: datetime | None = None) -> Pass:
    """One pass of the scheduler (see the module docstring). Raises ``ServiceUnavailable`` when
    the catalog is unreachable; a failure of one schedule is logged and the others go on."""
    now = now or utcnow()
    report = Pass()
    with rt.catalog.session() as session:
        unsettled = session.scalars(
            select(Schedule).where(
                Schedule.last_job_settled.is_(False), Schedule.last_job_id.is_not(None)
            )
        ).all()
    for schedule in unsettled:
        _each(schedule, lambda s=schedule: _settle(rt, jobs, s, now, report))
    _forgive(rt)
    with rt.catalog.session() as session:
        due = session.scalars(select(Schedule).where(Schedule.next_run_at <= now)).all()
    for schedule in due:
        _each(schedule, lambda s=schedule: _run(rt, jobs, s, now, report))
    return report


def _each(schedule: Schedule, work: Callable[[], None]) -> None:
    try:
        work()
    except RefreshError as error:  # the queue's Redis down: the next pass tries again
        log.warning("schedule of %s: %s", schedule.connection_id, error)
    except Exception:
        log.exception("schedule of %s failed", schedule.connection_id)


def _settle(rt: Runtime, jobs: JobQueue, schedule: Schedule, now: datetime, report: Pass) -> None:
    try:
        job = jobs.get(schedule.last_job_id or "")
    except NotFound:
        job = None
    if job is not None and job.status not in ENDED:
        return
    failure = _failure(job) if job is not None else None
    values: dict[str, Any] = {"last_job_settled": True}
    if job is not None and failure is None:
        values |= {"consecutive_failures": 0, "last_failure_at": None}
    elif failure is not None:
        failures = schedule.consecutive_failures + 1
        report.failures += 1
        values |= {"consecutive_failures": failures, "last_failure_at": job.ended_at or now}
        if failures >= rt.settings.schedule_max_failures:
            report.paused += 1
            values |= {
                "next_run_at": None,
                "paused_reason": (
                    f"paused after {failures} failed runs in a row (SCHEDULE_MAX_FAILURES); "
                    f"the last one: {failure}; PUT the schedule to resume"
                ),
            }
        elif schedule.next_run_at is not None:
            timing = Timing.of(schedule)
            started = schedule.last_run_at or now
            values["next_run_at"] = max(
                schedule.next_run_at,
                timing.next_run(now, not_before=started + timing.backoff(failures, now)),
            )
    with rt.catalog.session() as session:
        # Only the scheduler that settles this job counts it (another may be settling it too).
        session.execute(
            update(Schedule)
            .where(
                Schedule.connection_id == schedule.connection_id,
                Schedule.last_job_id == schedule.last_job_id,
                Schedule.last_job_settled.is_(False),
            )
            .values(**values)
        )


def _failure(job: Job) -> str | None:
    """Why the run failed, or None when it did not: the job failed, or every table failed."""
    if job.status is JobStatus.FAILED:
        return job.error or "the job failed"
    result: Mapping[str, Any] = job.result or {}
    if result.get("tables_failed", 0) > 0 and result.get("tables_refreshed", 0) == 0:
        errors = result.get("errors") or [{}]
        return f"every table failed, e.g. {errors[0].get('error', 'no reason given')}"
    return None


def _forgive(rt: Runtime) -> None:
    """A successful refresh of the connection since its last failure resets the count."""
    succeeded = exists().where(
        Table.connection_id == Schedule.connection_id,
        Table.last_success_at > Schedule.last_failure_at,
    )
    with rt.catalog.session() as session:
        session.execute(
            update(Schedule)
            .where(
                Schedule.consecutive_failures > 0,
                Schedule.paused_reason.is_(None),
                succeeded,
            )
            .values(consecutive_failures=0, last_failure_at=None)
            .execution_options(synchronize_session=False)
        )


def _run(rt: Runtime, jobs: JobQueue, schedule: Schedule, now: datetime, report: Pass) -> None:
    """Claim the run, submit its job, then record the run. Until then the schedule goes on
    naming the previous run, which has ended (else this run is skipped), so ``last_job_id`` never
    names a job that was not queued, and a submit that fails leaves no trace but the claim."""
    timing = Timing.of(schedule)
    with rt.catalog.session() as session:
        won = session.execute(
            update(Schedule)
            .where(
                Schedule.connection_id == schedule.connection_id,
                Schedule.next_run_at == schedule.next_run_at,
            )
            .values(next_run_at=timing.next_run(now))
        )
    if won.rowcount != 1:
        return  # another scheduler took this run, or a PUT changed the schedule meanwhile
    if not schedule.last_job_settled and schedule.last_job_id is not None:
        report.skipped += 1
        log.info("schedule of %s: previous run still in flight; skipped", schedule.connection_id)
        return
    request = RefreshRequest(
        connection_id=schedule.connection_id,
        data=True,
        include_uncached=schedule.include_uncached,
        if_changed=schedule.only_if_changed,
    )
    body = {
        "connection_id": schedule.connection_id,
        "data": True,
        "include_uncached": schedule.include_uncached,
        "if_changed": schedule.only_if_changed,
    }
    job = jobs.submit(request, Mode.CONNECTION_DATA, body)
    report.started += 1
    with rt.catalog.session() as session:
        session.execute(
            update(Schedule)
            .where(Schedule.connection_id == schedule.connection_id)
            .values(last_run_at=now, last_job_id=job.job_id, last_job_settled=False)
        )
