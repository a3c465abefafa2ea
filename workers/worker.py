"""The worker process: RQ's HerokuWorker, with the service's own words for a job it must stop.

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
"""

from __future__ import annotations

from types import FrameType

from rq.exceptions import ShutDownImminentException
from rq.worker import HerokuWorker
from sqlalchemy.orm import configure_mappers

import workers.tasks  # noqa: F401 (loaded once, before the work horses fork)
from refresh.common.errors import Interrupted
from refresh.sources import SOURCE_TYPES, source_class
from workers.process_runtime import shutdown_requested
from workers.time_limits import TimeLimit

for _source_type in SOURCE_TYPES:
    source_class(_source_type).preload()
configure_mappers()


class WorkerShutdown(ShutDownImminentException, Interrupted):
    """The worker is stopping (SIGTERM) and the job did not finish in its grace period."""


class RefreshWorker(HerokuWorker):
    death_penalty_class = TimeLimit
    # Within Heroku's 30 s between SIGTERM and SIGKILL, with room to record the failure.
    imminent_shutdown_delay = 10

    def request_stop_sigrtmin(self, signum: int, frame: FrameType | None) -> None:
        """The worker is stopping: a batch starts no further table (its job runs again for
        them elsewhere), and the tables in progress get the grace period to finish."""
        shutdown_requested.set()
        super().request_stop_sigrtmin(signum, frame)

    def request_force_stop_sigrtmin(self, signum: int, frame: FrameType | None) -> None:
        self.log.warning("shutting down: interrupting the running job")
        raise WorkerShutdown(
            "interrupted: the worker was shut down before this finished; "
            "the previous version stays current, refresh again",
            {},
        )
