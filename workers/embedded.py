"""RQ without a Redis server, for embedded mode (no ``REDIS_URL``): one process does everything.

A fake Redis (fakeredis, with Lua for RQ's rate limits) lives in the web process, and worker
threads run the very same job functions a worker process would, with the same per-connection
cap; the job API reads them the same way. A scheduler thread runs the deployment's scheduler
loop (``workers.scheduler``). Everything is in memory: when the process stops, jobs still queued
are lost, and a table being refreshed is abandoned (its previous version stays current; the
claim is taken over by the next refresh of the table, or by the orphan sweep).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import fakeredis
from rq import Queue
from rq.exceptions import StopRequested
from rq.worker import SimpleWorker

from refresh.jobs import JobQueue
from refresh.runtime import Runtime
from workers.dependents import EnqueuesReadyDependents
from workers.process_runtime import bound
from workers.queues import QUEUES
from workers.scheduler import Scheduler
from workers.time_limits import ThreadTimeLimit

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 10


class ThreadWorker(EnqueuesReadyDependents, SimpleWorker):
    """An RQ worker in a thread: signals belong to the web server, stopping is a flag.

    No pub/sub subscription: RQ's remote commands (``rq`` CLI's stop-job, shutdown) address
    worker processes, and an idle subscription would only slow the broker's stop down.
    """

    death_penalty_class = ThreadTimeLimit

    def _install_signal_handlers(self) -> None:
        """Signals are the web server's (gunicorn's); the broker stops the worker itself."""

    def subscribe(self) -> None:
        """No remote commands in embedded mode."""

    def unsubscribe(self) -> None:
        """Nothing was subscribed."""

    def stop(self) -> None:
        """Stop after the running job, if any (``StoppableRedis`` wakes an idle one)."""
        self._stop_requested = True


class StoppableRedis(fakeredis.FakeRedis):
    """A worker's client of the broker: its blocking pop ends the work loop once the broker
    stops (RQ's loop only looks at its stop flag between jobs, never while idle)."""

    def __init__(self, server: fakeredis.FakeServer, stopping: threading.Event) -> None:
        super().__init__(server=server)
        self._stopping = stopping

    def blpop(self, keys: Any, timeout: Any = 0) -> Any:
        popped = super().blpop(keys, timeout)
        if self._stopping.is_set():
            raise StopRequested()
        return popped


class EmbeddedBroker:
    def __init__(
        self, runtime: Runtime, threads: int, job_queue: Callable[[fakeredis.FakeRedis], JobQueue]
    ) -> None:
        """``job_queue`` makes the scheduler's job queue over a client of the broker."""
        self._server = fakeredis.FakeServer()
        self._stopping = threading.Event()
        self.connection = self.client()
        self._workers = [
            ThreadWorker(
                list(QUEUES),
                connection=StoppableRedis(self._server, self._stopping),
                name=f"embedded-{os.getpid()}-{n}",
            )
            for n in range(threads)
        ]
        self._threads = [
            threading.Thread(
                target=self._work, args=(worker, runtime), name=worker.name, daemon=True
            )
            for worker in self._workers
        ]
        for thread in self._threads:
            thread.start()
        # Signals are the web server's: the scheduler thread is stopped by the broker.
        scheduler_client = self.client()
        self._scheduler = Scheduler(
            scheduler_client, runtime, job_queue(scheduler_client), logging_level="WARNING"
        )
        self._scheduler_thread = threading.Thread(
            target=self._scheduler.run, name="embedded-scheduler", daemon=True
        )
        self._scheduler_thread.start()

    def client(self) -> fakeredis.FakeRedis:
        return fakeredis.FakeRedis(server=self._server)

    def stop(self) -> None:
        """Stop the scheduler and the worker threads; a job still running after a few seconds is
        left behind."""
        self._scheduler.stop()
        self._scheduler_thread.join(timeout=STOP_TIMEOUT_SECONDS)
        self._stopping.set()
        wake = Queue(QUEUES[0], connection=self.connection).key
        for worker in self._workers:
            worker.stop()
            self.connection.rpush(wake, "stop")  # ends one idle worker's blocking pop
        for thread in self._threads:
            thread.join(timeout=STOP_TIMEOUT_SECONDS)
            if thread.is_alive():
                log.warning("embedded worker %s still busy at shutdown; left behind", thread.name)

    def _work(self, worker: ThreadWorker, runtime: Runtime) -> None:
        with bound(runtime):
            worker.work(logging_level="WARNING")
