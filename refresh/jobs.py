"""Refresh requests run as jobs: what a job looks like to the API, and the queue that runs them.

The queue itself is RQ (``workers/``): on Redis with worker processes, or in-process on a fake
Redis in embedded mode; either way it implements ``JobQueue``, so the API and the domain never
import ``rq``. A job is one ``POST /refresh`` request; a connection-wide refresh fans out into
one RQ job per table underneath, which the job's ``progress`` counts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from refresh.refresh_request import Mode, RefreshRequest


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


ENDED = (JobStatus.FINISHED, JobStatus.FAILED)


@dataclass(frozen=True)
class Progress:
    """Tables whose data the job refreshes: counted as each one ends."""

    tables_total: int = 0
    tables_done: int = 0
    tables_failed: int = 0
    rows_synced: int = 0


@dataclass(frozen=True)
class Job:
    job_id: str
    status: JobStatus
    mode: Mode
    # The ``POST /refresh`` body as the client sent it.
    request: Mapping[str, Any]
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    progress: Progress = field(default_factory=Progress)
    # The response body the same request would have had in the request (a finished job), as the
    # plain fields of the mode's result; the HTTP layer formats it like that response.
    result: Mapping[str, Any] | None = None
    # Why a failed job failed, in words a user may read.
    error: str | None = None


class JobQueue(Protocol):
    def submit(self, request: RefreshRequest, mode: Mode, body: Mapping[str, Any]) -> Job:
        """Queue a validated request. Raises ``ServiceUnavailable`` when the queue is down,
        in which case nothing was queued."""

    def get(self, job_id: str) -> Job:
        """The job as it stands now. Raises ``NotFound`` (unknown or expired id) and
        ``ServiceUnavailable``."""

    def wait(self, job_id: str, timeout: float) -> Job:
        """The job once it has ended, or as it stands after ``timeout`` seconds."""

    def check(self) -> None:
        """Raise ``ServiceUnavailable`` when the queue cannot be reached (``GET /health``)."""

    def recent(self, limit: int) -> list[Job]:
        """The latest ``limit`` requests the queue still keeps (queued, running, or ended within
        ``JOB_RESULT_TTL_SECONDS``), newest first. Raises ``ServiceUnavailable``."""

    def counts(self) -> Mapping[tuple[str, str], int]:
        """How many jobs each queue holds in each state, by (queue, state) (``GET /metrics``).
        Raises ``ServiceUnavailable``."""

    def close(self) -> None:
        """Release connections; in embedded mode, stop the in-process workers."""
