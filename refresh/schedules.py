"""A connection's refresh schedule: the resource (``PUT|GET|DELETE /connections/{id}/schedule``)
and its timing (when a run is due, with jitter and back-off).

Schedules live in the catalog, so a Redis flush or a restart loses none; the scheduler process
runs the due ones (``refresh.schedule_runs``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from croniter import CroniterError, croniter
from sqlalchemy.orm import Session

from refresh.catalog import Schedule, utcnow
from refresh.common.errors import InvalidRequest, NotFound
from refresh.lookup import load_connection
from refresh.runtime import Runtime

# A run is due somewhere in the first 10% of its interval, so that many schedules of one interval
# do not all hit their sources (and the workers) in the same second.
JITTER_SHARE = 0.1
# After failures, runs back off exponentially up to this.
MAX_BACKOFF = timedelta(hours=24)


@dataclass(frozen=True)
class Timing:
    """When runs are due: every ``every_seconds``, or at the times of a five-field UTC ``cron``."""

    every_seconds: int | None = None
    cron: str | None = None

    @classmethod
    def of(cls, schedule: Schedule) -> Timing:
        return cls(schedule.every_seconds, schedule.cron)

    def next_after(self, moment: datetime) -> datetime:
        """The first run time after ``moment``, before jitter."""
        if self.cron is None:
            assert self.every_seconds is not None
            return moment + timedelta(seconds=self.every_seconds)
        return croniter(self.cron, moment).get_next(datetime)

    def interval(self, moment: datetime) -> timedelta:
        """The time between two runs around ``moment`` (a cron's gap varies: the next one)."""
        if self.cron is None:
            assert self.every_seconds is not None
            return timedelta(seconds=self.every_seconds)
        runs = croniter(self.cron, moment)
        first = runs.get_next(datetime)
        return runs.get_next(datetime) - first

    def next_run(self, after: datetime, not_before: datetime | None = None) -> datetime:
        """The next run time after ``after`` (and at or after ``not_before``), with jitter."""
        due = self.next_after(after)
        if not_before is not None and due < not_before:
            if self.cron is None:
                due = not_before
            else:
                due = self.next_after(not_before - timedelta(microseconds=1))
        jitter = random.uniform(0, JITTER_SHARE) * self.interval(due).total_seconds()
        return due + timedelta(seconds=jitter)

    def backoff(self, failures: int, moment: datetime) -> timedelta:
        """How long after a failed run the next one may start: the interval doubled per failure
        in a row, at most ``MAX_BACKOFF``."""
        interval = self.interval(moment)
        return min(interval * (2 ** min(failures, 32)), MAX_BACKOFF)


def validate_cron(expression: str) -> str:
    """Five fields (minute hour day-of-month month day-of-week), read in UTC."""
    if len(expression.split()) != 5:
        raise InvalidRequest(
            "cron: must have five fields (minute hour day-of-month month day-of-week), UTC"
        )
    try:
        croniter(expression, utcnow())
    except (CroniterError, ValueError) as error:
        raise InvalidRequest(f"cron: not a valid cron expression ({error})") from None
    return expression


def put_schedule(rt: Runtime, connection_id: str, fields: Mapping[str, Any]) -> Schedule:
    """Create or replace the connection's schedule from validated ``fields``.

    Replacing resumes a paused schedule and forgets its failures; the job of its last run is
    kept, so a run still in flight still holds the next one back.
    """
    if fields.get("cron") is not None:
        validate_cron(fields["cron"])
    timing = Timing(fields.get("every_seconds"), fields.get("cron"))
    now = utcnow()
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        schedule = session.get(Schedule, connection_id, with_for_update=True)
        if schedule is None:
            schedule = Schedule(connection_id=connection_id, last_job_settled=True)
            session.add(schedule)
        schedule.every_seconds = timing.every_seconds
        schedule.cron = timing.cron
        schedule.include_uncached = fields["include_uncached"]
        schedule.only_if_changed = fields["only_if_changed"]
        schedule.enabled = fields["enabled"]
        schedule.consecutive_failures = 0
        schedule.last_failure_at = None
        schedule.paused_reason = None
        schedule.next_run_at = timing.next_run(now) if schedule.enabled else None
        session.flush()
        return schedule


def get_schedule(rt: Runtime, connection_id: str) -> Schedule:
    with rt.catalog.session() as session:
        return _load_schedule(session, connection_id)


def delete_schedule(rt: Runtime, connection_id: str) -> None:
    with rt.catalog.session() as session:
        session.delete(_load_schedule(session, connection_id))


def _load_schedule(session: Session, connection_id: str) -> Schedule:
    load_connection(session, connection_id)
    schedule = session.get(Schedule, connection_id)
    if schedule is None:
        raise NotFound(f"connection '{connection_id}' has no schedule")
    return schedule
