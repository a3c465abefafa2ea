"""``flask refresh gc``: the deletion queue's due rows, processed now or only shown."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from refresh.api.context import runtime
from refresh.cli.exits import FAILED, failures
from refresh.cli.formatting import one_line, when
from refresh.versions.deletions import (
    Action,
    PlannedDeletion,
    plan_pending_deletions,
    process_pending_deletions,
    queued_deletions,
)


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Show what a run would do now; change nothing.")
@with_appcontext
def command(dry_run: bool) -> None:
    """Process the due pending deletions (or --dry-run).

    Once, as the scheduler does every DELETION_INTERVAL_SECONDS; exit status 1 when a deletion
    failed. With --dry-run: each due row and what a run would do with it now (delete it, and
    which attempt that is; defer it; drop or leave it because it is in use), without doing it.
    """
    rt = runtime()
    if dry_run:
        with failures():
            plans = plan_pending_deletions(rt)
            waiting = [r.delete_after for r in queued_deletions(rt) if not r.due and r.delete_after]
        next_due = f", the next due {when(min(waiting))}" if waiting else ""
        click.echo(f"{len(plans)} due now; {len(waiting)} in their grace period{next_due}")
        for plan in plans:
            click.echo(line(plan, rt.settings.max_deletion_retries))
        click.echo("dry run: nothing was changed")
        return
    with failures():
        run = process_pending_deletions(rt)
    click.echo(
        f"deleted {run.deleted}, failed {run.failed} (the next run tries again), given up "
        f"{run.given_up}, deferred {run.deferred} (unreadable due time), dropped {run.current} "
        f"(a table's current version), left {run.being_written} (being written)"
    )
    if run.failed or run.given_up:
        raise click.exceptions.Exit(FAILED)


def line(plan: PlannedDeletion, retries: int) -> str:
    row = plan.row
    if plan.action is Action.DELETE:
        what = f"delete (attempt {row.retry_count + 1} of {retries}"
        what += "; a failure gives it up, the files stay)" if plan.last_attempt else ")"
        if row.last_error:
            what += f"; last error: {one_line(row.last_error)}"
    elif plan.action is Action.DEFER:
        what = f"defer 24 hours: its due time cannot be read ({row.stored!r})"
    elif plan.action is Action.DROP:
        what = "drop from the queue: it is a table's current version"
    elif plan.action is Action.WAIT:
        what = "leave for a later run: a refresh is writing it"
    else:
        what = f"leave: another run holds it until {when(row.claimed_until)}"
    return f"  {row.path}  {what}"
