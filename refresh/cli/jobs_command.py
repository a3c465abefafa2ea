"""``flask refresh jobs``: the latest refresh requests run as jobs, with their state."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from refresh.api.context import job_queue, runtime
from refresh.cli.exits import fail, failures
from refresh.cli.formatting import count, one_line, when
from refresh.jobs import Job

# What embedded mode means for this command, said once.
EMBEDDED = (
    "no job queue to read: without REDIS_URL, jobs live in the memory of the web process that "
    "runs them (bin/run), so a separate command sees none; that process's job API "
    "(GET /refresh/jobs/{job_id}) and rq-dashboard (/rq) show them"
)


@click.command("jobs")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(min=1), help="Jobs to show."
)
@with_appcontext
def command(limit: int) -> None:
    """The latest refresh jobs, newest first (REDIS_URL only).

    The requests run as jobs (a connection's data, async: true), read from Redis: each job's id,
    state, times, progress and request, and why a failed one failed. Jobs stay there
    JOB_RESULT_TTL_SECONDS after they end. Without REDIS_URL, jobs live in the memory of the web
    process that runs them, and this command cannot see them.
    """
    if runtime().settings.embedded:
        fail(EMBEDDED)
    with failures():
        jobs = job_queue().recent(limit)
    if not jobs:
        click.echo("no jobs")
    for job in jobs:
        click.echo(line(job))
        if job.error is not None:
            click.echo(f"  error: {one_line(job.error)}")


def line(job: Job) -> str:
    progress = job.progress
    done = (
        f"{progress.tables_done}/{count(progress.tables_total, 'table')}, "
        f"{progress.tables_failed} failed, {count(progress.rows_synced, 'row')}"
        if progress.tables_total
        else "-"
    )
    return (
        f"{job.job_id}  {job.status:<8}  enqueued {when(job.enqueued_at)}  "
        f"ended {when(job.ended_at)}  {done}  {json.dumps(dict(job.request))}"
    )
