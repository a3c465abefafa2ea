"""Live progress of a refresh job, and the outcome of each of its tables, in Redis.

Each table's outcome is recorded once, as soon as it is known, with the progress counters in the
same round trip (a script: the outcome is set only if the table has none yet, and only then are
the counters bumped), so ``GET /refresh/jobs/{id}`` moves table by table and never reads
thousands of jobs, and a table counts once whatever runs it again (a batch re-run after its work
horse was killed, or coming back for tables other refreshes held). The job that aggregates a
connection-wide refresh builds its result from these outcomes, and writes the final counters,
which also count tables whose batch ended without reporting them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from redis import Redis

from refresh.data_refresh import TableOutcome
from refresh.jobs import Progress

_FIELDS = ("tables_total", "tables_done", "tables_failed", "rows_synced")

# KEYS: outcomes, progress. ARGV: ttl, then per table: name, outcome, rows, failed (0 or 1).
_RECORD = """
for i = 2, #ARGV, 4 do
    if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
        redis.call('HINCRBY', KEYS[2], 'tables_done', 1)
        redis.call('HINCRBY', KEYS[2], 'tables_failed', ARGV[i + 3])
        redis.call('HINCRBY', KEYS[2], 'rows_synced', ARGV[i + 2])
    end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
"""


def _progress_key(job_id: str) -> str:
    return f"refresh:progress:{job_id}"


def _outcomes_key(job_id: str) -> str:
    return f"refresh:outcomes:{job_id}"


def _name(schema_name: str, table_name: str) -> str:
    return json.dumps([schema_name, table_name])


def start(connection: Redis, job_id: str, tables_total: int, ttl: int) -> None:
    with connection.pipeline() as pipe:
        pipe.hset(_progress_key(job_id), "tables_total", tables_total)
        pipe.expire(_progress_key(job_id), ttl)
        pipe.execute()


def record(connection: Redis, job_id: str, outcomes: Sequence[TableOutcome], ttl: int) -> None:
    """Record each table's outcome, unless it has one already, and count it."""
    if not outcomes:
        return
    args: list[object] = [ttl]
    for outcome in outcomes:
        value = json.dumps(
            {
                "rows_synced": outcome.rows_synced,
                "error": outcome.error,
                "warnings": list(outcome.warnings),
                "unchanged": outcome.unchanged,
                "held": outcome.held,
            }
        )
        name = _name(outcome.schema_name, outcome.table_name)
        args += [name, value, outcome.rows_synced, int(outcome.error is not None)]
    connection.eval(_RECORD, 2, _outcomes_key(job_id), _progress_key(job_id), *args)


def recorded(connection: Redis, job_id: str) -> dict[tuple[str, str], TableOutcome]:
    """Every outcome recorded for the job, by (schema, table)."""
    outcomes = {}
    for name, value in connection.hgetall(_outcomes_key(job_id)).items():
        schema_name, table_name = json.loads(name)
        fields = json.loads(value)
        outcomes[schema_name, table_name] = TableOutcome(
            schema_name,
            table_name,
            rows_synced=fields["rows_synced"],
            error=fields["error"],
            warnings=tuple(fields["warnings"]),
            unchanged=fields["unchanged"],
            held=fields["held"],
        )
    return outcomes


def recorded_among(
    connection: Redis, job_id: str, names: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of ``names`` have an outcome already."""
    names = list(names)
    if not names:
        return set()
    found = connection.hmget(_outcomes_key(job_id), [_name(*n) for n in names])
    return {name for name, value in zip(names, found, strict=True) if value is not None}


def settle(connection: Redis, job_id: str, progress: Progress, ttl: int) -> None:
    """Replace the counters by the final figures."""
    with connection.pipeline() as pipe:
        pipe.hset(
            _progress_key(job_id), mapping={name: getattr(progress, name) for name in _FIELDS}
        )
        pipe.expire(_progress_key(job_id), ttl)
        pipe.expire(_outcomes_key(job_id), ttl)
        pipe.execute()


def read(connection: Redis, job_id: str) -> Progress:
    values = connection.hmget(_progress_key(job_id), _FIELDS)
    return Progress(*(int(value or 0) for value in values))
