"""The scheduler: RQ's ``CronScheduler`` enqueueing ``workers.maintenance.periodic_jobs``.

``Scheduler.run`` is the loop of ``rq cron`` (``CronScheduler.start``: enqueue the jobs that are
due, save their times, heartbeat, sleep until the next one is due) with two differences:

- A Redis error does not end it. ``rq cron`` exits on the first one (its loop only catches a
  stop request), and under honcho one process exiting stops them all: a Redis restart or
  failover would end deferred deletion until someone restarted the scheduler. Here the error is
  logged and the loop goes on after a pause that doubles up to ``RETRY_MAX_SECONDS``; the jobs
  keep their next run times, and a job whose enqueue failed is enqueued on the next pass.
- It sleeps on an event, so that ``stop()`` ends it at once from another thread.

The Procfile's ``scheduler`` process runs it (``python -m workers.scheduler``), stopped by SIGTERM
or SIGINT as ``rq cron`` is; embedded mode runs it in a thread of the web process.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import suppress
from types import FrameType

from redis import Redis
from redis.exceptions import RedisError
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

from config import Settings
from workers.maintenance import periodic_jobs
from workers.redis_retry import backoff

log = logging.getLogger(__name__)

# Only housekeeping waits for it: fewer log lines than a worker's wait (workers.redis_retry).
RETRY_MAX_SECONDS = 30.0


class Scheduler:
    def __init__(self, connection: Redis, settings: Settings, logging_level: str = "INFO") -> None:
        self._cron = CronScheduler(connection, logging_level=logging_level)
        for job in periodic_jobs(settings):
            self._cron.register(**job)
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Enqueue the periodic jobs when due until ``stop()`` or a ``StopRequested``."""
        cron = self._cron
        waits = backoff(RETRY_MAX_SECONDS)
        failures = 0
        born = False
        try:
            while not self._stopping.is_set():
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
                self._stopping.wait(pause)
        except StopRequested:
            log.info("the scheduler is stopping")
        finally:
            if born:
                with suppress(RedisError):
                    cron.register_death()


def main() -> None:
    """The Procfile's ``scheduler`` process."""
    # Here, not at the top: it exits when REDIS_URL is missing, which embedded mode allows.
    from workers.settings import REDIS_URL, settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    def request_stop(signum: int, frame: FrameType | None) -> None:
        raise StopRequested()  # as rq cron does: it ends whatever the loop is waiting for

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    Scheduler(Redis.from_url(REDIS_URL), settings).run()


if __name__ == "__main__":
    main()
