"""The scheduler: RQ's ``CronScheduler`` enqueueing ``workers.maintenance.periodic_jobs``, and the
connections' refresh schedules (``refresh.schedule_runs``) every ``SCHEDULE_POLL_SECONDS``.

``Scheduler.run`` is the loop of ``rq cron`` (``CronScheduler.start``: enqueue the jobs that are
due, save their times, heartbeat, sleep until the next one is due) with three differences:

- A Redis error does not end it. ``rq cron`` exits on the first one (its loop only catches a
  stop request), and under honcho one process exiting stops them all: a Redis restart or
  failover would end deferred deletion until someone restarted the scheduler. Here the error is
  logged and the loop goes on after a pause that doubles up to ``RETRY_MAX_SECONDS``; the jobs
  keep their next run times, and a job whose enqueue failed is enqueued on the next pass.
- It also runs the due refresh schedules, which live in the catalog: a pass that fails (the
  catalog or Redis down) is logged and the next poll tries again.
- It sleeps on an event, so that ``stop()`` ends it at once from another thread.

The Procfile's ``scheduler`` process runs it (``python -m workers.scheduler``), stopped by SIGTERM
or SIGINT as ``rq cron`` is; embedded mode runs it in a thread of the web process.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import suppress
from types import FrameType

from redis import Redis
from redis.exceptions import RedisError
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

from refresh.common.errors import RefreshError
from refresh.jobs import JobQueue
from refresh.runtime import Runtime
from refresh.schedule_runs import run_schedules
from workers.maintenance import periodic_jobs
from workers.redis_retry import backoff

log = logging.getLogger(__name__)

# Only housekeeping waits for it: fewer log lines than a worker's wait (workers.redis_retry).
RETRY_MAX_SECONDS = 30.0


class Scheduler:
    def __init__(
        self, connection: Redis, runtime: Runtime, jobs: JobQueue, logging_level: str = "INFO"
    ) -> None:
        self._cron = CronScheduler(connection, logging_level=logging_level)
        for job in periodic_jobs(runtime.settings):
            self._cron.register(**job)
        self._runtime = runtime
        self._jobs = jobs
        self._poll_seconds = runtime.settings.schedule_poll_seconds
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Enqueue the periodic jobs and the due schedules until ``stop()`` or a
        ``StopRequested``."""
        cron = self._cron
        waits = backoff(RETRY_MAX_SECONDS)
        failures = 0
        born = False
        next_poll = time.monotonic()
        try:
            while not self._stopping.is_set():
                if time.monotonic() >= next_poll:
                    self._run_schedules()
                    next_poll = time.monotonic() + self._poll_seconds
                try:
                    if not born:
                        cron.register_birth()
                        born = True
                    if cron.enqueue_jobs():
                        cron.save()
                    cron.heartbeat()  # re-registers the scheduler if Redis lost it
                    pause = cron.calculate_sleep_interval()
                    failures = 0
                except RedisError as error:  # down, restarting, failing over, read-only
                    failures += 1
                    pause = waits.compute(failures)
                    log.warning("Redis failed (%s); the scheduler retries in %g s", error, pause)
                self._stopping.wait(max(0.0, min(pause, next_poll - time.monotonic())))
        except StopRequested:
            log.info("the scheduler is stopping")
        finally:
            if born:
                with suppress(RedisError):
                    cron.register_death()

    def _run_schedules(self) -> None:
        try:
            done = run_schedules(self._runtime, self._jobs)
        except RefreshError as error:  # the catalog unreachable
            log.warning("schedules not run (%s); next try in %d s", error, self._poll_seconds)
            return
        except Exception:
            log.exception("running the refresh schedules failed")
            return
        if done.started or done.skipped or done.failures:
            log.info(
                "refresh schedules: %d started, %d skipped (previous run in flight), "
                "%d failed runs counted, %d paused",
                done.started,
                done.skipped,
                done.failures,
                done.paused,
            )


def main() -> None:
    """The Procfile's ``scheduler`` process."""
    # Here, not at the top: it exits when REDIS_URL is missing, which embedded mode allows; and
    # the job queue's module imports embedded mode's, which imports this one.
    from workers.runner import RQJobQueue
    from workers.settings import REDIS_URL, settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    def request_stop(signum: int, frame: FrameType | None) -> None:
        raise StopRequested()  # as rq cron does: it ends whatever the loop is waiting for

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    connection = Redis.from_url(REDIS_URL)
    runtime = Runtime.from_settings(settings)
    Scheduler(connection, runtime, RQJobQueue(connection, settings)).run()


if __name__ == "__main__":
    main()
