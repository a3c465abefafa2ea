"""``flask refresh gc`` through Click's runner: what a deletion run would do now, then a run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text, update

from config import Settings
from refresh.catalog import PendingDeletion, utcnow
from refresh.runtime import Runtime
from tests.support.backends import Backend
from tests.support.cli import invoke
from tests.support.deletions import add_table, add_versions, pending, plant_versions, queue
from tests.support.markers import both_catalogs


def queue_state(rt: Runtime) -> dict[str, tuple]:
    return {
        path: (row.delete_after, row.retry_count, row.last_error, row.claimed_until)
        for path, row in pending(rt).items()
    }


@both_catalogs
def test_a_dry_run_shows_what_a_run_would_do_and_changes_nothing(
    rt: Runtime, cache: Backend, settings: Settings
) -> None:
    due, last, current, writing, held, later = plant_versions(cache, 6)
    table_id = add_table(rt, current_path=current)
    add_versions(rt, table_id, [current], "current")
    add_versions(rt, table_id, [writing], "writing")
    now = utcnow()
    queue(rt, [due, last, current, writing, held], delete_after=now)
    queue(rt, [later], delete_after=now + timedelta(hours=1))
    with rt.catalog.session() as session:
        row = PendingDeletion.path
        session.execute(
            update(PendingDeletion)
            .where(row == last)
            .values(retry_count=4, last_error="could not delete: Permission denied")
        )
        session.execute(
            update(PendingDeletion)
            .where(row == held)
            .values(claim_token="0" * 32, claimed_until=now + timedelta(minutes=5))
        )
    before = queue_state(rt)

    result = invoke(settings, "gc", "--dry-run")

    assert (result.exit_code, result.stderr) == (0, "")
    next_due = now + timedelta(hours=1)
    claimed = now + timedelta(minutes=5)
    assert result.stdout.splitlines() == [
        f"5 due now; 1 in their grace period, the next due {next_due:%Y-%m-%d %H:%M:%S} UTC",
        f"  {due}  delete (attempt 1 of 5)",
        f"  {last}  delete (attempt 5 of 5; a failure gives it up, the files stay); "
        "last error: could not delete: Permission denied",
        f"  {current}  drop from the queue: it is a table's current version",
        f"  {writing}  leave for a later run: a refresh is writing it",
        f"  {held}  leave: another run holds it until {claimed:%Y-%m-%d %H:%M:%S} UTC",
        "dry run: nothing was changed",
    ]
    assert queue_state(rt) == before
    assert all(cache.holds(url) for url in (due, last, current, writing, held, later))

    run = invoke(settings, "gc")

    assert (run.exit_code, run.stderr) == (0, "")
    assert run.stdout == (
        "deleted 2, failed 0 (the next run tries again), given up 0, deferred 0 (unreadable due "
        "time), dropped 1 (a table's current version), left 1 (being written)\n"
    )
    assert set(pending(rt)) == {writing, held, later}
    assert not cache.holds(due)
    assert not cache.holds(last)


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)  # PostgreSQL holds timestamps
def test_a_dry_run_shows_a_due_time_that_cannot_be_read(
    rt: Runtime, cache: Backend, settings: Settings
) -> None:
    [url] = plant_versions(cache, 1)
    with rt.catalog.session() as session:
        session.execute(
            text(
                "INSERT INTO pending_deletions (path, delete_after, retry_count, created_at)"
                " VALUES (:path, 'soon', 0, '2026-01-01 00:00:00.000000')"
            ),
            {"path": url},
        )

    result = invoke(settings, "gc", "--dry-run")

    assert result.exit_code == 0
    assert result.stdout.splitlines()[1] == (
        f"  {url}  defer 24 hours: its due time cannot be read ('soon')"
    )
    with rt.catalog.session() as session:
        stored = session.execute(text("SELECT delete_after FROM pending_deletions")).scalar()
    assert stored == "soon"


def test_a_failed_deletion_fails_the_command(
    rt: Runtime, cache: Backend, settings: Settings
) -> None:
    [url] = plant_versions(cache, 1)
    queue(rt, [url], delete_after=utcnow())

    with cache.failing_deletes():
        result = invoke(settings, "gc")

    assert result.exit_code == 1
    assert result.stdout.startswith("deleted 0, failed 1 (the next run tries again), given up 0")
    assert pending(rt)[url].retry_count == 1
