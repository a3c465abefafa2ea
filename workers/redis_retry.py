"""How a worker process waits for Redis: every command is tried again until Redis answers.

RQ 3.0.0's worker survives an outage only in its wait for jobs (``dequeue_job_and_maintain_ttl``
retries there); any other Redis error ends ``work()``: the heartbeats it sends while its work horse
runs a job (``maintain_heartbeats``), registry maintenance, the bookkeeping before and after each
job. The process then exits with status 1, and under honcho takes every process with it.

Rather than catching errors at each of those places in RQ's loop, the worker's connection carries
this policy (redis-py's ``Retry``, consulted on every connect and every command): a command that
fails because Redis is unreachable, restarting, still loading its data or read-only (a failover
in progress) is sent again after 1 s, then twice as long each time up to ``RETRY_MAX_SECONDS``,
with one log line per retry naming the wait. Whatever RQ was doing then goes on where it was once
Redis answers. A work horse inherits the policy with its connection: a table finished while Redis
is down is recorded (finished or failed, with its reason) once Redis is back.

Waiting ends when the process is told to stop (``stop()``): a worker stopping while Redis is down
gives up on what it would still record, rather than hold its shutdown until Redis is back.

The policy holds from the process's first command: ``rq worker`` asks Redis whether RQ is
suspended, and the worker registers, before the worker can set its own, and the CLI exits on the
first connection error there. The Procfile's ``--connection-class`` gives it a client
(``WorkerRedis``) that waits from the start, so a worker started during an outage waits for
Redis like one that was already running.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, Self, TypeVar

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, ReadOnlyError, TimeoutError
from redis.retry import Retry

T = TypeVar("T")

# 1 s, 2 s, 4 s, then every 5 s: a worker takes jobs again within 5 s of Redis's return.
RETRY_MAX_SECONDS = 5.0
_BASE_SECONDS = 0.5  # redis-py's exponential backoff waits base * 2 ** failures
# ConnectionError includes a server still loading its data (BusyLoadingError).
_OUTAGE_ERRORS = (ConnectionError, TimeoutError, socket.timeout, ReadOnlyError)


def backoff(cap: float) -> ExponentialBackoff:
    """Waits of 1 s, 2 s, 4 s... up to ``cap``: every loop of ours that waits for Redis."""
    return ExponentialBackoff(cap=cap, base=_BASE_SECONDS)


class UntilRedisAnswers(Retry):
    def __init__(self, log: logging.Logger, who: Callable[[], str]) -> None:
        """``who()`` opens each log line (``Worker <name>``, as RQ's own lines do)."""
        super().__init__(backoff(RETRY_MAX_SECONDS), retries=-1, supported_errors=_OUTAGE_ERRORS)
        self._log = log
        self._who = who
        self._stopping = threading.Event()

    def stop(self) -> None:
        """From now on a failing command raises at once."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def __deepcopy__(self, memo: dict[int, Any]) -> UntilRedisAnswers:
        # redis-py gives each new connection a deep copy of the pool's policy; they share this
        # one, so that stop() reaches every connection.
        return self

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        def failed(error: Exception, failures: int) -> None:
            if with_failure_count:
                fail(error, failures)
            else:
                fail(error)
            if self._stopping.is_set():
                raise error
            wait = self._backoff.compute(failures)
            # RQ's listener for remote commands (a thread) waits too, without repeating the line.
            main = threading.current_thread() is threading.main_thread()
            level = logging.WARNING if main else logging.DEBUG
            who = self._who()
            self._log.log(level, "%s: Redis failed (%s); retrying in %g s", who, error, wait)

        return super().call_with_retry(do, failed, is_retryable, with_failure_count=True)


class WorkerRedis(Redis):
    """The worker process's Redis client (``rq worker --connection-class``): it waits for Redis
    from its first command; the worker replaces the policy with its own (which names it) once it
    exists."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Self:
        retry = UntilRedisAnswers(logging.getLogger(__name__), lambda: "Worker (starting)")
        kwargs.setdefault("retry", retry)
        return super().from_url(url, **kwargs)
