"""A job over its time limit (``REFRESH_JOB_TIMEOUT_SECONDS``) fails with the service's own words.

RQ arms one kind of timer for a job and for its own waits (a worker watching its work horse);
only the job's raises ``JobTimeout``, a domain error, so the refresh records a clear reason. One
timer for forked work horses (SIGALRM), one for the worker threads of embedded mode.
"""

from __future__ import annotations

from typing import Any

from rq.timeouts import (
    BaseTimeoutException,
    JobTimeoutException,
    TimerDeathPenalty,
    UnixSignalDeathPenalty,
)

from refresh.common.errors import Interrupted


class JobTimeout(JobTimeoutException, Interrupted):
    """The job ran longer than ``REFRESH_JOB_TIMEOUT_SECONDS``."""


def _ours(exception: type[BaseTimeoutException]) -> type[BaseTimeoutException]:
    return JobTimeout if issubclass(exception, JobTimeoutException) else exception


class TimeLimit(UnixSignalDeathPenalty):
    def __init__(
        self, timeout: int, exception: type[BaseTimeoutException] = JobTimeoutException, **kw: Any
    ) -> None:
        super().__init__(timeout, _ours(exception), **kw)


class ThreadTimeLimit(TimerDeathPenalty):
    """SIGALRM reaches only the main thread: a timer raises in the worker thread instead."""

    def __init__(
        self, timeout: int, exception: type[BaseTimeoutException] = JobTimeoutException, **kw: Any
    ) -> None:
        super().__init__(timeout, _ours(exception), **kw)
