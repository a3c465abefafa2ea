"""Access to the process's ``Runtime`` and job queue from inside a request."""

from __future__ import annotations

from flask import current_app

from refresh.jobs import JobQueue
from refresh.runtime import Runtime

EXTENSION = "refresh"
JOBS = "refresh.jobs"


def runtime() -> Runtime:
    return current_app.extensions[EXTENSION]


def job_queue() -> JobQueue:
    return current_app.extensions[JOBS]
