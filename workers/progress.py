"""Live progress of a refresh job: counters in one Redis hash that each table's job bumps as it
ends, so ``GET /refresh/jobs/{id}`` never has to read thousands of child jobs.

The counters are increments (atomic, whatever order tables end in); the job that aggregates a
connection-wide refresh writes the final figures, which also count tables whose job was killed
before it could bump anything.
"""

from __future__ import annotations

from redis import Redis

from refresh.jobs import Progress

_FIELDS = ("tables_total", "tables_done", "tables_failed", "rows_synced")


def _key(job_id: str) -> str:
    return f"refresh:progress:{job_id}"


def start(connection: Redis, job_id: str, tables_total: int, ttl: int) -> None:
    with connection.pipeline() as pipe:
        pipe.hset(_key(job_id), "tables_total", tables_total)
        pipe.expire(_key(job_id), ttl)
        pipe.execute()


def table_ended(connection: Redis, job_id: str, rows: int, failed: bool, ttl: int) -> None:
    with connection.pipeline() as pipe:
        pipe.hincrby(_key(job_id), "tables_done", 1)
        if failed:
            pipe.hincrby(_key(job_id), "tables_failed", 1)
        pipe.hincrby(_key(job_id), "rows_synced", rows)
        pipe.expire(_key(job_id), ttl)
        pipe.execute()


def settle(connection: Redis, job_id: str, progress: Progress, ttl: int) -> None:
    """Replace the counters by the final figures."""
    with connection.pipeline() as pipe:
        pipe.hset(_key(job_id), mapping={name: getattr(progress, name) for name in _FIELDS})
        pipe.expire(_key(job_id), ttl)
        pipe.execute()


def read(connection: Redis, job_id: str) -> Progress:
    values = connection.hmget(_key(job_id), _FIELDS)
    return Progress(*(int(value or 0) for value in values))
