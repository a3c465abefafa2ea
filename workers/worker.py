"""The worker process: RQ's HerokuWorker, with the service's own words for a job it must stop,
and a way through Redis outages.

Heroku (and honcho) stop a process with SIGTERM and kill it 30 s later. HerokuWorker lets the
running job go on for ``imminent_shutdown_delay`` seconds, then raises inside it: the refresh
fails cleanly (nothing half-written is published, the previous version stays current, the
half-written directory is removed) and the job ends failed, saying why. A job over its time
limit ends the same way (``workers.time_limits``).

Importing the job modules and every source module here, in the worker process, means each forked
work horse starts with them loaded (copy-on-write: they cost memory once, not per job), instead
of spending a fifth of a second importing drivers for a table that takes a tenth to copy. So is
what the first use of each would load or build in every horse: the drivers' native libraries
(``Source.preload``) and SQLAlchemy's mapper configuration (20 ms per job otherwise).
Connections are still opened in the horse (``workers.process_runtime``).

A Redis outage stops no worker: its connection waits for Redis to answer again
(``workers.redis_retry``), idle or while its work horse runs a job, and a worker that Redis no
longer lists once it is back (a restart that lost the data, an entry expired during a long
outage) registers again at its next heartbeat, so that rq-dashboard shows it. Only a worker told
to stop gives up waiting: it lets its running job end as usual, and exits without recording what
Redis cannot take.
"""

from __future__ import annotations

import os
from types import FrameType
from typing import Any

from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import worker_registration
from rq.exceptions import ShutDownImminentException, StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.worker import HerokuWorker
from sqlalchemy.orm import configure_mappers

import workers.tasks  # noqa: F401 (loaded once, before the work horses fork)
from refresh.common.errors import Interrupted
from refresh.sources import SOURCE_TYPES, source_class
from workers.dependents import EnqueuesReadyDependents
from workers.process_runtime import shutdown_requested
from workers.redis_retry import UntilRedisAnswers
from workers.time_limits import TimeLimit

for _source_type in SOURCE_TYPES:
    source_class(_source_type).preload()
configure_mappers()


class WorkerShutdown(ShutDownImminentException, Interrupted):
    """The worker is stopping (SIGTERM) and the job did not finish in its grace period."""


class RefreshWorker(EnqueuesReadyDependents, HerokuWorker):
    death_penalty_class = TimeLimit
    # Within Heroku's 30 s between SIGTERM and SIGKILL, with room to record the failure.
    imminent_shutdown_delay = 10

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redis_retry = UntilRedisAnswers(self.log, self._who)
        self.connection.set_retry(self._redis_retry)

    # Redis outages

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        super().heartbeat(timeout, pipeline)
        if pipeline is None and not self.is_horse:
            self._stay_registered()

    def maintain_heartbeats(self, job: Job, execution: Execution) -> None:
        """The worker's heartbeats while its work horse runs a job."""
        try:
            super().maintain_heartbeats(job, execution)
        except RedisError:
            if not self._redis_retry.stopping:
                raise
            return  # stopping with Redis down: wait for the work horse all the same
        self._stay_registered()

    def _stay_registered(self) -> None:
        """Register again if Redis lost this worker (a restart without persistence, a failover
        that lost writes, an entry that expired while Redis was unreachable)."""
        with self.connection.pipeline() as pipeline:
            pipeline.sismember(self.redis_workers_keys, self.key)
            pipeline.hexists(self.key, "birth")
            listed, described = pipeline.execute()
        if listed and described:
            return
        self.log.info("Worker %s: Redis had lost this worker; registering it again", self.name)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
            worker_registration.register(self, pipeline)
            pipeline.execute()

    def _who(self) -> str:
        """How the retry lines name the process: the worker, or its work horse (no Redis call:
        this runs while Redis is down)."""
        if self.is_horse:
            return f"Worker {self.name}, work horse {os.getpid()}"
        return f"Worker {self.name}"

    # Stopping (SIGTERM): nothing waits for Redis any more, the dyno manager kills in 30 s

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._redis_retry.stop()
        super().request_stop(signum, frame)

    def set_shutdown_requested_date(self) -> None:
        # Called in the signal handler: an error would be raised in whatever it interrupted.
        try:
            super().set_shutdown_requested_date()
        except RedisError as error:
            self.log.warning("Worker %s: shutdown not recorded (Redis: %s)", self.name, error)

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        except RedisError as error:
            if not self._redis_retry.stopping:
                raise
            self.log.warning(
                "Worker %s: stopping while Redis is down (%s); job %s's end is not recorded, "
                "RQ fails it as abandoned once Redis is back",
                self.name,
                error,
                job.id,
            )
            raise StopRequested() from None

    def teardown(self) -> None:
        try:
            super().teardown()
        except RedisError as error:
            self.log.warning(
                "Worker %s: not unregistered (Redis: %s); its entry expires by itself",
                self.name,
                error,
            )

    def request_stop_sigrtmin(self, signum: int, frame: FrameType | None) -> None:
        """The worker is stopping: a batch starts no further table (its job runs again for
        them elsewhere), and the tables in progress get the grace period to finish."""
        shutdown_requested.set()
        super().request_stop_sigrtmin(signum, frame)

    def request_force_stop_sigrtmin(self, signum: int, frame: FrameType | None) -> None:
        """In the work horse, once the grace period after SIGTERM is over."""
        self._redis_retry.stop()  # recording the failure must not outlast the grace period
        self.log.warning("shutting down: interrupting the running job")
        raise WorkerShutdown(
            "interrupted: the worker was shut down before this finished; "
            "the previous version stays current, refresh again",
            {},
        )
